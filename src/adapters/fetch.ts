/**
 * `client.fetch`: the WHATWG `fetch(input, init?)` with the Client's token. The token goes only to the Client's
 * allowed origins (`baseUrl`'s and `allowedOrigins`); a 401 drops the token (generation-guarded) and the request is
 * sent once more with a new one when its body can be replayed. Requests go through Node's `fetch` on the Client's
 * global dispatcher (or the Client's, when it was given `dispatcher` or `tls`), so the result is a standard `Response`.
 */
import type { TokenSelector } from '../configuration.js';
import type { OAuthToken } from '../token.js';
import { requireAllowedOrigins, retryOption, type AccessKey, type TokenAccess } from './tokenAccess.js';
import { assertSelectorKeys, SELECTOR_OPTION_KEYS } from '../optionKeys.js';

/** A `fetch` headers init. */
type HeadersInit = NonNullable<RequestInit['headers']>;

/** Per-call token options of {@link ClientFetch}, in `init.oauth`. */
export interface ClientFetchOptions extends TokenSelector {
  /** On a 401, drop the token, fetch a new one and retry once (when the body can be replayed). Default: the Client's `retryOnUnauthorized`. */
  retryOnUnauthorized?: boolean;
}

// The keys checked at run time are every key of these options (a type error here when one is added to them alone).
SELECTOR_OPTION_KEYS satisfies Record<keyof ClientFetchOptions, true>;

/** `RequestInit` with the Client's per-call token options. */
export interface ClientFetchInit extends RequestInit {
  /** Which token this call uses (scopes, resource, audience), and whether a 401 is retried. */
  oauth?: ClientFetchOptions;
}

/** The signature of `client.fetch`: WHATWG `fetch`, with an optional `init.oauth`. */
export type ClientFetch = (input: string | URL | Request, init?: ClientFetchInit) => Promise<Response>;

/** Whether a `fetch` body can be sent twice: everything but streams and async iterables. */
function replayable(body: unknown): boolean {
  if (body === undefined || body === null || typeof body === 'string') return true;
  if (body instanceof ReadableStream) return false;
  return typeof (body as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] !== 'function';
}

/** Whether `headers` (a `HeadersInit`) names an `Authorization` header. */
function hasAuthorization(headers: HeadersInit): boolean {
  if (headers instanceof Headers) return headers.has('authorization');
  if (Array.isArray(headers)) return headers.some((pair) => String(pair[0]).toLowerCase() === 'authorization');
  for (const name in headers) if (name.length === 13 && name.toLowerCase() === 'authorization') return true;
  return false;
}

/**
 * Whether `headers` is an iterable of pairs other than an array or `Headers` (a `Map`, a generator): fetch takes any,
 * and a generator can be read only once, so such headers are copied into `Headers` before they are looked at.
 */
function isOtherIterable(headers: HeadersInit): boolean {
  return !(headers instanceof Headers) && !Array.isArray(headers) && typeof (headers as Partial<Iterable<unknown>>)[Symbol.iterator] === 'function';
}

/** `headers` plus `authorization: value` (and `dpop: proof` when given), leaving the caller's object alone. */
function withAuthorization(headers: HeadersInit | undefined, value: string, proof?: string): HeadersInit {
  if (proof !== undefined) {
    const copy = new Headers(headers);
    copy.set('authorization', value);
    copy.set('dpop', proof);
    return copy;
  }
  if (headers === undefined) return { authorization: value };
  if (headers instanceof Headers) {
    const copy = new Headers(headers);
    copy.set('authorization', value);
    return copy;
  }
  if (Array.isArray(headers)) return [...headers, ['authorization', value]];
  return { ...(headers as Record<string, string>), authorization: value };
}

/** Statuses `fetch` follows a redirect on. */
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** `fetch`'s limit on the redirects of one call. */
const MAX_REDIRECTS = 20;
/** A URL with a scheme (`https:`, `data:`…): not resolved against `baseUrl`. */
const ABSOLUTE = /^[a-z][a-z\d+\-.]*:/i;

/** Whether `url` has a scheme (the two common ones checked without the regular expression). */
function isAbsolute(url: string): boolean {
  return url.startsWith('https://') || url.startsWith('http://') || ABSOLUTE.test(url);
}
/** Request headers that describe the body, dropped when a redirect turns the request into a GET (Fetch §4.4). */
const BODY_HEADERS = ['content-encoding', 'content-language', 'content-location', 'content-type'];

/** `path` on `baseUrl`, as `client.request` joins them: `/things` and `things` both go under `baseUrl`'s path. */
function onBase(baseUrl: string, path: string): string {
  if (path === '') return baseUrl;
  return path.charCodeAt(0) === 47 /* / */ ? baseUrl + path : `${baseUrl}/${path}`;
}

/**
 * A `Request` as a URL and an init whose body can be sent more than once (read into memory): a DPoP-bound call may
 * need it for a nonce retry, a 401 retry and a redirect, each with a new proof.
 */
async function unpack(request: Request, init: ClientFetchInit | undefined): Promise<ClientFetchInit> {
  const body = init?.body !== undefined || request.body === null ? undefined : await request.arrayBuffer();
  return { method: request.method, headers: request.headers, signal: request.signal, redirect: request.redirect, ...(body !== undefined ? { body } : {}), ...init };
}

/** The method of a `fetch` call, upper-cased. */
function methodOf(init: RequestInit | undefined): string {
  return init?.method ? init.method.toUpperCase() : 'GET';
}

/** `headers` without the ones that describe a body. */
function withoutBodyHeaders(headers: HeadersInit | undefined): Headers {
  const out = new Headers(headers);
  for (const name of BODY_HEADERS) out.delete(name);
  return out;
}

/** Builds `client.fetch` over `access`. Throws `InvalidOptionError` when the Client allows no origin. */
export function createFetch(access: TokenAccess): ClientFetch {
  requireAllowedOrigins(access, 'client.fetch');
  const dispatcher = access.dispatcher;
  const endpoint = access.tokenEndpoint;
  const baseUrl = access.baseUrl;

  const send = (input: string | URL | Request, init: RequestInit | undefined, authorization: string | undefined, proof?: string): Promise<Response> => {
    if (authorization === undefined) return fetch(input, dispatcher ? ({ ...init, dispatcher } as unknown as RequestInit) : init);
    const headers = withAuthorization(init?.headers ?? (input instanceof Request ? input.headers : undefined), authorization, proof);
    // `dispatcher` is Node's (undici's) extension of RequestInit.
    return fetch(input, (dispatcher ? { ...init, headers, dispatcher } : { ...init, headers }) as unknown as RequestInit);
  };

  /**
   * A call with a DPoP-bound token (`init` from {@link unpack}: its body replayable unless it is a stream): a new proof
   * for each attempt, one more try when the API asks for its nonce, and redirects followed here, each hop decided
   * again (a proof is for one URL, and neither header may follow the request to another origin).
   */
  const sendDpop = async (url: string, init: ClientFetchInit | undefined, token: OAuthToken, proof: string, hops: number): Promise<Response> => {
    const method = methodOf(init);
    const follow = (init?.redirect ?? 'follow') === 'follow';
    const attemptInit: RequestInit = follow ? { ...init, redirect: 'manual' } : (init ?? {});
    const authorization = access.authorization(token);
    let response = await send(url, attemptInit, authorization, proof);
    if (access.nonceRetry(url, response.status, response.headers.get('dpop-nonce'), response.headers.get('www-authenticate'), proof) && replayable(init?.body)) {
      void response.body?.cancel().catch(() => undefined);
      response = await send(url, attemptInit, authorization, access.proof(token, method, url));
      access.nonceRetry(url, response.status, response.headers.get('dpop-nonce'), undefined);
    }
    const location = follow && REDIRECTS.has(response.status) ? response.headers.get('location') : null;
    if (location === null) return response;
    if (hops >= MAX_REDIRECTS) throw new TypeError('fetch failed: redirect count exceeded');
    const toGet = response.status === 303 ? method !== 'GET' && method !== 'HEAD' : response.status <= 302 && method === 'POST';
    if (!toGet && !replayable(init?.body)) throw new TypeError('fetch failed: a redirect needs the request body again, and it was a stream');
    void response.body?.cancel().catch(() => undefined);
    const next = new URL(location, url).href;
    return run(next, toGet ? { ...init, method: 'GET', body: null, headers: withoutBodyHeaders(init?.headers) } : init, hops + 1);
  };

  /** One call (`hops`: redirects followed so far by {@link sendDpop}). */
  const run = async (input: string | URL | Request, init: ClientFetchInit | undefined, hops: number): Promise<Response> => {
    if (typeof input !== 'string' && !(input instanceof URL) && !(input instanceof Request)) {
      // fetch stringifies any other input (a String, a URL of another realm) and refuses what is not an absolute URL
      // then (a number, undefined, a Request of another fetch: "[object Request]"): such an input is fetch's alone.
      const text = typeof input === 'object' && input !== null ? String(input) : '';
      if (!isAbsolute(text)) return send(input, init, undefined);
      input = text;
    }
    // A relative URL goes under `baseUrl`, as with `client.request`; the origin rules below apply to the result.
    if (typeof input === 'string' && baseUrl !== undefined && !isAbsolute(input)) input = onBase(baseUrl, input);
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (init?.headers !== undefined && isOtherIterable(init.headers)) init = { ...init, headers: new Headers(init.headers) };
    const explicit = init?.headers !== undefined ? hasAuthorization(init.headers) : input instanceof Request && input.headers.has('authorization');
    if (explicit || !access.allowsUrl(url) || (endpoint !== undefined && url.startsWith(endpoint) && isEndpoint(url, endpoint))) {
      return send(input, init, undefined);
    }
    const options = init?.oauth;
    if (options !== undefined) assertSelectorKeys(options, 'oauth', 'of `init.oauth` (client.fetch)');
    const key: AccessKey = options ? access.key(options) : access.key();
    const retry = (options ? retryOption(options.retryOnUnauthorized, 'oauth.retryOnUnauthorized') : undefined) ?? access.retryOnUnauthorized;
    const signal = init?.signal ?? (input instanceof Request ? input.signal : undefined);
    const token = access.peek(key) ?? (await access.token(key, signal));
    if (access.dpop) {
      // A Client with a DPoP key: a DPoP-bound token goes out with a proof, a Bearer one as usual.
      if (input instanceof Request) {
        init = await unpack(input, init);
        input = url;
      }
      const proof = access.proof(token, methodOf(init), url);
      if (proof !== undefined) {
        const response = await sendDpop(url, init, token, proof, hops);
        if (response.status !== 401 || !retry || !replayable(init?.body) || crossedOrigin(response, url) || !access.unauthorized(key, token.accessToken)) return response;
        void response.body?.cancel().catch(() => undefined);
        const fresh = await access.token(key, signal);
        access.retried(key);
        const again = access.proof(fresh, methodOf(init), url);
        return again === undefined ? send(url, init, access.authorization(fresh)) : sendDpop(url, init, fresh, again, hops);
      }
    }
    // A Request's own body is a stream: keep a copy to replay when the init does not replace it.
    let spare: Request | undefined;
    let canRetry = retry;
    if (retry) {
      if (init?.body !== undefined) canRetry = replayable(init.body);
      else if (input instanceof Request && input.body !== null) spare = input.clone();
    }
    const response = await send(input, init, access.authorization(token));
    if (response.status !== 401 || !canRetry || crossedOrigin(response, url) || !access.unauthorized(key, token.accessToken)) return response;
    void response.body?.cancel().catch(() => undefined);
    const fresh = await access.token(key, signal);
    access.retried(key);
    return send(spare ?? input, init, access.authorization(fresh));
  };

  return function clientFetch(input, init) {
    return run(input, init, 0);
  };
}

/**
 * Whether `response` came from another origin than `url` after a redirect. fetch drops `Authorization` on a cross-origin
 * hop, and the DPoP path sends it only to an allowed origin: such a 401 goes to the caller, the token kept.
 */
function crossedOrigin(response: Response, url: string): boolean {
  if (response.url === '' || response.url === url) return false;
  try {
    return new URL(response.url).origin !== new URL(url).origin;
  } catch {
    return true;
  }
}

/** Whether `url` (known to start with `endpoint`) is the token endpoint itself, query or not. */
function isEndpoint(url: string, endpoint: string): boolean {
  const next = url.charCodeAt(endpoint.length);
  return Number.isNaN(next) || next === 63 /* ? */ || next === 35 /* # */;
}
