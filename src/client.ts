/**
 * `Client`: calls an API with OAuth 2.0 Client Credentials tokens that it fetches, caches, refreshes and recovers
 * by itself. Configuration, `request()` and `withConfiguration()` live here; the token lifecycle is in `auth/`.
 */
import { inspect } from 'node:util';
import type { Dispatcher } from 'undici';
import { ClientCredentialsAuthManager } from './auth/authManager.js';
import { TokenFetcher } from './auth/tokenFetcher.js';
import { TokenLifecycle, tokenKey, type TokenKey } from './auth/tokenLifecycle.js';
import type { TokenEndpointContext, TokenRequestParameters } from './auth/tokenEndpoint.js';
import { parseResource, parseScopes, resolveConfiguration, type ClientConfiguration, type ResolvedConfiguration, type TokenSelector } from './configuration.js';
import { ApiError, InvalidOptionError, MissingCredentialsError, TimeoutError, TokenExpiredError } from './errors.js';
import { emptyStats, EventHub, type ClientEventName, type ClientStats, type Listener } from './events.js';
import { createDispatcher, createTransport, describeUrl, type HttpRequest, type HttpResponse, type Transport } from './http/transport.js';
import { GuardedStore } from './stores/guardedStore.js';
import { EntryAuth } from './stores/entryAuth.js';
import type { OAuthToken } from './token.js';

/** A query string value. */
export type QueryValue = string | number | boolean | null | undefined | readonly (string | number | boolean)[];

/** One API request. */
export interface RequestOptions {
  /** HTTP method. Default `GET`. */
  method?: string;
  /** A path relative to `baseUrl`, or an absolute URL on `baseUrl`'s origin or one of `allowedOrigins`. */
  path?: string;
  /** Query parameters, appended to the path's own. */
  query?: Record<string, QueryValue>;
  /** Request headers. */
  headers?: Record<string, string>;
  /** A raw body. */
  body?: string | Uint8Array;
  /** A JSON body; sets `content-type: application/json`. */
  json?: unknown;
  /** Whether the request needs the OAuth token. Default true. */
  auth?: boolean;
  /** Cancels the request, including a token fetch it waits on. */
  signal?: AbortSignal;
  /** Timeout in ms (0 to 2^31−1) for this request, and for its wait for a token (`TimeoutError`); default the Client's `timeout`. */
  timeout?: number;
  /** Scopes for this request's token, instead of the configured `oAuthScopes`; tokens are cached per scope set. */
  scopes?: string | readonly string[];
  /** RFC 8707 resource indicator(s) for this request's token, instead of the configured `resource`; cached per resource. */
  resource?: string | readonly string[];
  /** The `audience` for this request's token, instead of the configured one; cached per audience. */
  audience?: string;
  /** On a 401, drop the token, fetch a new one and retry once. Default: the Client's `retryOnUnauthorized`. */
  retryOnUnauthorized?: boolean;
}

/** A 2xx response. `result` is the parsed body when it is JSON. */
export interface ApiResponse<T = unknown> {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
  result: T;
}

/** What clones made by `withConfiguration` share when they keep the same credentials: one token cache. */
interface AuthCore {
  events: EventHub;
  counters: ReturnType<typeof emptyStats>;
  lifecycle: TokenLifecycle;
  fetcher: TokenFetcher | undefined;
  manager: ClientCredentialsAuthManager;
  defaultKey: TokenKey;
  keyFor: (selector?: TokenSelector) => TokenKey;
  endpoint: TokenEndpointContext | undefined;
}

interface Transports {
  dispatcher: Dispatcher;
  owned: boolean;
  transport: Transport;
}

/** Options that, when changed by `withConfiguration`, need a separate token cache. */
const AUTH_OPTIONS: readonly (keyof ClientConfiguration)[] = [
  'tokenUrl', 'clientCredentialsAuthCredentials', 'tokenStore', 'tokenStoreTimeout', 'clock', 'retry', 'circuitBreaker',
  'refreshAhead', 'defaultTokenLifetime', 'maxTokenLifetime', 'tokenRequestTimeout', 'maxTokenResponseBytes', 'maxCachedTokens', 'dispatcher', 'tls',
];

function isJsonType(contentType: string | undefined): boolean {
  return contentType !== undefined && (contentType.includes('/json') || contentType.includes('+json'));
}

function appendQuery(url: string, query: Record<string, QueryValue>): string {
  const params = new URLSearchParams();
  for (const name in query) {
    const value = query[name];
    if (value === undefined || value === null) continue;
    if (Array.isArray(value)) for (const item of value) params.append(name, String(item));
    else params.append(name, String(value));
  }
  const qs = params.toString();
  return qs ? `${url}${url.includes('?') ? '&' : '?'}${qs}` : url;
}

/**
 * An API client authenticated with the OAuth 2.0 Client Credentials Grant. The first call that needs a token fetches
 * one; concurrent calls share that fetch; tokens are refreshed ahead of expiry in the background.
 *
 * @example
 * ```ts
 * const client = new Client({
 *   baseUrl: 'https://api.example.com',
 *   tokenUrl: 'https://auth.example.com/oauth2/token',
 *   clientCredentialsAuthCredentials: { oAuthClientId: 'id', oAuthClientSecret: 'secret' },
 * });
 * const { result } = await client.get('/things');
 * ```
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.4
 */
export class Client {
  /** The token manager: `fetchToken()`, `isValid()`, `isExpired()`, `updateToken()`, `getToken()`. */
  readonly clientCredentialsAuthManager: ClientCredentialsAuthManager;
  readonly #raw: ClientConfiguration;
  readonly #config: ResolvedConfiguration;
  readonly #core: AuthCore;
  /** False for a clone that shares its original's token cache: closing the clone leaves that cache alone. */
  readonly #ownsCore: boolean;
  readonly #io: Transports;
  readonly #headers: Record<string, string>;
  readonly #baseUrl: string;
  readonly #send: (request: HttpRequest, key: TokenKey | undefined, retry: boolean) => Promise<HttpResponse>;
  #closing: Promise<void> | undefined;

  constructor(config: ClientConfiguration = {}) {
    const resolved = resolveConfiguration(config);
    const inherited = (config as { [SHARED]?: { core: AuthCore; io: Transports } })[SHARED];
    this.#raw = config;
    this.#config = resolved;
    this.#io = inherited?.io ?? Client.#transports(resolved);
    // A relative tokenUrl follows baseUrl: a clone whose token endpoint moved with it gets a token cache of its own.
    const core = inherited?.core && inherited.core.endpoint?.tokenUrl === resolved.tokenUrl ? inherited.core : undefined;
    this.#ownsCore = core === undefined;
    this.#core = core ?? Client.#authCore(resolved, this.#io.transport);
    this.clientCredentialsAuthManager = this.#core.manager;
    this.#headers = { 'user-agent': resolved.userAgent, ...lowerCaseKeys(resolved.headers) };
    this.#baseUrl = resolved.baseUrl ?? '';
    this.#send = this.#authenticatedSender();
  }

  static #transports(config: ResolvedConfiguration): Transports {
    const owned = !config.dispatcher;
    const dispatcher = config.dispatcher ?? createDispatcher(config.tls as Record<string, unknown> | undefined);
    return { dispatcher, owned, transport: createTransport(dispatcher) };
  }

  static #authCore(config: ResolvedConfiguration, transport: Transport): AuthCore {
    const events = new EventHub();
    const counters = emptyStats();
    const credentials = config.credentials;
    const now = () => config.clock.now();
    const endpoint: TokenEndpointContext | undefined = config.tokenUrl
      ? { tokenUrl: config.tokenUrl, transport, timeout: config.tokenRequestTimeout, maxBodyBytes: config.maxTokenResponseBytes, lifetime: config.lifetime, now, userAgent: config.userAgent }
      : undefined;
    const fetcher = credentials && endpoint && (credentials.clientAuth.clientSecret !== undefined || !['client_secret_basic', 'client_secret_post', 'client_secret_jwt'].includes(credentials.clientAuth.method))
      ? new TokenFetcher({ endpoint, clientAuth: credentials.clientAuth, retry: config.retry, circuitBreaker: config.circuitBreaker, events, counters })
      : undefined;
    const baseParameters: TokenRequestParameters = {
      scopes: credentials?.scopes ?? [],
      resource: credentials?.resource ?? [],
      audience: credentials?.audience,
      extra: credentials?.extra ?? {},
    };
    const keyBase = [config.tokenUrl ?? '', credentials?.clientAuth.clientId ?? ''] as const;
    const defaultKey = tokenKey(keyBase[0], keyBase[1], baseParameters);
    const keys = new Map<string, TokenKey>();
    const keyFor = (selector?: TokenSelector): TokenKey => {
      if (!selector || (selector.scopes === undefined && selector.resource === undefined && selector.audience === undefined)) return defaultKey;
      const { scopes, resource, audience } = selector;
      const memo = `${typeof scopes === 'string' ? scopes : (scopes?.join(' ') ?? '\u0000')}\u0001${typeof resource === 'string' ? resource : (resource?.join(' ') ?? '\u0000')}\u0001${audience ?? '\u0000'}`;
      let key = keys.get(memo);
      if (!key) {
        if (keys.size >= config.maxCachedTokens) keys.clear();
        const parameters: TokenRequestParameters = { ...baseParameters };
        // slice: an exact-size copy, for thousands of cached keys
        if (scopes !== undefined) parameters.scopes = parseScopes(scopes, 'scopes').slice();
        if (resource !== undefined) parameters.resource = parseResource(resource);
        if (audience !== undefined) {
          if (typeof audience !== 'string' || audience === '') throw new InvalidOptionError('audience', 'must be a non-empty string');
          parameters.audience = audience;
        }
        key = tokenKey(keyBase[0], keyBase[1], parameters);
        keys.set(memo, key);
      }
      return key;
    };
    const expiry = { clockSkew: credentials?.clockSkew ?? 0, refreshAhead: config.refreshAhead };
    const store = config.tokenStore ? new GuardedStore(config.tokenStore, config.tokenStoreTimeout, events, counters, undefined, { entryAuth: EntryAuth.fromCredentials(credentials?.clientAuth) }) : undefined;
    const managerContext = { lifecycle: undefined as unknown as TokenLifecycle, fetcher, defaultKey, keyFor, expiry, lifetime: config.lifetime, now };
    const manager = new ClientCredentialsAuthManager(managerContext);
    const lifecycle = new TokenLifecycle({
      now,
      expiry,
      lifetime: config.lifetime,
      maxEntries: config.maxCachedTokens,
      events,
      counters,
      fetch: (parameters, signal) => (fetcher ? fetcher.fetch(parameters, signal) : Promise.reject(cannotFetch(credentials !== undefined))),
      provider: credentials?.provider,
      providerManager: manager,
      onTokenUpdate: credentials?.onTokenUpdate,
      store,
      leaseTtl: config.tokenStore?.leaseTtl ?? 5_000,
      leaseWait: config.tokenStore?.leaseWait ?? Math.min(config.tokenRequestTimeout + 2_000, 35_000),
      refreshBackoff: { baseDelay: 1_000, maxDelay: 30_000 },
    });
    managerContext.lifecycle = lifecycle;
    if (credentials?.presetToken) lifecycle.set(defaultKey, credentials.presetToken, 'preset');
    return { events, counters, lifecycle, fetcher, manager, defaultKey, keyFor, endpoint };
  }

  /** The sender of authenticated requests, with 401 recovery: one layer over the transport. */
  #authenticatedSender(): (request: HttpRequest, key: TokenKey | undefined, retry: boolean) => Promise<HttpResponse> {
    const { lifecycle, counters, events } = this.#core;
    const transport = this.#io.transport;
    const hasCredentials = this.#config.credentials !== undefined;
    // The header value of the last token sent, built once per token rather than once per request.
    let lastToken: OAuthToken | undefined;
    let lastAccessToken = '';
    let lastType = '';
    let lastAuthorization = '';
    return async (request, key, retry) => {
      if (key === undefined) return transport(request);
      if (!hasCredentials) throw new MissingCredentialsError();
      const token = lifecycle.peek(key) ?? (await waitForToken(lifecycle, key, request, false));
      if (token !== lastToken || token.accessToken !== lastAccessToken || token.tokenType !== lastType) {
        lastAuthorization = authorizationValue(token);
        lastToken = token;
        lastAccessToken = token.accessToken;
        lastType = token.tokenType;
      }
      request.headers.authorization = lastAuthorization;
      const response = await transport(request);
      if (response.statusCode !== 401 || !retry) return response;
      lifecycle.invalidate(key, token.accessToken, 'unauthorized');
      const fresh = await waitForToken(lifecycle, key, request, true);
      counters.unauthorizedRetries++;
      if (events.has('unauthorizedRetried')) events.emit('unauthorizedRetried', { key: key.hash });
      request.headers.authorization = authorizationValue(fresh);
      return transport(request);
    };
  }

  /**
   * Sends one request. Authenticated requests (the default) carry `Authorization: Bearer <token>`.
   *
   * @returns the response, with `result` parsed when the body is JSON.
   * @throws ApiError for a non-2xx status (after one retry with a new token on 401).
   * @throws MissingCredentialsError for an authenticated call on a Client without credentials.
   */
  async request<T = unknown>(options: RequestOptions): Promise<ApiResponse<T>> {
    const method = options.method ? options.method.toUpperCase() : 'GET';
    const auth = options.auth !== false;
    const url = this.#url(options.path ?? '', options.query, auth);
    const headers = { ...this.#headers };
    if (options.headers) for (const name in options.headers) headers[name.toLowerCase()] = options.headers[name]!;
    let body = options.body;
    if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      headers['content-type'] ??= 'application/json';
    }
    const timeout = options.timeout === undefined ? this.#config.timeout : requestTimeout(options.timeout);
    const request: HttpRequest = { method, url, headers, body, signal: options.signal, timeout };
    const key = auth ? (options.scopes === undefined && options.resource === undefined && options.audience === undefined ? this.#core.defaultKey : this.#core.keyFor(options)) : undefined;
    const response = await this.#send(request, key, options.retryOnUnauthorized ?? this.#config.retryOnUnauthorized);
    let result: unknown;
    if (response.body !== '' && isJsonType(response.headers['content-type'])) {
      try {
        result = JSON.parse(response.body);
      } catch {
        result = undefined;
      }
    }
    if (response.statusCode < 200 || response.statusCode >= 300) {
      throw new ApiError({ ...response, result }, `${method} ${describeUrl(url)} responded with status ${response.statusCode}`);
    }
    return { statusCode: response.statusCode, headers: response.headers, body: response.body, result: result as T };
  }

  /** `GET path`. */
  get<T = unknown>(path: string, options?: Omit<RequestOptions, 'method' | 'path'>): Promise<ApiResponse<T>> {
    return this.request<T>({ ...options, method: 'GET', path });
  }

  /** `POST path` with a JSON body. */
  post<T = unknown>(path: string, json?: unknown, options?: Omit<RequestOptions, 'method' | 'path' | 'json'>): Promise<ApiResponse<T>> {
    return this.request<T>({ ...options, method: 'POST', path, json });
  }

  /** `PUT path` with a JSON body. */
  put<T = unknown>(path: string, json?: unknown, options?: Omit<RequestOptions, 'method' | 'path' | 'json'>): Promise<ApiResponse<T>> {
    return this.request<T>({ ...options, method: 'PUT', path, json });
  }

  /** `PATCH path` with a JSON body. */
  patch<T = unknown>(path: string, json?: unknown, options?: Omit<RequestOptions, 'method' | 'path' | 'json'>): Promise<ApiResponse<T>> {
    return this.request<T>({ ...options, method: 'PATCH', path, json });
  }

  /** `DELETE path`. */
  delete<T = unknown>(path: string, options?: Omit<RequestOptions, 'method' | 'path'>): Promise<ApiResponse<T>> {
    return this.request<T>({ ...options, method: 'DELETE', path });
  }

  #url(path: string, query: Record<string, QueryValue> | undefined, auth: boolean): string {
    let url: string;
    if (path.startsWith('https://') || path.startsWith('http://')) {
      url = path;
      const allowed = this.#config.allowedOrigins;
      if (auth && allowed.size > 0) {
        let origin: string;
        try {
          origin = new URL(path).origin;
        } catch {
          throw new InvalidOptionError('path', 'is not a valid absolute URL');
        }
        if (!allowed.has(origin)) throw new InvalidOptionError('path', `points at ${origin}, which may not receive the access token (add it to \`allowedOrigins\`)`);
      }
    } else {
      if (!this.#baseUrl) throw new InvalidOptionError('baseUrl', 'is required for relative request paths');
      url = path === '' ? this.#baseUrl : path.charCodeAt(0) === 47 /* / */ ? this.#baseUrl + path : `${this.#baseUrl}/${path}`;
    }
    return query ? appendQuery(url, query) : url;
  }

  /**
   * A new Client with `partial` merged over this one's configuration (credentials are merged field by field).
   * This Client is unchanged. When the credentials and token options are unchanged, both share one token cache,
   * so the clone does not start cold.
   */
  withConfiguration(partial: Partial<ClientConfiguration>): Client {
    const merged: ClientConfiguration = { ...this.#raw, ...partial };
    if (partial.clientCredentialsAuthCredentials && this.#raw.clientCredentialsAuthCredentials) {
      merged.clientCredentialsAuthCredentials = { ...this.#raw.clientCredentialsAuthCredentials, ...partial.clientCredentialsAuthCredentials };
    }
    const keepsAuth = !AUTH_OPTIONS.some((name) => name in partial);
    const keepsIo = !('dispatcher' in partial) && !('tls' in partial);
    if (keepsAuth || keepsIo) {
      Object.defineProperty(merged, SHARED, {
        value: { core: keepsAuth ? this.#core : undefined, io: keepsIo ? { ...this.#io, owned: false } : undefined },
        enumerable: false,
      });
    }
    return new Client(merged);
  }

  /**
   * Subscribes to a lifecycle event (`tokenFetched`, `tokenRefreshed`, `refreshFailed`, `tokenInvalidated`,
   * `requestRetried`, `circuitOpen`, `circuitClosed`…). Events never carry a secret or a token.
   *
   * @returns a function that unsubscribes.
   */
  on<K extends ClientEventName>(name: K, listener: Listener<K>): () => void {
    return this.#core.events.on(name, listener);
  }

  /** A snapshot of the Client's counters: token requests, cache hits, waits, background refreshes, failures, retries. */
  stats(): ClientStats {
    return { ...this.#core.counters, cachedTokens: this.#core.lifecycle.size, circuitOpen: this.#core.fetcher?.circuitOpen() ?? false };
  }

  /**
   * Closes the Client: cancels its token fetches in flight (background refreshes included, so no retry timer keeps
   * the process alive) and closes the connection pool it created. Afterwards a call that needs a new token rejects
   * with `AbortError`. A clone made by `withConfiguration` that shares this Client's token cache or connections
   * leaves them open when it is closed; closing the original ends them for every clone. Closing twice is harmless.
   */
  close(): Promise<void> {
    return (this.#closing ??= this.#close());
  }

  async #close(): Promise<void> {
    if (this.#ownsCore) this.#core.lifecycle.close();
    if (this.#io.owned) await this.#io.dispatcher.close();
  }

  /** @internal The token endpoint context, for `OAuthAuthorizationController`. */
  tokenEndpointContext(): TokenEndpointContext | undefined {
    return this.#core.endpoint;
  }

  /** A redacted description: never the secret or a token. */
  toJSON(): Record<string, unknown> {
    const credentials = this.#config.credentials;
    return {
      baseUrl: withoutUserinfo(this.#config.baseUrl),
      tokenUrl: withoutUserinfo(this.#config.tokenUrl),
      clientId: credentials?.clientAuth.clientId,
      clientAuthMethod: credentials?.clientAuth.method,
      scopes: credentials?.scopes,
      clientSecret: credentials?.clientAuth.clientSecret !== undefined ? '[redacted]' : undefined,
    };
  }

  /** @internal util.inspect shows the redacted description. */
  [inspect.custom](): string {
    return `Client ${inspect(this.toJSON())}`;
  }
}

/** Marks the shared parts a clone inherits (not enumerable, not part of the public configuration). */
const SHARED = Symbol('client-credentials.shared');

/**
 * The token for `request`, waiting on the shared fetch when needed (`peek` first when `peekFirst`). The request's
 * `signal` and `timeout` bound the wait as they bound the request itself: a timeout rejects with `TimeoutError`.
 */
async function waitForToken(lifecycle: TokenLifecycle, key: TokenKey, request: HttpRequest, peekFirst: boolean): Promise<OAuthToken> {
  const timeout = request.timeout ?? 0;
  if (timeout <= 0) return peekFirst ? lifecycle.get(key, request.signal) : lifecycle.wait(key, request.signal);
  const timer = new AbortController();
  const handle = setTimeout(() => timer.abort(new TimeoutError(`Waiting for an OAuth token timed out after ${timeout} ms`, timeout)), timeout);
  const signal = request.signal ? AbortSignal.any([request.signal, timer.signal]) : timer.signal;
  try {
    return await (peekFirst ? lifecycle.get(key, signal) : lifecycle.wait(key, signal));
  } catch (error) {
    if (timer.signal.aborted && !request.signal?.aborted) throw timer.signal.reason;
    throw error;
  } finally {
    clearTimeout(handle);
  }
}

/** Largest timeout Node's timers accept, in ms. */
const MAX_TIMEOUT = 2_147_483_647;

/** A request's own `timeout`, checked: a bad value would otherwise end as a confusing network error, or fire at once. */
function requestTimeout(value: unknown): number {
  if (typeof value !== 'number' || !(value >= 0 && value <= MAX_TIMEOUT)) {
    throw new InvalidOptionError('timeout', `of a request must be a number of milliseconds from 0 to ${MAX_TIMEOUT}, got ${typeof value === 'number' ? value : typeof value}`);
  }
  return value;
}

/** Why a token cannot be fetched on a Client without a token fetcher. */
function cannotFetch(hasCredentials: boolean): Error {
  if (!hasCredentials) return new MissingCredentialsError();
  // Credentials with neither a token endpoint nor a provider: only a preset oAuthToken, now expired or rejected.
  return new TokenExpiredError('The preset oAuthToken is expired or was rejected, and the Client cannot fetch another: set `tokenUrl` (or `oAuthTokenProvider`).');
}

/** `url` without `user:password@`, for descriptions. */
function withoutUserinfo(url: string | undefined): string | undefined {
  return url?.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#@]*@/i, '$1');
}

function authorizationValue(token: OAuthToken): string {
  const type = token.tokenType;
  return `${type === 'Bearer' || type.toLowerCase() === 'bearer' ? 'Bearer' : type} ${token.accessToken}`;
}

function lowerCaseKeys(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name in headers) out[name.toLowerCase()] = headers[name]!;
  return out;
}
