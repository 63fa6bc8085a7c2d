/**
 * The composition root of the token machinery: {@link createAuthCore} wires the parts of `auth/` (endpoint, fetcher,
 * source, lifecycle, manager), the store and the redactor for one Client. `client.ts` calls it and reads the result.
 */
import { ClientCredentialsAuthManager, managerForKey, runAsProvider } from './authManager.js';
import { TokenFetcher } from './tokenFetcher.js';
import { MAX_HEDGE_DELAY } from './resilience.js';
import { TokenLifecycle } from './tokenLifecycle.js';
import { tokenKey, type TokenKey } from './tokenKey.js';
import { assertUsableLifetime, recordFromInput, type TimePolicy } from './tokenRecord.js';
import { TokenSource } from './tokenSource.js';
import { Discovery } from './discovery.js';
import { createDpopSigner, type DpopSigner } from './dpop.js';
import { credentialParameterValues, type TokenEndpointContext, type TokenRequestParameters } from './tokenEndpoint.js';
import { parseAudience, parseResource, parseScopes, type ResolvedConfiguration, type TokenSelector } from '../configuration.js';
import { InvalidOptionError, MissingCredentialsError, TokenExpiredError } from '../errors.js';
import { emptyStats, EventHub } from '../events.js';
import type { Transport } from '../http/transport.js';
import { Redactor, warnIfShortSecret } from '../redaction.js';
import { GuardedStore } from '../stores/guardedStore.js';
import { EntryAuth } from '../stores/entryAuth.js';
import { MemoryTokenStore } from '../stores/memory.js';
import { extraSecrets, type OAuthToken } from '../token.js';

/**
 * The token machinery of one Client, shared by the clones `withConfiguration` makes when they keep the same
 * credentials: one token cache, its fetcher and manager, the events and counters, the DPoP key and the redactor.
 */
export interface AuthCore {
  /** Lifecycle events, scrubbed by the redactor. */
  events: EventHub;
  /** The counters of `client.stats()`. */
  counters: ReturnType<typeof emptyStats>;
  /** The token cache and its states (fresh, stale, refreshing). */
  lifecycle: TokenLifecycle;
  /** Fetches tokens from the endpoint (retries, circuit breaker); undefined without an endpoint or a secret. */
  fetcher: TokenFetcher | undefined;
  /** `client.clientCredentialsAuthManager`. */
  manager: ClientCredentialsAuthManager;
  /** The cache key of the configured selection. */
  defaultKey: TokenKey;
  /** The cache key of a per-call selection (memoised; `InvalidOptionError` on bad input). */
  keyFor: (selector?: TokenSelector) => TokenKey;
  /** The token endpoint, when there is one. */
  endpoint: TokenEndpointContext | undefined;
  /** The DPoP key (`dpop` option). */
  dpop: DpopSigner | undefined;
  /** Knows the client secret and every token this cache held; scrubs errors and events. */
  redactor: Redactor;
}

/**
 * One part of a selection's memo key: a string as it is, an array of strings joined, none as `\u0000`; a value of
 * another type (a JavaScript caller's `scopes: 5`) gets a part no valid selection has, and is refused when the key is
 * made (joining it could throw a bare TypeError).
 */
function memoPart(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && value.every((item) => typeof item === 'string')) return value.join(' ');
  return value === undefined ? '\u0000' : '\u0002';
}

/**
 * Builds the auth core of a Client from its resolved configuration: the redactor (which learns the secret first),
 * events and counters, the token endpoint (with discovery and DPoP), the fetcher, the cache keys, the store, the
 * token source and the lifecycle, and the manager over them. `transport` sends the token requests.
 */
export function createAuthCore(config: ResolvedConfiguration, transport: Transport): AuthCore {
  const credentials = config.credentials;
  const redactor = new Redactor();
  const secret = credentials?.clientAuth.clientSecret;
  redactor.add(secret);
  if (credentials) redactor.addBasic(credentials.clientAuth.clientId, secret);
  // A token parameter named like a credential (`api_key`, `password`) is masked like the secret.
  for (const value of credentialParameterValues(credentials?.extra ?? {})) redactor.add(value);
  warnIfShortSecret(secret);
  const redact = <T>(value: T): T => redactor.scrub(value);
  const events = new EventHub(redact);
  const counters = emptyStats();
  const now = () => config.clock.now();
  const monotonic = config.monotonic;
  const policy: TimePolicy = { ...config.lifetime, clockSkew: credentials?.clockSkew ?? 0, refreshAhead: config.refreshAhead };
  const tokenUrl = config.tokenUrl ?? config.issuer;
  const discovery = config.issuer ? new Discovery({ issuer: config.issuer, transport, now, timeout: config.tokenRequestTimeout, userAgent: config.userAgent, allowInsecureHttp: config.allowInsecureHttp }) : undefined;
  const dpop = createDpopSigner(config.dpop, now);
  const endpoint: TokenEndpointContext | undefined = tokenUrl
    ? { tokenUrl, discovery, dpop, transport, timeout: config.tokenRequestTimeout, maxBodyBytes: config.maxTokenResponseBytes, lifetime: config.lifetime, now, userAgent: config.userAgent, redact,
      learn: (value: string) => redactor.addToken(value), onBasicEncoding: (event) => events.emit('basicEncodingLearned', event) }
    : undefined;
  const check = (token: OAuthToken): void => {
    const at = now();
    assertUsableLifetime(recordFromInput(token, at, policy, 'endpoint', 'token response'), at, 'The token from the token endpoint');
  };
  const fetcher = credentials && endpoint && (credentials.clientAuth.clientSecret !== undefined || !['client_secret_basic', 'client_secret_post', 'client_secret_jwt'].includes(credentials.clientAuth.method))
    ? new TokenFetcher({ endpoint, clientAuth: credentials.clientAuth, retry: config.retry, circuitBreaker: config.circuitBreaker, events, counters, monotonic, check })
    : undefined;
  const baseParameters: TokenRequestParameters = {
    scopes: credentials?.scopes ?? [],
    resource: credentials?.resource ?? [],
    audience: credentials?.audience,
    extra: credentials?.extra ?? {},
  };
  // DPoP-bound tokens are cached (and stored) per DPoP key: only a Client with the same key can use them.
  const keyBase = [`${tokenUrl ?? ''}${dpop ? `#dpop=${dpop.thumbprint}` : ''}`, credentials?.clientAuth.clientId ?? ''] as const;
  const defaultKey = tokenKey(keyBase[0], keyBase[1], baseParameters);
  // Keys memoised by selection: a selection of scopes alone, as a string (the common case), under that string itself
  // (no string built per call or kept per key); any other under a string made of all three parts.
  const byScopes = new Map<string, TokenKey>();
  const bySelection = new Map<string, TokenKey>();
  const keyFor = (selector?: TokenSelector): TokenKey => {
    if (!selector || (selector.scopes === undefined && selector.resource === undefined && selector.audience === undefined)) return defaultKey;
    const { scopes, resource, audience } = selector;
    const scopesOnly = typeof scopes === 'string' && resource === undefined && audience === undefined;
    const keys = scopesOnly ? byScopes : bySelection;
    const memo = scopesOnly ? scopes : `${memoPart(scopes)}\u0001${memoPart(resource)}\u0001${memoPart(audience)}`;
    let key = keys.get(memo);
    if (!key) {
      if (keys.size >= config.maxCachedTokens) keys.clear();
      const parameters: TokenRequestParameters = { ...baseParameters };
      // slice: an exact-size copy, for thousands of cached keys
      if (scopes !== undefined) parameters.scopes = parseScopes(scopes, 'scopes').slice();
      if (resource !== undefined) parameters.resource = parseResource(resource);
      if (audience !== undefined) parameters.audience = parseAudience(audience);
      key = tokenKey(keyBase[0], keyBase[1], parameters);
      keys.set(memo, key);
    }
    return key;
  };
  const entryAuth = config.tokenStore ? EntryAuth.fromCredentials(credentials?.clientAuth, { tokenStoreKey: config.tokenStoreKey, tls: config.tls }) : undefined;
  // A shared store without an integrity key would let anyone who can write it choose the token this Client sends.
  if (config.tokenStore && !entryAuth && !(config.tokenStore instanceof MemoryTokenStore)) {
    throw new InvalidOptionError('tokenStoreKey', 'is required with a shared tokenStore when the credentials hold no client secret or private key (`none`, TLS client authentication without `tls.key`, a platform `clientAssertion`, a provider alone): its entries could not be authenticated');
  }
  const store = config.tokenStore ? new GuardedStore(config.tokenStore, config.tokenStoreTimeout, events, counters, undefined, { entryAuth, monotonic: config.clock.monotonic && (() => config.clock.monotonic!()) }) : undefined;
  const managerContext = { lifecycle: undefined as unknown as TokenLifecycle, fetcher, defaultKey, keyFor, policy, now };
  const manager = new ClientCredentialsAuthManager(managerContext);
  const source = new TokenSource({
    now,
    monotonic,
    policy,
    counters,
    // A new token is learned by the redactor before anything else sees it (the store's set first: its errors may quote it).
    fetch: (key, signal, background) => (fetcher ? fetcher.fetch(key.parameters, { signal, background }).then(learnt(redactor)) : Promise.reject(cannotFetch(credentials !== undefined))),
    provider: credentials?.provider && redactingProvider(credentials.provider, redactor),
    managerFor: (key) => managerForKey(manager, key),
    canFetch: fetcher !== undefined,
    store,
    timeout: config.tokenRequestTimeout,
    leaseTtl: config.tokenStore?.leaseTtl ?? 5_000,
    leaseWait: config.tokenStore?.leaseWait ?? Math.min(config.tokenRequestTimeout + 2_000, 35_000),
    leasePoll: 50,
  });
  // Every token installed (endpoint, provider, store, preset, updateToken) is learned by the redactor first.
  const learn = (token: OAuthToken): void => {
    redactor.addToken(token.accessToken);
    redactor.addToken(token.refreshToken);
    if (token.extra) for (const secret of extraSecrets(token)) redactor.addToken(secret);
  };
  const lifecycle = new TokenLifecycle({ now, monotonic, policy, maxEntries: config.maxCachedTokens, events, counters, source, onTokenUpdate: credentials?.onTokenUpdate, learn, store, hedgeDelay: () => fetcher?.hedgeDelay() ?? MAX_HEDGE_DELAY, attemptTimeout: config.tokenRequestTimeout });
  managerContext.lifecycle = lifecycle;
  redactor.addToken(credentials?.presetToken?.accessToken);
  if (credentials?.presetToken) lifecycle.set(defaultKey, credentials.presetToken, 'preset');
  return { events, counters, lifecycle, fetcher, manager, defaultKey, keyFor, endpoint, dpop, redactor };
}

/** `provider` with its failures scrubbed of the client's credentials before the lifecycle wraps them. */
function redactingProvider(provider: NonNullable<ResolvedConfiguration['credentials']>['provider'] & {}, redactor: Redactor): typeof provider {
  return async (last, manager) => {
    try {
      return learnt(redactor)(await runAsProvider(manager, () => provider(last, manager)));
    } catch (error) {
      throw redactor.scrub(error);
    }
  };
}

/** A function that tells `redactor` of a token's access and refresh tokens, then returns it. */
function learnt(redactor: Redactor): <T>(token: T) => T {
  return (token) => {
    const { accessToken, refreshToken } = (token ?? {}) as { accessToken?: unknown; refreshToken?: unknown };
    if (typeof accessToken === 'string') redactor.addToken(accessToken);
    if (typeof refreshToken === 'string') redactor.addToken(refreshToken);
    return token;
  };
}

/** Why a token cannot be fetched on a Client without a token fetcher. */
function cannotFetch(hasCredentials: boolean): Error {
  if (!hasCredentials) return new MissingCredentialsError();
  // Credentials with neither a token endpoint nor a provider: only a preset oAuthToken, now expired or rejected.
  return new TokenExpiredError('The preset oAuthToken is expired or was rejected, and the Client cannot fetch another: set `tokenUrl` (or `oAuthTokenProvider`).');
}
