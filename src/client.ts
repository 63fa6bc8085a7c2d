/**
 * `Client`: calls an API with OAuth 2.0 Client Credentials tokens that it fetches, caches, refreshes and recovers
 * by itself. Configuration, `request()` and `withConfiguration()` live here; the token lifecycle is in `auth/`.
 */
import { inspect } from 'node:util';
import type { Dispatcher } from 'undici';
import { ClientCredentialsAuthManager, managerForKey } from './auth/authManager.js';
import { TokenFetcher } from './auth/tokenFetcher.js';
import { TokenLifecycle } from './auth/tokenLifecycle.js';
import { tokenKey, type TokenKey } from './auth/tokenKey.js';
import { assertUsableLifetime, recordFromInput, type TimePolicy } from './auth/tokenRecord.js';
import { TokenSource } from './auth/tokenSource.js';
import { Discovery } from './auth/discovery.js';
import { createDpopSigner, dpopTransport, type DpopSigner } from './auth/dpop.js';
import { credentialParameterValues, type TokenEndpointContext, type TokenRequestParameters } from './auth/tokenEndpoint.js';
import { parseResource, parseScopes, resolveConfiguration, type ClientConfiguration, type ResolvedConfiguration, type TokenSelector } from './configuration.js';
import { ApiError, InvalidOptionError, MissingCredentialsError, ResponseTooLargeError, TimeoutError, TokenExpiredError } from './errors.js';
import { emptyStats, EventHub, type ClientEventName, type ClientStats, type Listener } from './events.js';
import { assertSecureDestination, checkRequestOptions, isInsecureRemote, jsonBody, parseAbsoluteUrl } from './http/requestGuard.js';
import { BodyTooLargeError, closeDispatcher, createDispatcher, createTransport, describeUrl, isNormalOrigin, isVerbatimPath, type HttpRequest, type HttpResponse, type Transport } from './http/transport.js';
import { createFetchTransport, undiciIsUsable } from './http/fetchTransport.js';
import { createProxyDispatcher } from './http/proxy.js';
import { toApiResponse, transportResponseType, type ResponseType } from './http/responseBody.js';
import { Redactor, warnIfShortSecret } from './redaction.js';
import { optionsOfKind } from './optionKeys.js';
import { GuardedStore } from './stores/guardedStore.js';
import { EntryAuth } from './stores/entryAuth.js';
import { MemoryTokenStore } from './stores/memory.js';
import { extraSecrets, type OAuthToken } from './token.js';
import { createTokenAccess, type TokenAccess } from './adapters/tokenAccess.js';
import { createFetch, type ClientFetch } from './adapters/fetch.js';
import { createInterceptor, type DispatchInterceptor, type InterceptorOptions } from './adapters/interceptor.js';

/** Node's `util.inspect.custom`, spelled without Node's types so that the public types do not need them. */
const INSPECT: unique symbol = Symbol.for('nodejs.util.inspect.custom');

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
  /** Timeout in ms (0 to 2^31−1) for the whole of this request, body included, and for its wait for a token (`TimeoutError`); default the Client's `timeout`. */
  timeout?: number;
  /** Scopes for this request's token, instead of the configured `oAuthScopes`; tokens are cached per scope set. */
  scopes?: string | readonly string[];
  /** RFC 8707 resource indicator(s) for this request's token, instead of the configured `resource`; cached per resource. */
  resource?: string | readonly string[];
  /** The `audience` for this request's token, instead of the configured one; cached per audience. */
  audience?: string;
  /** On a 401, drop the token, fetch a new one and retry once. Default: the Client's `retryOnUnauthorized`. */
  retryOnUnauthorized?: boolean;
  /**
   * How the body is read: `'json'` (parsed into `result`, whatever the content-type), `'text'` (a string, never
   * parsed), `'bytes'` (a `Uint8Array`, byte for byte) or `'stream'` (an unread web `ReadableStream<Uint8Array>`;
   * read or cancel it). Default: the text in `body`, parsed into `result` when the content-type is JSON.
   */
  responseType?: ResponseType;
}

/**
 * The default options type when a caller names the result type (`client.get<Thing>(…)`): the body is then JSON, so a
 * `responseType` other than `'json'` is a type error there rather than a response typed wrong.
 */
type JsonResponse = { responseType?: 'json' };

/** The response a request with options `O` resolves to: its `body` type follows `responseType`. */
export type ResponseFor<O, T = unknown> = O extends { responseType: 'bytes' }
  ? ApiResponse<undefined, Uint8Array>
  : O extends { responseType: 'stream' }
    ? ApiResponse<undefined, ReadableStream<Uint8Array>>
    : O extends { responseType: 'text' }
      ? ApiResponse<undefined, string>
      : ApiResponse<T>;

/**
 * A 2xx response. `body` is the text, unless `responseType` asked for `bytes` (`Uint8Array`) or a `stream`
 * (`ReadableStream<Uint8Array>`). `result` is the parsed JSON: when the content-type is JSON or `responseType` is
 * `'json'`; `undefined` otherwise. It is `unknown` unless you name its type (`client.get<Thing>(…)`), which is a
 * claim about the API that is not checked at run time.
 */
export interface ApiResponse<T = unknown, B = string> {
  /** HTTP status code (2xx). */
  statusCode: number;
  /** Response headers, names lower-cased, repeated headers joined with `, `. */
  headers: Record<string, string>;
  /** The body, as `responseType` asked. */
  body: B;
  /** The parsed JSON body, or `undefined`. */
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
  dpop: DpopSigner | undefined;
  /** Knows the client secret and every token this cache held; scrubs errors and events. */
  redactor: Redactor;
}

interface Transports {
  dispatcher: Dispatcher;
  owned: boolean;
  transport: Transport;
}

/** The dispatcher slot of a Client whose transport is the runtime's fetch (nothing to close). */
const NO_DISPATCHER = { close: async () => undefined } as unknown as Dispatcher;

/** Options that, when changed by `withConfiguration`, need a separate token cache; and those that need other connections. */
const AUTH_OPTIONS = optionsOfKind('token', 'connection');
const IO_OPTIONS = optionsOfKind('connection');

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
  /** `baseUrl` is plain http to another machine and `allowInsecureHttp` is off: no token goes there. */
  readonly #baseInsecure: boolean;
  /** `baseUrl` as undici's origin and path, when a URL parser would leave it unchanged. */
  readonly #baseSplit: { origin: string; path: string } | undefined;
  readonly #send: (request: HttpRequest, key: TokenKey | undefined, retry: boolean) => Promise<HttpResponse>;
  #closing: Promise<void> | undefined;
  #access: TokenAccess | undefined;
  #fetch: ClientFetch | undefined;

  constructor(config: ClientConfiguration = {}) {
    const resolved = resolveConfiguration(config);
    const inherited = (config as { [SHARED]?: { core: AuthCore; io: Transports } })[SHARED];
    this.#raw = config;
    this.#config = resolved;
    this.#io = inherited?.io ?? Client.#transports(resolved);
    // A relative tokenUrl follows baseUrl: a clone whose token endpoint moved with it gets a token cache of its own.
    const core = inherited?.core && inherited.core.endpoint?.tokenUrl === (resolved.tokenUrl ?? resolved.issuer) ? inherited.core : undefined;
    this.#ownsCore = core === undefined;
    this.#core = core ?? Client.#authCore(resolved, this.#io.transport);
    this.clientCredentialsAuthManager = this.#core.manager;
    this.#headers = { 'user-agent': resolved.userAgent, ...lowerCaseKeys(resolved.headers) };
    this.#baseUrl = resolved.baseUrl ?? '';
    if (resolved.baseUrl) {
      // `baseUrl` split once into origin and path, when both are in normal form: requests to relative paths then reach
      // undici already split, without a URL parse or a split per request.
      const slash = resolved.baseUrl.indexOf('/', resolved.baseUrl.indexOf('//') + 2);
      const origin = slash < 0 ? resolved.baseUrl : resolved.baseUrl.slice(0, slash);
      const basePath = slash < 0 ? '' : resolved.baseUrl.slice(slash);
      if (isNormalOrigin(origin) && (basePath === '' || isVerbatimPath(basePath))) this.#baseSplit = { origin, path: basePath };
    }
    this.#baseInsecure = resolved.baseUrl !== undefined && !resolved.allowInsecureHttp && isInsecureRemote(resolved.baseUrl);
    this.#send = this.#authenticatedSender();
  }

  static #transports(config: ResolvedConfiguration): Transports {
    // Bun's `undici` is a stub without a working Agent: there, requests go through the runtime's own fetch.
    if (!config.dispatcher && !undiciIsUsable()) {
      // Bun's fetch reads the proxy environment variables by itself.
      return { dispatcher: NO_DISPATCHER, owned: false, transport: createFetchTransport({ tls: config.tls, proxy: config.proxy === 'env' ? undefined : config.proxy }) };
    }
    const owned = !config.dispatcher;
    const tls = config.tls as Record<string, unknown> | undefined;
    const dispatcher = (config.dispatcher ?? (config.proxy ? createProxyDispatcher(config.proxy, tls) : createDispatcher(tls))) as Dispatcher;
    return { dispatcher, owned, transport: createTransport(dispatcher) };
  }

  static #authCore(config: ResolvedConfiguration, transport: Transport): AuthCore {
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
    const entryAuth = config.tokenStore ? EntryAuth.fromCredentials(credentials?.clientAuth, { tokenStoreKey: config.tokenStoreKey, tls: config.tls }) : undefined;
    // A shared store without an integrity key would let anyone who can write it choose the token this Client sends.
    if (config.tokenStore && !entryAuth && !(config.tokenStore instanceof MemoryTokenStore)) {
      throw new InvalidOptionError('tokenStoreKey', 'is required with a shared tokenStore when the credentials hold no client secret or private key (`none`, TLS client authentication without `tls.key`, a platform `clientAssertion`, a provider alone): its entries could not be authenticated');
    }
    const store = config.tokenStore ? new GuardedStore(config.tokenStore, config.tokenStoreTimeout, events, counters, undefined, { entryAuth }) : undefined;
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
    const lifecycle = new TokenLifecycle({ now, monotonic, policy, maxEntries: config.maxCachedTokens, events, counters, source, onTokenUpdate: credentials?.onTokenUpdate, learn, store });
    managerContext.lifecycle = lifecycle;
    redactor.addToken(credentials?.presetToken?.accessToken);
    if (credentials?.presetToken) lifecycle.set(defaultKey, credentials.presetToken, 'preset');
    return { events, counters, lifecycle, fetcher, manager, defaultKey, keyFor, endpoint, dpop, redactor };
  }

  /** The sender of authenticated requests, with 401 recovery: one layer over the transport. */
  #authenticatedSender(): (request: HttpRequest, key: TokenKey | undefined, retry: boolean) => Promise<HttpResponse> {
    const { lifecycle, counters, events, redactor } = this.#core;
    const transport = dpopTransport(this.#core.dpop, this.#io.transport);
    const hasCredentials = this.#config.credentials !== undefined;
    // The header value of the last token sent, built once per token rather than once per request.
    let lastToken: OAuthToken | undefined;
    let lastAccessToken = '';
    let lastType = '';
    let lastAuthorization = '';
    return async (request, key, retry) => {
      if (key === undefined) return transport(request);
      if (!hasCredentials) throw new MissingCredentialsError();
      const token = lifecycle.peek(key) ?? (await waitForToken(lifecycle, key, request));
      if (token !== lastToken || token.accessToken !== lastAccessToken || token.tokenType !== lastType) {
        lastAuthorization = authorizationValue(token);
        redactor.addToken(token.accessToken);
        lastToken = token;
        lastAccessToken = token.accessToken;
        lastType = token.tokenType;
      }
      request.headers.authorization = lastAuthorization;
      const response = await transport(request);
      if (response.statusCode !== 401 || !retry) return response;
      // A 401 drops the token for good (never installed again from any source) and joins the fetch that replaces it,
      // a background refresh already running included; a route that refuses every new token is not re-fetched for
      // each call: its 401 reaches the caller.
      if (lifecycle.refuse(key, token.accessToken) === 'throttled') return response;
      void response.stream?.cancel().catch(() => undefined);
      const fresh = await waitForToken(lifecycle, key, request);
      counters.unauthorizedRetries++;
      if (events.has('unauthorizedRetried')) events.emit('unauthorizedRetried', { key: key.hash });
      request.headers.authorization = authorizationValue(fresh);
      redactor.addToken(fresh.accessToken);
      return transport(request);
    };
  }

  /**
   * Sends one request. Authenticated requests (the default) carry `Authorization: Bearer <token>`.
   *
   * @returns the response, with `result` parsed when the body is JSON.
   * @throws ApiError for a non-2xx status (after one retry with a new token on 401).
   * @throws MissingCredentialsError for an authenticated call on a Client without credentials.
   * @throws InvalidOptionError for a malformed option (before any I/O), or a URL the token may not be sent to.
   * @throws ResponseTooLargeError for a body larger than `maxResponseBytes`.
   */
  async request<T = unknown, O extends RequestOptions = RequestOptions & JsonResponse>(options: O): Promise<ResponseFor<O, T>> {
    checkRequestOptions(options);
    try {
      // One async frame for the whole request (this function's): each further one costs a promise and a tick.
      const method = options.method ? options.method.toUpperCase() : 'GET';
      const auth = options.auth !== false;
      const request = this.#prepare(options, method, auth);
      const key = auth ? (options.scopes === undefined && options.resource === undefined && options.audience === undefined ? this.#core.defaultKey : this.#core.keyFor(options)) : undefined;
      const response = await this.#send(request, key, options.retryOnUnauthorized ?? this.#config.retryOnUnauthorized);
      const out = toApiResponse(response, options.responseType, method, request.url);
      return (out instanceof Promise ? await out : out) as ResponseFor<O, T>;
    } catch (error) {
      if (error instanceof BodyTooLargeError) {
        throw new ResponseTooLargeError(`${describeUrl(this.#url(options.path ?? '', undefined, false))} answered with a body larger than \`maxResponseBytes\` (${error.limit} bytes)`, error.limit, error.statusCode);
      }
      throw this.#core.redactor.scrub(error);
    }
  }

  /** The transport request of `options`: URL, headers, body, timeout, response type (checks that throw before any I/O). */
  #prepare(options: RequestOptions, method: string, auth: boolean): HttpRequest {
    const url = this.#url(options.path ?? '', options.query, auth);
    // Copied key by key: a spread copy that then gains a property (`authorization` below) costs V8 about 20 times more.
    const headers: Record<string, string> = {};
    for (const name in this.#headers) headers[name] = this.#headers[name]!;
    if (options.headers) for (const name in options.headers) headers[name.toLowerCase()] = options.headers[name]!;
    let body = options.body;
    if (options.json !== undefined) {
      body = jsonBody(options.json);
      headers['content-type'] ??= 'application/json';
    }
    const timeout = options.timeout === undefined ? this.#config.timeout : requestTimeout(options.timeout);
    const request: HttpRequest = { method, url, headers, body, signal: options.signal, timeout, maxBodyBytes: this.#config.maxResponseBytes };
    // A path like `/things` on `baseUrl` reaches undici already split (the transport neither splits nor parses it).
    const base = this.#baseSplit;
    const path = options.path;
    if (base !== undefined && options.query === undefined && path !== undefined && path.charCodeAt(0) === 47 /* / */) {
      const fullPath = base.path === '' ? path : base.path + path;
      if (isVerbatimPath(fullPath)) {
        request.origin = base.origin;
        request.path = fullPath;
      }
    }
    const responseType = transportResponseType(options.responseType);
    if (responseType !== 'text') request.responseType = responseType;
    return request;
  }

  /** `GET path`. */
  get<T = unknown, O extends Omit<RequestOptions, 'method' | 'path'> = Omit<RequestOptions, 'method' | 'path'> & JsonResponse>(path: string, options?: O): Promise<ResponseFor<O, T>> {
    return this.request<T, RequestOptions>({ ...options, method: 'GET', path }) as Promise<ResponseFor<O, T>>;
  }

  /** `POST path` with a JSON body. */
  post<T = unknown, O extends Omit<RequestOptions, 'method' | 'path' | 'json'> = Omit<RequestOptions, 'method' | 'path' | 'json'> & JsonResponse>(path: string, json?: unknown, options?: O): Promise<ResponseFor<O, T>> {
    return this.request<T, RequestOptions>({ ...options, method: 'POST', path, json }) as Promise<ResponseFor<O, T>>;
  }

  /** `PUT path` with a JSON body. */
  put<T = unknown, O extends Omit<RequestOptions, 'method' | 'path' | 'json'> = Omit<RequestOptions, 'method' | 'path' | 'json'> & JsonResponse>(path: string, json?: unknown, options?: O): Promise<ResponseFor<O, T>> {
    return this.request<T, RequestOptions>({ ...options, method: 'PUT', path, json }) as Promise<ResponseFor<O, T>>;
  }

  /** `PATCH path` with a JSON body. */
  patch<T = unknown, O extends Omit<RequestOptions, 'method' | 'path' | 'json'> = Omit<RequestOptions, 'method' | 'path' | 'json'> & JsonResponse>(path: string, json?: unknown, options?: O): Promise<ResponseFor<O, T>> {
    return this.request<T, RequestOptions>({ ...options, method: 'PATCH', path, json }) as Promise<ResponseFor<O, T>>;
  }

  /** `DELETE path`. */
  delete<T = unknown, O extends Omit<RequestOptions, 'method' | 'path'> = Omit<RequestOptions, 'method' | 'path'> & JsonResponse>(path: string, options?: O): Promise<ResponseFor<O, T>> {
    return this.request<T, RequestOptions>({ ...options, method: 'DELETE', path }) as Promise<ResponseFor<O, T>>;
  }

  #url(path: string, query: Record<string, QueryValue> | undefined, auth: boolean): string {
    let url: string;
    if (path.startsWith('https://') || path.startsWith('http://')) {
      url = path;
      const allowed = this.#config.allowedOrigins;
      const origin = parseAbsoluteUrl(path).origin;
      if (auth) {
        if (allowed.size === 0) throw new InvalidOptionError('allowedOrigins', `is empty and there is no \`baseUrl\`: nothing says the access token may go to ${origin} (set \`baseUrl\`, or list the origin in \`allowedOrigins\`)`);
        if (!allowed.has(origin)) throw new InvalidOptionError('path', `points at ${origin}, which may not receive the access token (add it to \`allowedOrigins\`)`);
        assertSecureDestination(origin, this.#config.allowInsecureHttp);
      }
    } else {
      if (!this.#baseUrl) throw new InvalidOptionError('baseUrl', 'is required for relative request paths');
      if (auth && this.#baseInsecure) assertSecureDestination(new URL(this.#baseUrl).origin, false);
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
    const keepsIo = !IO_OPTIONS.some((name) => name in partial);
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
    if (this.#io.owned) await closeDispatcher(this.#io.dispatcher, this.#config.closeTimeout);
  }

  /**
   * WHATWG `fetch` with this Client's token, bound: pass it as a value (`createClient({ fetch: client.fetch })`,
   * `ky.create({ fetch: client.fetch })`). The token goes only to `baseUrl`'s origin and `allowedOrigins`; a 401
   * drops the token and the request is retried once with a new one when its body can be replayed. `init.oauth`
   * selects the token (`scopes`, `resource`, `audience`) for one call.
   *
   * @throws InvalidOptionError (on access) when the Client allows no origin.
   */
  get fetch(): ClientFetch {
    return (this.#fetch ??= createFetch(this.tokenAccess()));
  }

  /**
   * An undici interceptor: `setGlobalDispatcher(new Agent().compose(client.interceptor()))` gives Node's `fetch` and
   * `undici.request` this Client's token for its allowed origins, and nothing for other origins.
   *
   * @throws InvalidOptionError when the Client allows no origin, or for a bad `scopes`/`resource`/`audience`.
   */
  interceptor(options?: InterceptorOptions): DispatchInterceptor {
    return createInterceptor(this.tokenAccess(), options);
  }

  /** @internal The token machinery for the adapters (fetch, undici interceptor, axios): not public API. */
  tokenAccess(): TokenAccess {
    const core = this.#core;
    return (this.#access ??= createTokenAccess({
      lifecycle: core.lifecycle,
      events: core.events,
      counters: core.counters,
      defaultKey: core.defaultKey,
      keyFor: core.keyFor,
      allowedOrigins: this.#config.allowedOrigins,
      hasCredentials: this.#config.credentials !== undefined,
      retryOnUnauthorized: this.#config.retryOnUnauthorized,
      timeout: this.#config.timeout,
      tokenUrl: this.#config.tokenUrl,
      dispatcher: this.#config.dispatcher !== undefined || this.#config.tls !== undefined ? this.#io.dispatcher : undefined,
    }));
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
      ...(this.#config.issuer ? { issuer: this.#config.issuer } : {}),
      ...(this.#core.dpop ? { dpop: this.#core.dpop.algorithm } : {}),
      clientId: credentials?.clientAuth.clientId,
      clientAuthMethod: credentials?.clientAuth.method,
      scopes: credentials?.scopes,
      clientSecret: credentials?.clientAuth.clientSecret !== undefined ? '[redacted]' : undefined,
    };
  }

  /** @internal util.inspect shows the redacted description. */
  [INSPECT](): string {
    return `Client ${inspect(this.toJSON())}`;
  }
}

/** `provider` with its failures scrubbed of the client's credentials before the lifecycle wraps them. */
function redactingProvider(provider: NonNullable<ResolvedConfiguration['credentials']>['provider'] & {}, redactor: Redactor): typeof provider {
  return async (last, manager) => {
    try {
      return learnt(redactor)(await provider(last, manager));
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

/** Marks the shared parts a clone inherits (not enumerable, not part of the public configuration). */
const SHARED = Symbol('oauth-client-credentials.shared');

/**
 * The token for `request`, waiting on the shared fetch when needed. The request's `signal` and `timeout` bound the
 * wait as they bound the request itself (a timeout rejects with `TimeoutError`); the shared fetch goes on for later
 * callers.
 */
async function waitForToken(lifecycle: TokenLifecycle, key: TokenKey, request: HttpRequest): Promise<OAuthToken> {
  const timeout = request.timeout ?? 0;
  if (timeout <= 0) return lifecycle.get(key, request.signal);
  const timer = new AbortController();
  const handle = setTimeout(() => timer.abort(new TimeoutError(`Waiting for an OAuth token timed out after ${timeout} ms`, timeout)), timeout);
  const signal = request.signal ? AbortSignal.any([request.signal, timer.signal]) : timer.signal;
  try {
    return await lifecycle.get(key, signal);
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
