/**
 * `client.fetch`: the WHATWG `fetch(input, init?)` with the Client's token. The token goes only to the Client's
 * allowed origins (`baseUrl`'s and `allowedOrigins`); a 401 drops the token (generation-guarded) and the request is
 * sent once more with a new one when its body can be replayed. Requests go through Node's `fetch` on the Client's
 * global dispatcher (or the Client's, when it was given `dispatcher` or `tls`), so the result is a standard `Response`.
 */
import type { TokenSelector } from '../configuration.js';
import { requireAllowedOrigins, type AccessKey, type TokenAccess } from './tokenAccess.js';

/** A `fetch` headers init. */
type HeadersInit = NonNullable<RequestInit['headers']>;

/** Per-call token options of {@link ClientFetch}, in `init.oauth`. */
export interface ClientFetchOptions extends TokenSelector {
  /** On a 401, drop the token, fetch a new one and retry once (when the body can be replayed). Default: the Client's `retryOnUnauthorized`. */
  retryOnUnauthorized?: boolean;
}

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

/** `headers` plus `authorization: value`, leaving the caller's object alone. */
function withAuthorization(headers: HeadersInit | undefined, value: string): HeadersInit {
  if (headers === undefined) return { authorization: value };
  if (headers instanceof Headers) {
    const copy = new Headers(headers);
    copy.set('authorization', value);
    return copy;
  }
  if (Array.isArray(headers)) return [...headers, ['authorization', value]];
  return { ...(headers as Record<string, string>), authorization: value };
}

/** Builds `client.fetch` over `access`. Throws `InvalidOptionError` when the Client allows no origin. */
export function createFetch(access: TokenAccess): ClientFetch {
  requireAllowedOrigins(access, 'client.fetch');
  const dispatcher = access.dispatcher;
  const endpoint = access.tokenEndpoint;

  const send = (input: string | URL | Request, init: RequestInit | undefined, authorization: string | undefined): Promise<Response> => {
    if (authorization === undefined) return fetch(input, dispatcher ? ({ ...init, dispatcher } as unknown as RequestInit) : init);
    const headers = withAuthorization(init?.headers ?? (input instanceof Request ? input.headers : undefined), authorization);
    // `dispatcher` is Node's (undici's) extension of RequestInit.
    return fetch(input, (dispatcher ? { ...init, headers, dispatcher } : { ...init, headers }) as unknown as RequestInit);
  };

  return async function clientFetch(input, init) {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const explicit = init?.headers !== undefined ? hasAuthorization(init.headers) : input instanceof Request && input.headers.has('authorization');
    if (explicit || !access.allowsUrl(url) || (endpoint !== undefined && url.startsWith(endpoint) && isEndpoint(url, endpoint))) {
      return send(input, init, undefined);
    }
    const options = init?.oauth;
    const key: AccessKey = options ? access.key(options) : access.key();
    const signal = init?.signal ?? (input instanceof Request ? input.signal : undefined);
    const token = access.peek(key) ?? (await access.token(key, signal));
    const retry = options?.retryOnUnauthorized ?? access.retryOnUnauthorized;
    // A Request's own body is a stream: keep a copy to replay when the init does not replace it.
    let spare: Request | undefined;
    let canRetry = retry;
    if (retry) {
      if (init?.body !== undefined) canRetry = replayable(init.body);
      else if (input instanceof Request && input.body !== null) spare = input.clone();
    }
    const response = await send(input, init, access.authorization(token));
    if (response.status !== 401 || !canRetry || !access.unauthorized(key, token.accessToken)) return response;
    void response.body?.cancel().catch(() => undefined);
    const fresh = await access.token(key, signal);
    access.retried(key);
    return send(spare ?? input, init, access.authorization(fresh));
  };
}

/** Whether `url` (known to start with `endpoint`) is the token endpoint itself, query or not. */
function isEndpoint(url: string, endpoint: string): boolean {
  const next = url.charCodeAt(endpoint.length);
  return Number.isNaN(next) || next === 63 /* ? */ || next === 35 /* # */;
}
