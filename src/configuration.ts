/**
 * The Client's options: their types, defaults and validation. Invalid options fail at construction
 * with an {@link InvalidOptionError} naming the option's path.
 */
import { InvalidOptionError } from './errors.js';
import { validateClientAuth, type ClientAuthInput, type ClientAuthMethod, type KeyObjectLike, type PrivateKeyAlgorithm } from './auth/clientAuthentication.js';
import { DEFAULT_CIRCUIT_BREAKER, DEFAULT_RETRY, type CircuitBreakerOptions, type RetryOptions } from './auth/resilience.js';
import { DEFAULT_LIFETIME_POLICY, toSeconds, type LifetimePolicy, type OAuthToken, type OAuthTokenInput } from './token.js';
import type { ClientCredentialsAuthManager } from './auth/authManager.js';
import type { DpopOption } from './auth/dpop.js';
import { assertTokenStore, type TokenStore } from './stores/tokenStore.js';
import { checkProxy } from './http/proxy.js';
import { assertKnownKeys, CIRCUIT_BREAKER_OPTION_KEYS, CLIENT_OPTION_KEYS, CREDENTIALS_OPTION_KEYS, RETRY_OPTION_KEYS } from './optionKeys.js';
import { assertHeaders, assertHeaderValue, isInsecureRemote } from './http/requestGuard.js';

/**
 * A source of time; inject one to drive expiry in tests. `now()` is wall-clock milliseconds since the epoch (token
 * expiry). `monotonic()`, when given, is a clock that never steps (retry budgets, circuit-breaker trials, lease
 * waits); without it an injected clock's `now()` serves for both.
 */
export interface Clock {
  now(): number;
  monotonic?(): number;
}

/** The system clock: `Date.now()`, and `performance.now()` as the monotonic clock. */
export const systemClock: Clock = { now: () => Date.now(), monotonic: () => performance.now() };
/**
 * An undici `Dispatcher` (Agent, Pool, ProxyAgent, MockAgent…), typed by shape: any of undici's dispatchers fits.
 * The Client calls its `request()` and, for a dispatcher it created itself, `close()`.
 */
export interface DispatcherLike {
  request(...args: never[]): unknown;
  close?(...args: never[]): unknown;
}


/**
 * Supplies a token when there is none or it has expired. Return a stored token, or `authManager.fetchToken()`.
 * When it is set, the provider is what refreshes. Inside it, `authManager.getToken()` never waits for the provider
 * itself: it returns the usable token, else a new one from the token endpoint; `client.close()` cancels its
 * `authManager.fetchToken()`.
 */
export type OAuthTokenProvider = (lastOAuthToken: OAuthToken | undefined, authManager: ClientCredentialsAuthManager) => Promise<OAuthTokenInput> | OAuthTokenInput;

/**
 * Called whenever the token is updated (not for a preset `oAuthToken`); use it to persist tokens. It may be async;
 * a throw or a rejection is reported (`callbackError`, else a process warning) and never breaks a request.
 */
export type OAuthOnTokenUpdate = (token: OAuthToken) => void;

/**
 * OAuth 2.0 Client Credentials Grant credentials (the seed's `clientCredentialsAuthCredentials`).
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.4
 */
export interface ClientCredentialsAuthCredentials {
  /** OAuth 2 Client ID. */
  oAuthClientId: string;
  /** OAuth 2 Client Secret. Optional only for `private_key_jwt`, mTLS and `none`. */
  oAuthClientSecret?: string;
  /** Scopes to request, as an array or a space-separated string. */
  oAuthScopes?: string | readonly string[];
  /** A token the application already has; used while it is valid, with no fetch. */
  oAuthToken?: OAuthTokenInput;
  /**
   * Seconds subtracted from a token's expiry before it is considered expired, so a token is never sent in its last
   * moments of validity. Clamped to half the token's lifetime. Default 0.
   */
  clockSkew?: number;
  /** Alias of `clockSkew`, as the reference SDK's code spells it. */
  oAuthClockSkew?: number;
  /** Supplies tokens instead of the built-in fetch; see {@link OAuthTokenProvider}. */
  oAuthTokenProvider?: OAuthTokenProvider;
  /** Called whenever the token is updated; see {@link OAuthOnTokenUpdate}. */
  oAuthOnTokenUpdate?: OAuthOnTokenUpdate;
  /** How the client authenticates at the token endpoint. Default `client_secret_basic`. */
  clientAuthMethod?: ClientAuthMethod;
  /** For `private_key_jwt`: a PEM string, a private JWK or a KeyObject. */
  privateKey?: string | Record<string, unknown> | KeyObjectLike;
  /**
   * The JWS algorithm of the client assertion: `HS256`/`HS384`/`HS512` for `client_secret_jwt`, any the key supports
   * for `private_key_jwt`. Default: the first the server's metadata offers (with `issuer`), else the key's default
   * (`HS256`, `RS256`, `PS256` for an RSA-PSS key, `ES256`/`ES384`/`ES512` by curve, `EdDSA`).
   */
  privateKeyAlgorithm?: PrivateKeyAlgorithm;
  /** For JWT client assertions: the `kid` header. */
  keyId?: string;
  /** For JWT client assertions: the `aud` claim. Default: the token URL. */
  assertionAudience?: string;
  /** RFC 8707 resource indicator(s) sent with the token request. */
  resource?: string | readonly string[];
  /** The `audience` parameter some servers use. */
  audience?: string;
  /** Extra form parameters for the token request. */
  tokenParameters?: Record<string, string>;
}

/** Options of the `Client`. Only `clientCredentialsAuthCredentials` comes from the seed; the rest are ours. */
export interface ClientConfiguration {
  /** Base URL that relative request paths are resolved against. */
  baseUrl?: string;
  /** The token endpoint: absolute, or a path relative to `baseUrl`. */
  tokenUrl?: string;
  /**
   * The authorization server's issuer identifier, instead of `tokenUrl`: the token endpoint (its mTLS alias for
   * `tls_client_auth`), authentication methods and signing algorithms are read from its metadata (RFC 8414, then
   * OpenID Connect Discovery), which must name this exact issuer. Fetched on first use, cached for an hour.
   */
  issuer?: string;
  /**
   * Timeout in ms for the whole of an API request, body included (a request may override it); also bounds token
   * requests. Default 0: no overall limit (undici's own 300 s for the headers and between body chunks apply).
   */
  timeout?: number;
  /** OAuth 2.0 Client Credentials credentials. */
  clientCredentialsAuthCredentials?: ClientCredentialsAuthCredentials;
  /** Total timeout in ms of one token request. Default: `timeout` when set, else 30,000. */
  tokenRequestTimeout?: number;
  /** Largest token response accepted, in bytes. Default 65,536. */
  maxTokenResponseBytes?: number;
  /**
   * Seconds before the expiry at which a token turns stale and is refreshed in the background. Default: half the
   * token's usable lifetime (a 60 s token is refreshed after 30 s, a 24 h token after 12 h; a server's earlier
   * `refresh_in` wins), which makes a token-endpoint outage shorter than half a token's lifetime fail no request.
   * A smaller value saves token requests (a provider that bills per token) at the cost of that guarantee; a value
   * longer than half the usable lifetime is clamped to that half. `0` turns the stale window off; any other value
   * must be longer than `clockSkew` (else no token would ever be stale before it expires): a shorter one throws
   * {@link InvalidOptionError}.
   */
  refreshAhead?: number;
  /**
   * Lifetime in seconds assumed when the server sends no `expires_in` and the token is not a JWT with `exp`. Default
   * 300. Clamped to `maxTokenLifetime`, like every lifetime.
   */
  defaultTokenLifetime?: number;
  /** Upper bound in seconds for any token lifetime. Default 31,536,000 (one year). */
  maxTokenLifetime?: number;
  /** Retries of the token endpoint; `false` disables them. */
  retry?: Partial<RetryOptions> | false;
  /**
   * Circuit breaker for the token endpoint; `false` disables it. `cooldown` is accepted as the old name of
   * `maxProbeInterval`.
   */
  circuitBreaker?: (Partial<CircuitBreakerOptions> & { cooldown?: number }) | false;
  /** On a 401 from the API, drop the token, fetch a new one and retry once. Default true. */
  retryOnUnauthorized?: boolean;
  /** Most tokens cached in process (one per scope set / resource); least recently used go first. Default 1,000. */
  maxCachedTokens?: number;
  /** Where tokens are shared between processes; see `TokenStore`. Default: in process only. */
  tokenStore?: TokenStore;
  /** Milliseconds a token store operation may take before the Client goes on without it. Default 1,000. */
  tokenStoreTimeout?: number;
  /** The clock; inject one in tests. */
  clock?: Clock;
  /**
   * An undici dispatcher (Agent, Pool, ProxyAgent, MockAgent) for every request. Default: a keep-alive Agent.
   * Typed by shape ({@link DispatcherLike}) so that the public types do not need undici's (and Node's) types.
   */
  dispatcher?: DispatcherLike;
  /**
   * An HTTP(S) proxy for every request: a URL (`http://user:pass@proxy.internal:3128`), or `'env'` to follow
   * `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` as curl does. Not with `dispatcher` (give the proxy to your own
   * dispatcher then). Default: no proxy (the environment is read only with `'env'`).
   */
  proxy?: string;
  /** TLS options for the default Agent, e.g. `{ cert, key }` for mTLS client authentication (RFC 8705). */
  tls?: { cert?: string | Uint8Array; key?: string | Uint8Array; ca?: string | Uint8Array; passphrase?: string };
  /** Headers sent with every API request. */
  headers?: Record<string, string>;
  /**
   * Origins besides `baseUrl`'s that may receive the access token (for absolute request URLs). With neither
   * `baseUrl` nor `allowedOrigins`, an authenticated request to an absolute URL is refused.
   */
  allowedOrigins?: readonly string[];
  /** The `user-agent` header. */
  userAgent?: string;
  /**
   * DPoP (RFC 9449) sender-constrained tokens: `true` for an ephemeral ES256 key kept for the Client's life, or
   * `{ privateKey, algorithm? }`. Proofs go with token requests and with API requests that carry a `DPoP` token.
   * Tokens are cached per DPoP key: a token store shares them only between Clients configured with the same key.
   */
  dpop?: DpopOption;
  /**
   * Allow plain `http:` to hosts other than this machine: a `tokenUrl` (the client secret goes there) and API origins
   * that receive the access token. Default false: plain `http:` only to loopback (`localhost`, 127.0.0.0/8, `[::1]`).
   */
  allowInsecureHttp?: boolean;
  /** Largest API response body read, in bytes; a larger one rejects with `ResponseTooLargeError`. Default 10,485,760 (10 MiB). */
  maxResponseBytes?: number;
  /** Milliseconds `close()` waits for requests in flight before it destroys the connections left. Default 5,000. */
  closeTimeout?: number;
}

/** Credentials after validation and defaults. */
export interface ResolvedCredentials {
  clientAuth: ClientAuthInput;
  scopes: readonly string[];
  resource: readonly string[];
  audience: string | undefined;
  extra: Readonly<Record<string, string>>;
  presetToken: OAuthTokenInput | undefined;
  clockSkew: number;
  provider: OAuthTokenProvider | undefined;
  onTokenUpdate: OAuthOnTokenUpdate | undefined;
}

/** The Client's configuration after validation and defaults. */
export interface ResolvedConfiguration {
  baseUrl: string | undefined;
  tokenUrl: string | undefined;
  issuer: string | undefined;
  timeout: number;
  tokenRequestTimeout: number;
  maxTokenResponseBytes: number;
  refreshAhead: number | undefined;
  lifetime: LifetimePolicy;
  retry: RetryOptions;
  circuitBreaker: CircuitBreakerOptions | undefined;
  retryOnUnauthorized: boolean;
  maxCachedTokens: number;
  tokenStore: TokenStore | undefined;
  tokenStoreTimeout: number;
  clock: Clock;
  /** The monotonic clock: `clock.monotonic`, else `clock.now`. */
  monotonic: () => number;
  dispatcher: DispatcherLike | undefined;
  proxy: string | undefined;
  tls: ClientConfiguration['tls'];
  headers: Record<string, string>;
  allowedOrigins: ReadonlySet<string>;
  userAgent: string;
  credentials: ResolvedCredentials | undefined;
  dpop: DpopOption | undefined;
  allowInsecureHttp: boolean;
  maxResponseBytes: number;
  closeTimeout: number;
}

/** Default `maxResponseBytes`: 10 MiB. */
export const DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024;

/** Default `closeTimeout`: 5 s. */
export const DEFAULT_CLOSE_TIMEOUT = 5_000;

/** The default user agent. */
export const USER_AGENT = 'oauth-client-credentials/0.1';

function checkNumber(path: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (value === undefined) return undefined;
  const n = toSeconds(value);
  if (n === undefined) throw new InvalidOptionError(path, `must be a number, got ${typeof value}`);
  if (n < min || n > max) throw new InvalidOptionError(path, `must be between ${min} and ${max}, got ${n}`);
  return n;
}

function checkString(path: string, value: unknown, required = false): string | undefined {
  if (value === undefined && !required) return undefined;
  if (typeof value !== 'string' || value === '') throw new InvalidOptionError(path, 'must be a non-empty string');
  return value;
}

function checkFunction<T>(path: string, value: unknown): T | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'function') throw new InvalidOptionError(path, 'must be a function');
  return value as T;
}

function checkUrl(path: string, value: string, base?: string): string {
  try {
    const url = base ? new URL(value, base.endsWith('/') ? base : `${base}/`) : new URL(value);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('protocol');
    return url.href;
  } catch {
    throw new InvalidOptionError(path, `must be an absolute http(s) URL${base ? ' or a path relative to `baseUrl`' : ''}`);
  }
}

/** Which token a request or a manager call wants, when it is not the configured one; each combination is cached apart. */
export interface TokenSelector {
  /** Scopes, instead of the configured `oAuthScopes`. */
  scopes?: string | readonly string[];
  /** RFC 8707 resource indicator(s), instead of the configured `resource`. */
  resource?: string | readonly string[];
  /** The `audience`, instead of the configured one. */
  audience?: string;
}

/** Reads RFC 8707 resource indicators given as one string or an array of non-empty strings. */
export function parseResource(value: unknown, path = 'resource'): string[] {
  if (value === undefined) return [];
  const list = typeof value === 'string' ? [value] : Array.isArray(value) ? [...(value as unknown[])] : undefined;
  if (!list || !list.every((r) => typeof r === 'string' && r)) throw new InvalidOptionError(path, 'must be a string or an array of strings');
  return list as string[];
}

/** RFC 6749 §3.3 `scope-token`: printable ASCII except space, `"` and `\`. */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

/**
 * Splits scopes given as a space-separated string or an array, and checks each against RFC 6749 §3.3 (before any
 * request: a control character or a quote is the caller's mistake, not the server's to report).
 */
export function parseScopes(value: unknown, path: string): string[] {
  if (value === undefined) return [];
  let scopes: string[];
  if (typeof value === 'string') scopes = value.split(/\s+/).filter(Boolean);
  else if (Array.isArray(value) && value.every((s) => typeof s === 'string')) scopes = value.flatMap((s: string) => s.split(/\s+/)).filter(Boolean);
  else throw new InvalidOptionError(path, 'must be a string or an array of strings');
  for (const scope of scopes) {
    if (!SCOPE_TOKEN.test(scope)) throw new InvalidOptionError(path, 'has a scope with a character RFC 6749 §3.3 does not allow (a control character, `"`, `\\` or a non-ASCII character)');
  }
  return scopes;
}

function resolveCredentials(raw: unknown, path: string): ResolvedCredentials | undefined {
  if (raw === undefined) return undefined;
  if (typeof raw !== 'object' || raw === null) throw new InvalidOptionError(path, 'must be an object');
  assertKnownKeys(raw, CREDENTIALS_OPTION_KEYS, `${path}.`);
  const c = raw as ClientCredentialsAuthCredentials;
  const provider = checkFunction<OAuthTokenProvider>(`${path}.oAuthTokenProvider`, c.oAuthTokenProvider);
  const clientId = checkString(`${path}.oAuthClientId`, c.oAuthClientId, true)!;
  const method = c.clientAuthMethod ?? 'client_secret_basic';
  const clientAuth: ClientAuthInput = {
    method,
    methodExplicit: c.clientAuthMethod !== undefined,
    clientId,
    clientSecret: c.oAuthClientSecret,
    privateKey: c.privateKey,
    algorithm: c.privateKeyAlgorithm,
    keyId: c.keyId,
    audience: c.assertionAudience,
  };
  if (c.oAuthClientSecret !== undefined && typeof c.oAuthClientSecret !== 'string') throw new InvalidOptionError(`${path}.oAuthClientSecret`, 'must be a string');
  // A provider may never call fetchToken(); then the secret is not needed.
  if (!provider || c.oAuthClientSecret !== undefined) validateClientAuth(clientAuth, path);
  const skewName = c.clockSkew === undefined && c.oAuthClockSkew !== undefined ? 'oAuthClockSkew' : 'clockSkew';
  const skew = checkNumber(`${path}.${skewName}`, c.clockSkew ?? c.oAuthClockSkew, 0, 86_400) ?? 0;
  if (c.oAuthToken !== undefined && (typeof c.oAuthToken !== 'object' || c.oAuthToken === null || typeof c.oAuthToken.accessToken !== 'string' || !c.oAuthToken.accessToken)) {
    throw new InvalidOptionError(`${path}.oAuthToken`, 'must be an OAuthToken with a non-empty `accessToken`');
  }
  const resource = parseResource(c.resource, `${path}.resource`);
  const extra = c.tokenParameters ?? {};
  if (typeof extra !== 'object' || Object.values(extra).some((v) => typeof v !== 'string')) throw new InvalidOptionError(`${path}.tokenParameters`, 'must be an object of strings');
  return {
    clientAuth,
    scopes: parseScopes(c.oAuthScopes, `${path}.oAuthScopes`),
    resource,
    audience: checkString(`${path}.audience`, c.audience),
    extra,
    presetToken: c.oAuthToken,
    clockSkew: skew,
    provider,
    onTokenUpdate: checkFunction<OAuthOnTokenUpdate>(`${path}.oAuthOnTokenUpdate`, c.oAuthOnTokenUpdate),
  };
}

/**
 * `refreshAhead`, checked against the clock skew: a token turns stale `refreshAhead` seconds before its expiry and
 * expires `clockSkew` seconds before it, so a `refreshAhead` not longer than `clockSkew` (other than 0, which turns the
 * stale window off on purpose) would leave no stale window at all, and callers would wait at every expiry.
 */
function checkRefreshAhead(value: unknown, credentials: ClientCredentialsAuthCredentials | undefined, clockSkew: number): number | undefined {
  const refreshAhead = checkNumber('refreshAhead', value, 0);
  if (refreshAhead !== undefined && refreshAhead > 0 && refreshAhead <= clockSkew) {
    const skewName = credentials?.clockSkew === undefined && credentials?.oAuthClockSkew !== undefined ? 'oAuthClockSkew' : 'clockSkew';
    throw new InvalidOptionError(
      'refreshAhead',
      `(${refreshAhead} s) must be longer than \`clientCredentialsAuthCredentials.${skewName}\` (${clockSkew} s): a token turns stale \`refreshAhead\` seconds before its expiry but is already expired \`${skewName}\` seconds before it, so no background refresh would ever run and callers would wait at every expiry (set it above ${clockSkew}, leave it unset for the default, or 0 to turn the stale window off on purpose)`,
    );
  }
  return refreshAhead;
}

/** The lifetime policy: `defaultTokenLifetime` is clamped to `maxTokenLifetime`, like every other lifetime. */
function resolveLifetime(config: ClientConfiguration): LifetimePolicy {
  const maxLifetime = checkNumber('maxTokenLifetime', config.maxTokenLifetime, 1) ?? DEFAULT_LIFETIME_POLICY.maxLifetime;
  const defaultLifetime = checkNumber('defaultTokenLifetime', config.defaultTokenLifetime, 1) ?? DEFAULT_LIFETIME_POLICY.defaultLifetime;
  return { defaultLifetime: Math.min(defaultLifetime, maxLifetime), maxLifetime };
}

/** Validates a {@link ClientConfiguration} and fills in defaults. */
export function resolveConfiguration(config: ClientConfiguration = {}): ResolvedConfiguration {
  if (typeof config !== 'object' || config === null) throw new InvalidOptionError('configuration', 'must be an object');
  assertKnownKeys(config, CLIENT_OPTION_KEYS);
  if (typeof config.retry === 'object' && config.retry !== null) assertKnownKeys(config.retry, RETRY_OPTION_KEYS, 'retry.');
  if (typeof config.circuitBreaker === 'object' && config.circuitBreaker !== null) assertKnownKeys(config.circuitBreaker, CIRCUIT_BREAKER_OPTION_KEYS, 'circuitBreaker.');
  const baseUrl = config.baseUrl === undefined ? undefined : checkUrl('baseUrl', checkString('baseUrl', config.baseUrl)!).replace(/\/+$/, '');
  const tokenUrl = config.tokenUrl === undefined ? undefined : checkUrl('tokenUrl', checkString('tokenUrl', config.tokenUrl)!, baseUrl);
  const issuer = config.issuer === undefined ? undefined : checkString('issuer', config.issuer)!;
  if (issuer !== undefined) {
    const parsed = new URL(checkUrl('issuer', issuer));
    // RFC 8414 §2: an https URL with no query or fragment; credentials in it would end up in error messages.
    if (parsed.username || parsed.password || parsed.search || parsed.hash || issuer.includes('#') || issuer.includes('?')) {
      throw new InvalidOptionError('issuer', 'must be a URL without credentials, query or fragment (RFC 8414 §2)');
    }
    if (tokenUrl !== undefined) throw new InvalidOptionError('issuer', 'and `tokenUrl` cannot both be set: the token endpoint comes from the issuer\'s metadata');
  }
  const credentials = resolveCredentials(config.clientCredentialsAuthCredentials, 'clientCredentialsAuthCredentials');
  if (credentials && !tokenUrl && !issuer && !credentials.provider && !credentials.presetToken) {
    throw new InvalidOptionError('tokenUrl', 'is required with clientCredentialsAuthCredentials (the token endpoint, e.g. https://auth.example.com/oauth2/token), or `issuer`');
  }
  const timeout = checkNumber('timeout', config.timeout, 0, 2_147_483_647) ?? 0;
  // Numbers given as numeric strings or bigints are stored as numbers (`cooldown: '30000'` would otherwise be
  // concatenated to the clock reading: a circuit open for ever), and a key given as undefined keeps its default.
  const retry = config.retry === false ? { ...DEFAULT_RETRY, maxAttempts: 1 } : { ...DEFAULT_RETRY, ...(config.retry ?? {}) };
  for (const key of Object.keys(DEFAULT_RETRY) as (keyof RetryOptions)[]) retry[key] = checkNumber(`retry.${key}`, retry[key], key === 'maxAttempts' ? 1 : 0) ?? DEFAULT_RETRY[key];
  let circuitBreaker: CircuitBreakerOptions | undefined;
  if (config.circuitBreaker !== false) {
    const given = config.circuitBreaker ?? {};
    if (typeof given !== 'object' || given === null) throw new InvalidOptionError('circuitBreaker', 'must be an object or false');
    const probeName = given.maxProbeInterval === undefined && given.cooldown !== undefined ? 'cooldown' : 'maxProbeInterval';
    circuitBreaker = {
      failureThreshold: checkNumber('circuitBreaker.failureThreshold', given.failureThreshold, 1) ?? DEFAULT_CIRCUIT_BREAKER.failureThreshold,
      maxProbeInterval: checkNumber(`circuitBreaker.${probeName}`, given.maxProbeInterval ?? given.cooldown, 0) ?? DEFAULT_CIRCUIT_BREAKER.maxProbeInterval,
    };
  }
  const dispatcher = config.dispatcher as { request?: unknown } | undefined;
  if (dispatcher !== undefined && (typeof dispatcher !== 'object' || dispatcher === null || typeof dispatcher.request !== 'function')) {
    throw new InvalidOptionError('dispatcher', 'must be an undici Dispatcher (Agent, Pool, ProxyAgent, MockAgent…) with a request() method');
  }
  if (config.proxy !== undefined && config.dispatcher !== undefined) throw new InvalidOptionError('proxy', 'cannot be combined with `dispatcher`: give the proxy to your dispatcher (undici ProxyAgent) instead');
  if (config.tokenStore !== undefined) assertTokenStore(config.tokenStore, 'tokenStore');
  if (config.clock !== undefined && typeof config.clock?.now !== 'function') throw new InvalidOptionError('clock', 'must have a now() method');
  if (config.clock?.monotonic !== undefined && typeof config.clock.monotonic !== 'function') throw new InvalidOptionError('clock.monotonic', 'must be a function');
  const clock = config.clock ?? systemClock;
  if (config.retryOnUnauthorized !== undefined && typeof config.retryOnUnauthorized !== 'boolean') throw new InvalidOptionError('retryOnUnauthorized', 'must be a boolean');
  const headers = config.headers ?? {};
  assertHeaders('headers', headers);
  if (config.userAgent !== undefined) assertHeaderValue('userAgent', config.userAgent);
  if (config.allowInsecureHttp !== undefined && typeof config.allowInsecureHttp !== 'boolean') throw new InvalidOptionError('allowInsecureHttp', 'must be a boolean');
  const allowInsecureHttp = config.allowInsecureHttp === true;
  if (tokenUrl && !allowInsecureHttp && isInsecureRemote(tokenUrl)) {
    throw new InvalidOptionError('tokenUrl', 'is plain http to a host other than this machine: the client secret would travel unencrypted (use https, or set `allowInsecureHttp: true`)');
  }
  if (config.tls !== undefined && (typeof config.tls !== 'object' || config.tls === null || Array.isArray(config.tls))) throw new InvalidOptionError('tls', 'must be an object of TLS options ({ cert, key, ca, passphrase })');
  if (config.allowedOrigins !== undefined && (!Array.isArray(config.allowedOrigins) || !config.allowedOrigins.every((o) => typeof o === 'string'))) {
    throw new InvalidOptionError('allowedOrigins', 'must be an array of origin strings, e.g. [\'https://api.example.com\']');
  }
  const allowedOrigins = new Set<string>();
  if (baseUrl) allowedOrigins.add(new URL(baseUrl).origin);
  for (const [i, origin] of (config.allowedOrigins ?? []).entries()) allowedOrigins.add(new URL(checkUrl(`allowedOrigins[${i}]`, origin)).origin);
  return {
    baseUrl,
    tokenUrl,
    issuer,
    timeout,
    tokenRequestTimeout: checkNumber('tokenRequestTimeout', config.tokenRequestTimeout, 1, 2_147_483_647) ?? (timeout > 0 ? timeout : 30_000),
    maxTokenResponseBytes: checkNumber('maxTokenResponseBytes', config.maxTokenResponseBytes, 256) ?? 65_536,
    refreshAhead: checkRefreshAhead(config.refreshAhead, config.clientCredentialsAuthCredentials, credentials?.clockSkew ?? 0),
    lifetime: resolveLifetime(config),
    retry,
    circuitBreaker,
    retryOnUnauthorized: config.retryOnUnauthorized ?? true,
    maxCachedTokens: checkNumber('maxCachedTokens', config.maxCachedTokens, 1) ?? 1_000,
    tokenStore: config.tokenStore,
    tokenStoreTimeout: checkNumber('tokenStoreTimeout', config.tokenStoreTimeout, 1) ?? 1_000,
    clock,
    monotonic: clock.monotonic ? () => clock.monotonic!() : () => clock.now(),
    dispatcher: config.dispatcher,
    proxy: checkProxy(config.proxy),
    tls: config.tls,
    headers,
    allowedOrigins,
    userAgent: checkString('userAgent', config.userAgent) ?? USER_AGENT,
    credentials,
    dpop: config.dpop,
    allowInsecureHttp,
    maxResponseBytes: checkNumber('maxResponseBytes', config.maxResponseBytes, 1) ?? DEFAULT_MAX_RESPONSE_BYTES,
    closeTimeout: checkNumber('closeTimeout', config.closeTimeout, 0, 2_147_483_647) ?? DEFAULT_CLOSE_TIMEOUT,
  };
}
