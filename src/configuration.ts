/**
 * The Client's options: their types, defaults and validation. Invalid options fail at construction
 * with an {@link InvalidOptionError} naming the option's path.
 */
import { DEFAULTS, MAX_TIMER_MS } from './defaults.js';
import { InvalidOptionError } from './errors.js';
import { BasicEncodingMemory, validateClientAuth, type ClientAuthInput } from './auth/clientAuthentication.js';
import { certificateHeader, CertificateProblem, toKeyObject } from './auth/jws.js';
import { DEFAULT_CIRCUIT_BREAKER, DEFAULT_RETRY } from './auth/resilience.js';
import { DEFAULT_LIFETIME_POLICY, toSeconds } from './token.js';
import { assertTokenStore } from './stores/tokenStore.js';
import { checkProxy } from './http/proxy.js';
import { assertKnownKeys, CIRCUIT_BREAKER_OPTION_KEYS, CLIENT_OPTION_KEYS, CREDENTIALS_OPTION_KEYS, RETRY_OPTION_KEYS } from './optionKeys.js';
import { assertHeaders, assertHeaderValue, isInsecureRemote } from './http/requestGuard.js';
import type { ClientConfiguration, ClientCredentialsAuthCredentials, Clock, OAuthOnTokenUpdate, OAuthTokenProvider } from './types/options.js';
import type { DispatcherLike } from './types/dispatcher.js';
import type { DpopOption } from './types/dpop.js';
import type { CircuitBreakerOptions, RetryOptions } from './types/resilience.js';
import type { LifetimePolicy, OAuthTokenInput } from './types/token.js';
import type { CertificateThumbprint } from './types/keys.js';
import type { TokenStore } from './types/tokenStore.js';

export type { ClientConfiguration, ClientCredentialsAuthCredentials, Clock, OAuthOnTokenUpdate, OAuthTokenProvider } from './types/options.js';
export type { DispatcherLike } from './types/dispatcher.js';
export type { TokenSelector } from './types/selector.js';

/** The system clock: `Date.now()`, and `performance.now()` as the monotonic clock. */
export const systemClock: Clock = { now: () => Date.now(), monotonic: () => performance.now() };

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
  tokenStoreKey: string | Uint8Array | undefined;
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
export const DEFAULT_MAX_RESPONSE_BYTES = DEFAULTS.maxResponseBytes;

/** Default `closeTimeout`: 5 s. */
export const DEFAULT_CLOSE_TIMEOUT = DEFAULTS.closeTimeout;

/** The default user agent. */
export const USER_AGENT = DEFAULTS.userAgent;

/**
 * A numeric option (a number, a bigint or a numeric string), between `min` and `max`; a whole number when `integer`
 * (counts and sizes). Undefined stays undefined (the default applies).
 */
function checkNumber(path: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER, integer = false): number | undefined {
  if (value === undefined) return undefined;
  const n = toSeconds(value);
  if (n === undefined) {
    if (typeof value === 'number') throw new InvalidOptionError(path, `must be a finite number, got ${value}`);
    throw new InvalidOptionError(path, `must be a number, got ${typeof value}`);
  }
  if (integer && !Number.isInteger(n)) throw new InvalidOptionError(path, `must be a whole number, got ${n}`);
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

/** The `tokenStoreKey` option: a string or bytes of at least 16 bytes. The message never repeats the value. */
function checkTokenStoreKey(value: unknown): string | Uint8Array | undefined {
  if (value === undefined) return undefined;
  const bytes = typeof value === 'string' ? Buffer.byteLength(value, 'utf8') : value instanceof Uint8Array ? value.byteLength : -1;
  if (bytes < 16) throw new InvalidOptionError('tokenStoreKey', 'must be a string or bytes of at least 16 bytes (a random key, e.g. `openssl rand -base64 32`)');
  return value as string | Uint8Array;
}

function checkUrl(path: string, value: string, base?: string): string {
  const host = schemelessHost(value);
  if (host !== undefined) {
    // `auth.example.com/oauth2/token` is a host without its scheme: resolved against `baseUrl` it would become a path
    // of the API (and the client credentials would be posted to the API's host).
    const scheme = isLoopbackName(host) ? 'http' : 'https';
    const where = base ? 'a path under `baseUrl` (the request would go to the API\'s host)' : 'not a URL';
    throw new InvalidOptionError(path, `has no scheme: \`${host}\` reads as a host, but without \`${scheme}://\` the value is ${where}; did you mean \`${scheme}://${value.replace(/^[^/?#@]*@/, '')}\`?`);
  }
  try {
    const url = base ? new URL(value, base.endsWith('/') ? base : `${base}/`) : new URL(value);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('protocol');
    return url.href;
  } catch {
    throw new InvalidOptionError(path, `must be an absolute http(s) URL${base ? ' or a path relative to `baseUrl`' : ''}`);
  }
}

/**
 * The host of a URL given without its scheme (`auth.example.com/token`, `localhost:8080/token`, `10.0.0.5/token`):
 * the first segment of a value with no `scheme://` and not starting with `/` or `.`, when it looks like a host name
 * with a dot and a top-level label of letters, an IPv4 address, `localhost`, or a name with a port.
 */
function schemelessHost(value: string): string | undefined {
  if (/^[a-z][a-z\d+.-]*:\/\//i.test(value) || value.startsWith('/') || value.startsWith('.')) return undefined;
  const first = /^[^/?#]*/.exec(value)![0];
  const host = first.replace(/^[^@]*@/, '');
  if (/^(?:[a-z\d](?:[a-z\d-]*[a-z\d])?\.)+[a-z]{2,63}\.?(?::\d{1,5})?$/i.test(host)) return host;
  if (/^\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?$/.test(host)) return host;
  if (/^localhost(?::\d{1,5})?$/i.test(host)) return host;
  if (/^[a-z\d](?:[a-z\d.-]*[a-z\d])?:\d{1,5}$/i.test(host)) return host;
  return undefined;
}

/** Whether a host (with or without a port) is this machine, where plain http is the norm. */
function isLoopbackName(host: string): boolean {
  const name = host.replace(/:\d+$/, '').toLowerCase();
  return name === 'localhost' || name.startsWith('127.');
}

/** RFC 3986 §4.3 `absolute-URI` without a fragment: a scheme, `:`, then URI characters other than `#`. */
const ABSOLUTE_URI = /^[A-Za-z][A-Za-z0-9+.-]*:[A-Za-z0-9\-._~:/?[\]@!$&'()*+,;=%]+$/;

/** An application ID (a UUID), which Entra ID's v1 endpoint takes as `resource` beside App ID URIs. */
const APPLICATION_ID = /^[\da-f]{8}-[\da-f]{4}-[\da-f]{4}-[\da-f]{4}-[\da-f]{12}$/i;

/**
 * Reads RFC 8707 resource indicators given as one string or an array of strings, each an absolute URI without a
 * fragment (§2): a path such as `/api` would be read by each server its own way, or not at all. The one exception is
 * a bare application ID (a UUID), which Entra ID's v1 endpoint (older than RFC 8707) takes.
 */
export function parseResource(value: unknown, path = 'resource'): string[] {
  if (value === undefined) return [];
  const list = typeof value === 'string' ? [value] : Array.isArray(value) ? [...(value as unknown[])] : undefined;
  if (!list || !list.every((r) => typeof r === 'string' && r)) throw new InvalidOptionError(path, 'must be a string or an array of strings');
  for (const resource of list as string[]) {
    if (!ABSOLUTE_URI.test(resource) && !APPLICATION_ID.test(resource)) {
      throw new InvalidOptionError(path, 'must be an absolute URI without a fragment (RFC 8707 §2), e.g. `https://api.example.com/`: a scheme, no spaces, control or non-ASCII characters (percent-encode them), no `#`');
    }
  }
  return list as string[];
}

/** A C0 or C1 control character, DEL, or a lone surrogate (which the form encoding would turn into U+FFFD). */
// eslint-disable-next-line no-control-regex
const CONTROL_OR_LONE_SURROGATE = /[\u0000-\u001f\u007f-\u009f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Reads the `audience` parameter: a non-empty string without control characters (CR/LF would split a log line). */
export function parseAudience(value: unknown, path = 'audience'): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') throw new InvalidOptionError(path, 'must be a non-empty string');
  if (CONTROL_OR_LONE_SURROGATE.test(value)) throw new InvalidOptionError(path, 'has a control character (or a lone surrogate); an audience is printable text, e.g. `https://api.example.com`');
  return value;
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

/** Token request parameters that an option (or the client authentication) sets, with what to use instead. */
const RESERVED_PARAMETERS: Readonly<Record<string, string>> = {
  grant_type: '`grantType`',
  scope: '`oAuthScopes`',
  resource: '`resource`',
  audience: '`audience`',
  client_id: '`oAuthClientId`',
  client_secret: '`oAuthClientSecret`',
  client_assertion: '`clientAssertion` or `privateKey`',
  client_assertion_type: '`clientAssertion` or `privateKey`',
};

/** Grant types whose tokens belong to a user or a one-time code, refused in `grantType`. */
const USER_GRANTS: ReadonlySet<string> = new Set(['password', 'authorization_code', 'refresh_token', 'implicit', 'urn:ietf:params:oauth:grant-type:device_code']);

/** RFC 6749 §A.10 `grant-type`: an absolute URI, or `1*name-char`. */
function checkGrantType(value: unknown, path: string): string {
  if (typeof value !== 'string' || !(/^[A-Za-z0-9\-._]+$/.test(value) || /^[A-Za-z][A-Za-z0-9+.-]*:[\x21-\x7E]+$/.test(value))) {
    throw new InvalidOptionError(path, 'must be an RFC 6749 grant type: a name of letters, digits, `-`, `.`, `_`, or an absolute URI');
  }
  // Grants of a user or of a one-time code: their tokens are not the client's to cache and share (and RFC 9700
  // §2.4 forbids the password grant).
  if (USER_GRANTS.has(value)) throw new InvalidOptionError(path, `cannot be ${value}: this library fetches and caches the client's own tokens (a grant without a user or a code)`);
  return value;
}

/** The assertion header's thumbprint members of `c.certificate`, checked against the private key. */
function checkCertificate(c: ClientCredentialsAuthCredentials, clientAuth: ClientAuthInput, path: string): Partial<Record<CertificateThumbprint, string>> {
  if (clientAuth.method !== 'private_key_jwt' || clientAuth.privateKey === undefined) {
    throw new InvalidOptionError(`${path}.certificate`, 'goes with `privateKey` and private_key_jwt (for mTLS, give the certificate in `tls`)');
  }
  const thumbprints = c.certificateThumbprints ?? ['x5t#S256'];
  if (!Array.isArray(thumbprints) || thumbprints.length === 0 || !thumbprints.every((t) => t === 'x5t#S256' || t === 'x5t')) {
    throw new InvalidOptionError(`${path}.certificateThumbprints`, "must be a non-empty array of 'x5t#S256' and 'x5t'");
  }
  try {
    return certificateHeader(c.certificate!, toKeyObject(clientAuth.privateKey), thumbprints);
  } catch (error) {
    if (error instanceof CertificateProblem) throw new InvalidOptionError(`${path}.certificate`, error.message);
    throw error;
  }
}

function resolveCredentials(raw: unknown, path: string): ResolvedCredentials | undefined {
  if (raw === undefined) return undefined;
  if (typeof raw !== 'object' || raw === null) throw new InvalidOptionError(path, 'must be an object');
  assertKnownKeys(raw, CREDENTIALS_OPTION_KEYS, `${path}.`);
  const c = raw as ClientCredentialsAuthCredentials;
  const provider = checkFunction<OAuthTokenProvider>(`${path}.oAuthTokenProvider`, c.oAuthTokenProvider);
  const clientId = checkString(`${path}.oAuthClientId`, c.oAuthClientId, true)!;
  // With a key or a platform assertion and no secret, the only method the credentials allow is private_key_jwt.
  const keyOnly = c.oAuthClientSecret === undefined && (c.privateKey !== undefined || c.clientAssertion !== undefined);
  const method = c.clientAuthMethod ?? (keyOnly ? 'private_key_jwt' : DEFAULTS.clientAuthMethod);
  const clientAuth: ClientAuthInput = {
    method,
    methodExplicit: c.clientAuthMethod !== undefined,
    clientId,
    clientSecret: c.oAuthClientSecret,
    privateKey: c.privateKey,
    algorithm: c.privateKeyAlgorithm,
    keyId: checkString(`${path}.keyId`, c.keyId),
    audience: parseAudience(c.assertionAudience, `${path}.assertionAudience`),
    clientAssertion: c.clientAssertion,
    basicEncoding: c.basicEncoding,
    basicMemory: c.basicEncoding === undefined ? new BasicEncodingMemory() : undefined,
  };
  if (c.oAuthClientSecret !== undefined && typeof c.oAuthClientSecret !== 'string') throw new InvalidOptionError(`${path}.oAuthClientSecret`, 'must be a string');
  // A provider may never call fetchToken(); then the secret is not needed.
  if (!provider || c.oAuthClientSecret !== undefined) validateClientAuth(clientAuth, path);
  if (c.certificateThumbprints !== undefined && c.certificate === undefined) throw new InvalidOptionError(`${path}.certificateThumbprints`, 'needs `certificate`');
  if (c.certificate !== undefined) clientAuth.certificateHeader = checkCertificate(c, clientAuth, path);
  const grantType = c.grantType === undefined ? undefined : checkGrantType(c.grantType, `${path}.grantType`);
  const skewName = c.clockSkew === undefined && c.oAuthClockSkew !== undefined ? 'oAuthClockSkew' : 'clockSkew';
  const skew = checkNumber(`${path}.${skewName}`, c.clockSkew ?? c.oAuthClockSkew, 0, 86_400) ?? DEFAULTS.clockSkew;
  if (c.oAuthToken !== undefined && (typeof c.oAuthToken !== 'object' || c.oAuthToken === null || typeof c.oAuthToken.accessToken !== 'string' || !c.oAuthToken.accessToken)) {
    throw new InvalidOptionError(`${path}.oAuthToken`, 'must be an OAuthToken with a non-empty `accessToken`');
  }
  const resource = parseResource(c.resource, `${path}.resource`);
  const given = c.tokenParameters ?? {};
  if (typeof given !== 'object' || given === null || Array.isArray(given) || Object.values(given).some((v) => typeof v !== 'string')) throw new InvalidOptionError(`${path}.tokenParameters`, 'must be an object of strings');
  for (const name of Object.keys(given)) {
    if (name === '') throw new InvalidOptionError(`${path}.tokenParameters`, 'has an empty parameter name');
    // Case variants too: some servers read form fields case-insensitively (ASP.NET), so `GRANT_TYPE` would be a second grant_type.
    const own = Object.hasOwn(RESERVED_PARAMETERS, name.toLowerCase()) ? RESERVED_PARAMETERS[name.toLowerCase()] : undefined;
    if (own !== undefined) throw new InvalidOptionError(`${path}.tokenParameters.${name}`, `is set by the library; use ${own}`);
  }
  // The grant type travels as a parameter, so that tokens of another grant type are cached apart.
  const extra = grantType !== undefined && grantType !== 'client_credentials' ? { ...given, grant_type: grantType } : given;
  return {
    clientAuth,
    scopes: parseScopes(c.oAuthScopes, `${path}.oAuthScopes`),
    resource,
    audience: parseAudience(c.audience, `${path}.audience`),
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
  if (typeof config.retry === 'object' && config.retry !== null && !Array.isArray(config.retry)) assertKnownKeys(config.retry, RETRY_OPTION_KEYS, 'retry.');
  if (typeof config.circuitBreaker === 'object' && config.circuitBreaker !== null && !Array.isArray(config.circuitBreaker)) assertKnownKeys(config.circuitBreaker, CIRCUIT_BREAKER_OPTION_KEYS, 'circuitBreaker.');
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
  const timeout = checkNumber('timeout', config.timeout, 0, MAX_TIMER_MS) ?? DEFAULTS.timeout;
  // Numbers given as numeric strings or bigints are stored as numbers (`cooldown: '30000'` would otherwise be
  // concatenated to the clock reading: a circuit open for ever), and a key given as undefined keeps its default.
  // `true` (like `null`) means the defaults, `false` turns it off. Every delay ends up in a timer: at most MAX_TIMER_MS.
  const retryGiven = config.retry as unknown;
  if (retryGiven !== undefined && retryGiven !== null && typeof retryGiven !== 'boolean' && (typeof retryGiven !== 'object' || Array.isArray(retryGiven))) {
    throw new InvalidOptionError('retry', `must be an object of retry options, true (the defaults) or false (no retries), got ${Array.isArray(retryGiven) ? 'an array' : typeof retryGiven}`);
  }
  const retry = config.retry === false ? { ...DEFAULT_RETRY, maxAttempts: 1 } : { ...DEFAULT_RETRY, ...(typeof config.retry === 'object' ? config.retry : {}) };
  for (const key of Object.keys(DEFAULT_RETRY) as (keyof RetryOptions)[]) {
    retry[key] = (key === 'maxAttempts' ? checkNumber('retry.maxAttempts', retry.maxAttempts, 1, Number.MAX_SAFE_INTEGER, true) : checkNumber(`retry.${key}`, retry[key], 0, MAX_TIMER_MS)) ?? DEFAULT_RETRY[key];
  }
  let circuitBreaker: CircuitBreakerOptions | undefined;
  if (config.circuitBreaker !== false) {
    const given = (config.circuitBreaker === true ? undefined : config.circuitBreaker) ?? {};
    if (typeof given !== 'object' || Array.isArray(given)) {
      throw new InvalidOptionError('circuitBreaker', `must be an object of circuit breaker options, true (the defaults) or false (no circuit breaker), got ${Array.isArray(given) ? 'an array' : typeof given}`);
    }
    const probeName = given.maxProbeInterval === undefined && given.cooldown !== undefined ? 'cooldown' : 'maxProbeInterval';
    circuitBreaker = {
      failureThreshold: checkNumber('circuitBreaker.failureThreshold', given.failureThreshold, 1, Number.MAX_SAFE_INTEGER, true) ?? DEFAULT_CIRCUIT_BREAKER.failureThreshold,
      maxProbeInterval: checkNumber(`circuitBreaker.${probeName}`, given.maxProbeInterval ?? given.cooldown, 0, MAX_TIMER_MS) ?? DEFAULT_CIRCUIT_BREAKER.maxProbeInterval,
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
  const allowInsecureHttp = config.allowInsecureHttp ?? DEFAULTS.allowInsecureHttp;
  if (tokenUrl && !allowInsecureHttp && isInsecureRemote(tokenUrl)) {
    throw new InvalidOptionError('tokenUrl', 'is plain http to a host other than this machine: the client secret would travel unencrypted (use https, or set `allowInsecureHttp: true`)');
  }
  if (issuer && !allowInsecureHttp && isInsecureRemote(issuer)) {
    throw new InvalidOptionError('issuer', 'is plain http to a host other than this machine: the metadata that names the token endpoint would travel unprotected (use https, or set `allowInsecureHttp: true`)');
  }
  if (config.tls !== undefined && (typeof config.tls !== 'object' || config.tls === null || Array.isArray(config.tls))) throw new InvalidOptionError('tls', 'must be an object of TLS options ({ cert, key, ca, passphrase })');
  if (config.allowedOrigins !== undefined && (!Array.isArray(config.allowedOrigins) || !config.allowedOrigins.every((o) => typeof o === 'string'))) {
    throw new InvalidOptionError('allowedOrigins', 'must be an array of origin strings, e.g. [\'https://api.example.com\']');
  }
  const allowedOrigins = new Set<string>();
  if (baseUrl) allowedOrigins.add(new URL(baseUrl).origin);
  for (const [i, origin] of (config.allowedOrigins ?? []).entries()) {
    const url = new URL(checkUrl(`allowedOrigins[${i}]`, origin));
    const host = url.host;
    // The URL parser takes `*` in a host name, so a wildcard would be kept, and would never match a request.
    if (host.includes('*')) throw new InvalidOptionError(`allowedOrigins[${i}]`, `is a pattern (\`${host}\`), but origins are matched exactly: list each origin the token may go to, e.g. 'https://api.example.com'`);
    allowedOrigins.add(url.origin);
  }
  return {
    baseUrl,
    tokenUrl,
    issuer,
    timeout,
    tokenRequestTimeout: checkNumber('tokenRequestTimeout', config.tokenRequestTimeout, 1, MAX_TIMER_MS) ?? (timeout > 0 ? timeout : DEFAULTS.tokenRequestTimeout),
    maxTokenResponseBytes: checkNumber('maxTokenResponseBytes', config.maxTokenResponseBytes, 256, Number.MAX_SAFE_INTEGER, true) ?? DEFAULTS.maxTokenResponseBytes,
    refreshAhead: checkRefreshAhead(config.refreshAhead, config.clientCredentialsAuthCredentials, credentials?.clockSkew ?? DEFAULTS.clockSkew),
    lifetime: resolveLifetime(config),
    retry,
    circuitBreaker,
    retryOnUnauthorized: config.retryOnUnauthorized ?? DEFAULTS.retryOnUnauthorized,
    maxCachedTokens: checkNumber('maxCachedTokens', config.maxCachedTokens, 1, Number.MAX_SAFE_INTEGER, true) ?? DEFAULTS.maxCachedTokens,
    tokenStore: config.tokenStore,
    tokenStoreTimeout: checkNumber('tokenStoreTimeout', config.tokenStoreTimeout, 1, MAX_TIMER_MS) ?? DEFAULTS.tokenStoreTimeout,
    tokenStoreKey: checkTokenStoreKey(config.tokenStoreKey),
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
    maxResponseBytes: checkNumber('maxResponseBytes', config.maxResponseBytes, 1, Number.MAX_SAFE_INTEGER, true) ?? DEFAULT_MAX_RESPONSE_BYTES,
    closeTimeout: checkNumber('closeTimeout', config.closeTimeout, 0, MAX_TIMER_MS) ?? DEFAULT_CLOSE_TIMEOUT,
  };
}
