/**
 * `Client`: calls an API with OAuth 2.0 Client Credentials tokens that it fetches, caches, refreshes and recovers
 * by itself. Configuration, `request()` and `withConfiguration()` live here; the token lifecycle is in `auth/`.
 */
import { inspect } from 'node:util';
import type { Dispatcher } from 'undici';
import type { ClientCredentialsAuthManager } from './auth/authManager.js';
import { createAuthCore, type AuthCore } from './auth/authCore.js';
import type { TokenKey } from './auth/tokenKey.js';
import { dpopTransport } from './auth/dpop.js';
import type { TokenEndpointContext } from './auth/tokenEndpoint.js';
import { resolveConfiguration, type ClientConfiguration, type ResolvedConfiguration } from './configuration.js';
import { InvalidOptionError, ResponseTooLargeError } from './errors.js';
import { CLIENT_EVENT_NAMES, type ClientEventName, type ClientStats, type Listener } from './events.js';
import { assertSecureDestination, callOptionsError, checkRequestOptions, isInsecureRemote, jsonBody, parseAbsoluteUrl } from './http/requestGuard.js';
import { BodyTooLargeError, closeDispatcher, createDispatcher, createTransport, describeUrl, isNormalOrigin, isVerbatimPath, timedOut, type HttpRequest, type HttpResponse, type Transport } from './http/transport.js';
import { createFetchTransport, undiciIsUsable } from './http/fetchTransport.js';
import { createProxyDispatcher } from './http/proxy.js';
import { toApiResponse, transportResponseType, type ResponseType } from './http/responseBody.js';
import { optionsOfKind, suggest, unknownCallOption } from './optionKeys.js';
import { MAX_TIMER_MS } from './defaults.js';
import type { OAuthToken } from './token.js';
import { createTokenAccess, type TokenAccess, type TokenAccessSource } from './adapters/tokenAccess.js';
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
  /** Timeout in ms (0 to 2^31−1) for the whole of this request (`TimeoutError`): its wait for a token, the exchange, body included, and a retry after a 401 share it; default the Client's `timeout`. */
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

/** Every key of {@link RequestOptions}: any other key of a request's options is a mistake (checked at run time). */
const REQUEST_OPTION_KEYS = {
  method: true,
  path: true,
  query: true,
  headers: true,
  body: true,
  json: true,
  auth: true,
  signal: true,
  timeout: true,
  scopes: true,
  resource: true,
  audience: true,
  retryOnUnauthorized: true,
  responseType: true,
} as const satisfies Record<keyof RequestOptions, true>;

/**
 * Throws {@link InvalidOptionError} for a key of a request's options that {@link RequestOptions} lacks (a JavaScript
 * caller's `scope` or `header` would otherwise be ignored in silence). On the hot path: a `for…in` and a `switch` on
 * the known names, no allocation (about 13 ns for two keys). The `switch` covers every key of `RequestOptions`: one
 * added there and not here is a type error in `default`.
 */
function assertRequestKeys(options: object): void {
  for (const key in options) {
    const name = key as keyof RequestOptions;
    switch (name) {
      case 'method':
      case 'path':
      case 'query':
      case 'headers':
      case 'body':
      case 'json':
      case 'auth':
      case 'signal':
      case 'timeout':
      case 'scopes':
      case 'resource':
      case 'audience':
      case 'retryOnUnauthorized':
      case 'responseType':
        continue;
      default: {
        const unknown: never = name;
        throw unknownCallOption(unknown, REQUEST_OPTION_KEYS, 'of a request (`client.request`, `client.get`…)');
      }
    }
  }
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

interface Transports {
  dispatcher: Dispatcher;
  owned: boolean;
  transport: Transport;
}

/** The HTTP method of each shorthand request method (`client.get`…). */
const VERB_METHODS = { get: 'GET', post: 'POST', put: 'PUT', patch: 'PATCH', delete: 'DELETE' } as const;

/** The dispatcher slot of a Client whose transport is the runtime's fetch (nothing to close). */
const NO_DISPATCHER = { close: async () => undefined } as unknown as Dispatcher;

/** Options that, when changed by `withConfiguration`, need a separate token cache; and those that need other connections. */
const AUTH_OPTIONS = optionsOfKind('token', 'connection');
const IO_OPTIONS = optionsOfKind('connection');

/**
 * `value` as one query value: a string, number or boolean as its `String()`. Anything else (an object, a symbol, a
 * function, a nested array, null inside an array…) is an {@link InvalidOptionError}: it would be sent as
 * `[object Object]` or `null`, or throw a bare TypeError.
 */
function queryValue(name: string, value: unknown, inArray: boolean): string {
  const type = typeof value;
  if (type === 'string') return value as string;
  if (type === 'number' || type === 'boolean') return String(value);
  const what = value === null ? 'null' : value === undefined ? 'undefined' : Array.isArray(value) ? 'an array' : type === 'object' ? 'an object' : `a ${type}`;
  throw new InvalidOptionError('query', `has ${what} ${inArray ? 'in the array of' : 'for'} ${JSON.stringify(name.slice(0, 40))}: a query value is a string, a number, a boolean or an array of them (null or undefined leaves the parameter out)`);
}

function appendQuery(url: string, query: Record<string, QueryValue>): string {
  const params = new URLSearchParams();
  for (const name in query) {
    const value = query[name];
    if (value === undefined || value === null) continue;
    if (Array.isArray(value)) for (const item of value) params.append(name, queryValue(name, item, true));
    else params.append(name, queryValue(name, value, false));
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
export class Client implements TokenAccessSource {
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
  /** The transport of API requests: a DPoP proof added to a request sent with a DPoP-bound token. */
  readonly #transport: (request: HttpRequest) => Promise<HttpResponse>;
  #closing: Promise<void> | undefined;
  /** The last request path found verbatim (see `#prepare`). */
  #lastVerbatim = '';
  readonly #access: TokenAccess;
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
    this.#core = core ?? createAuthCore(resolved, this.#io.transport);
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
    this.#transport = dpopTransport(this.#core.dpop, this.#io.transport);
    this.#access = this.#createAccess();
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
    return { dispatcher, owned, transport: createTransport(dispatcher, owned) };
  }

  /**
   * After a 401 to `token`: the token is refused for good (never installed again from any source), and the request
   * sent once more with a new one, joining the fetch that replaces it; undefined when the key's tokens keep being
   * refused (a route that refuses every token: its 401 goes to the caller, with no token request).
   */
  /**
   * Waits for a token for `request`, within what is left of its `timeout`: the wait starts the request's deadline
   * (kept by the transport), so the token wait, the exchange and a retry after a 401 share one `timeout`.
   */
  #waitForToken(key: TokenKey, request: HttpRequest): Promise<OAuthToken> {
    if (!request.timeout) return this.#access.token(key, request.signal, request.timeout);
    const now = Date.now();
    if (request.deadline === undefined) {
      request.deadline = now + request.timeout;
      return this.#access.token(key, request.signal, request.timeout);
    }
    const left = request.deadline - now;
    if (left <= 0) return Promise.reject(timedOut(request));
    return this.#access.token(key, request.signal, left);
  }

  async #afterUnauthorized(request: HttpRequest, key: TokenKey, token: OAuthToken, response: HttpResponse): Promise<HttpResponse | undefined> {
    const access = this.#access;
    if (!access.unauthorized(key, token.accessToken)) return undefined;
    void response.stream?.cancel().catch(() => undefined);
    const fresh = await this.#waitForToken(key, request);
    access.retried(key);
    request.headers.authorization = access.authorization(fresh);
    return this.#transport(request);
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
    assertRequestKeys(options);
    try {
      // One async frame for the whole request (this function's): each further one costs a promise and a tick.
      const method = options.method ? options.method.toUpperCase() : 'GET';
      const auth = options.auth !== false;
      const request = this.#prepare(options, method, auth);
      const key = auth ? (options.scopes === undefined && options.resource === undefined && options.audience === undefined ? this.#core.defaultKey : this.#core.keyFor(options)) : undefined;
      // The token from the same token access the adapters use: the cached one at once, else a wait bounded by the
      // request's `signal` and `timeout`.
      let token: OAuthToken | undefined;
      if (key !== undefined) {
        const access = this.#access;
        token = access.peek(key) ?? (await this.#waitForToken(key, request));
        request.headers.authorization = access.authorization(token);
      }
      let response = await this.#transport(request);
      if (token !== undefined && response.statusCode === 401 && (options.retryOnUnauthorized ?? this.#config.retryOnUnauthorized)) {
        response = (await this.#afterUnauthorized(request, key!, token, response)) ?? response;
      }
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
    const request: HttpRequest = { method, url, headers, body, signal: options.signal, timeout, deadline: undefined, maxBodyBytes: this.#config.maxResponseBytes };
    // A path like `/things` on `baseUrl` reaches undici already split (the transport neither splits nor parses it).
    const base = this.#baseSplit;
    const path = options.path;
    if (base !== undefined && options.query === undefined && path !== undefined && path.charCodeAt(0) === 47 /* / */) {
      const fullPath = base.path === '' ? path : base.path + path;
      // The last path found verbatim is not checked again (a hot path calls the same few paths).
      let verbatim = fullPath === this.#lastVerbatim;
      if (!verbatim && isVerbatimPath(fullPath)) {
        verbatim = true;
        this.#lastVerbatim = fullPath;
      }
      if (verbatim) {
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
    return this.#verb('get', path, options) as Promise<ResponseFor<O, T>>;
  }

  /** `POST path` with a JSON body. */
  post<T = unknown, O extends Omit<RequestOptions, 'method' | 'path' | 'json'> = Omit<RequestOptions, 'method' | 'path' | 'json'> & JsonResponse>(path: string, json?: unknown, options?: O): Promise<ResponseFor<O, T>> {
    return this.#verb('post', path, options, json) as Promise<ResponseFor<O, T>>;
  }

  /** `PUT path` with a JSON body. */
  put<T = unknown, O extends Omit<RequestOptions, 'method' | 'path' | 'json'> = Omit<RequestOptions, 'method' | 'path' | 'json'> & JsonResponse>(path: string, json?: unknown, options?: O): Promise<ResponseFor<O, T>> {
    return this.#verb('put', path, options, json) as Promise<ResponseFor<O, T>>;
  }

  /** `PATCH path` with a JSON body. */
  patch<T = unknown, O extends Omit<RequestOptions, 'method' | 'path' | 'json'> = Omit<RequestOptions, 'method' | 'path' | 'json'> & JsonResponse>(path: string, json?: unknown, options?: O): Promise<ResponseFor<O, T>> {
    return this.#verb('patch', path, options, json) as Promise<ResponseFor<O, T>>;
  }

  /** `DELETE path`. */
  delete<T = unknown, O extends Omit<RequestOptions, 'method' | 'path'> = Omit<RequestOptions, 'method' | 'path'> & JsonResponse>(path: string, options?: O): Promise<ResponseFor<O, T>> {
    return this.#verb('delete', path, options) as Promise<ResponseFor<O, T>>;
  }

  /**
   * What `get`, `post`, `put`, `patch` and `delete` send: `options` (refused unless it is an object, before it is
   * spread) with the method and path, and for the three body methods the `json` argument.
   */
  #verb(name: keyof typeof VERB_METHODS, path: string, options: object | undefined, json?: unknown): Promise<unknown> {
    const invalid = callOptionsError(name, options);
    if (invalid) return Promise.reject(invalid);
    const method = VERB_METHODS[name];
    return this.request<unknown, RequestOptions>(name === 'get' || name === 'delete' ? { ...options, method, path } : { ...options, method, path, json });
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
    if (typeof name !== 'string' || !Object.hasOwn(CLIENT_EVENT_NAMES, name)) {
      // A misspelt name would subscribe to an event that never fires.
      const shown = typeof name === 'string' ? name.slice(0, 64) : typeof name;
      const hint = typeof name === 'string' ? suggest(name, Object.keys(CLIENT_EVENT_NAMES)) : undefined;
      throw new InvalidOptionError(`on('${shown}')`, `names no event of the Client${hint ? `; did you mean \`${hint}\`?` : ` (the events: ${Object.keys(CLIENT_EVENT_NAMES).join(', ')})`}`);
    }
    if (typeof listener !== 'function') throw new InvalidOptionError(`on('${name}')`, `needs a listener function, got ${listener === null ? 'null' : typeof listener}`);
    return this.#core.events.on(name, listener);
  }

  /** A snapshot of the Client's counters: token requests, cache hits, waits, background refreshes, failures, retries. */
  stats(): ClientStats {
    return { ...this.#core.counters, cachedTokens: this.#core.lifecycle.size, circuitOpen: this.#core.fetcher?.circuitOpen() ?? false };
  }

  /**
   * Closes the Client: cancels its token fetches in flight (background refreshes included, so no retry timer keeps
   * the process alive) and closes the connection pool it created. Afterwards a call that needs a new token, or that
   * would go through the closed pool, rejects with `AbortError` (nothing is sent). A clone made by `withConfiguration` that shares this Client's token cache or connections
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
    return this.#access;
  }

  /** The token access of this Client: `request()` and every adapter get tokens, headers and 401 refusals through it. */
  #createAccess(): TokenAccess {
    const core = this.#core;
    return createTokenAccess({
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
      dpop: core.dpop,
      baseUrl: this.#config.baseUrl,
      learn: (accessToken) => core.redactor.addToken(accessToken),
      scrub: (value) => core.redactor.scrub(value),
      allowInsecureHttp: this.#config.allowInsecureHttp,
    });
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

/** Marks the shared parts a clone inherits (not enumerable, not part of the public configuration). */
const SHARED = Symbol('oauth-client-credentials.shared');

/** A request's own `timeout`, checked: a bad value would otherwise end as a confusing network error, or fire at once. */
function requestTimeout(value: unknown): number {
  if (typeof value !== 'number' || !(value >= 0 && value <= MAX_TIMER_MS)) {
    throw new InvalidOptionError('timeout', `of a request must be a number of milliseconds from 0 to ${MAX_TIMER_MS}, got ${typeof value === 'number' ? value : typeof value}`);
  }
  return value;
}

/** `url` without `user:password@`, for descriptions. */
function withoutUserinfo(url: string | undefined): string | undefined {
  return url?.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#@]*@/i, '$1');
}

function lowerCaseKeys(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name in headers) out[name.toLowerCase()] = headers[name]!;
  return out;
}
