/**
 * Header handling of the broker's proxy, as RFC 9110 §7.6.1 says for an intermediary: hop-by-hop fields (and the
 * fields the `Connection` header names) are not forwarded, in either direction. Requests also lose `Host` (the
 * upstream's is sent), `Expect`, and the caller's `Authorization`/`DPoP` unless the route passes them through. The
 * proxy adds its own `Via` entry (RFC 9110 §7.6.3), and a request whose `Via` already holds it has come back round a
 * loop. Pure.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-7.6.1
 */

/** Hop-by-hop fields, and fields a proxy never forwards upstream. */
const REQUEST_DROPPED = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'expect', 'http2-settings']);
/** Hop-by-hop fields of a response (`transfer-encoding` is the server's own framing). */
const RESPONSE_DROPPED = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/** The field names a `Connection` header lists (lower case), besides `close` and `keep-alive`. */
export function connectionOptions(value: string | string[] | undefined): Set<string> | undefined {
  if (value === undefined || value === 'keep-alive' || value === 'close') return undefined;
  let out: Set<string> | undefined;
  for (const part of (Array.isArray(value) ? value.join(',') : value).split(',')) {
    const name = part.trim().toLowerCase();
    if (name === '' || name === 'close' || name === 'keep-alive') continue;
    (out ??= new Set()).add(name);
  }
  return out;
}

/** The request headers to forward, and what the proxy needs to know of the others. */
export interface ForwardedRequestHeaders {
  /** A flat `[name, value, name, value…]` list, as undici takes it. */
  readonly headers: string[];
  /** The caller's `Authorization`, kept out of `headers`. */
  readonly authorization: string | undefined;
  /** The caller's `DPoP` proof, kept out of `headers`. */
  readonly dpop: string | undefined;
  /** The request's `Content-Length` (forwarded too). */
  readonly contentLength: string | undefined;
  /** Whether the request came with a `Transfer-Encoding` (a body of unknown length; the field is not forwarded). */
  readonly chunked: boolean;
  /**
   * Whether its `Transfer-Encoding` names a coding besides `chunked` (`gzip, chunked`): Node removes only the
   * chunking, so the body would reach the upstream still gzip-coded and described as plain. Such a request is refused.
   */
  readonly otherCoding: boolean;
  /** Whether a `Via` field holds `via` (this broker's own entry): the request went through it already. */
  readonly loop: boolean;
}

/**
 * The fields of `raw` (Node's `rawHeaders`: names as sent, duplicates kept) to send upstream, in one pass (Node's
 * lazily built `req.headers` object is never needed). `Authorization` and `DPoP` are returned apart: the proxy
 * decides whether the caller's or its own go out.
 */
export function forwardRequestHeaders(raw: readonly string[], via?: string): ForwardedRequestHeaders {
  const headers: string[] = [];
  let authorization: string | undefined;
  let dpop: string | undefined;
  let connection: string | undefined;
  let contentLength: string | undefined;
  let chunked = false;
  let otherCoding = false;
  let loop = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    const lower = name.toLowerCase();
    if (lower === 'authorization') {
      authorization ??= value;
      continue;
    }
    if (lower === 'dpop') {
      dpop ??= value;
      continue;
    }
    if (lower === 'connection') {
      connection = connection === undefined ? value : `${connection}, ${value}`;
      continue;
    }
    if (lower === 'content-length') contentLength = value;
    else if (lower === 'via') loop ||= via !== undefined && value.includes(via);
    else if (lower === 'transfer-encoding') {
      chunked = true;
      if (value.trim().toLowerCase() !== 'chunked') otherCoding = true;
    }
    if (REQUEST_DROPPED.has(lower)) continue;
    headers.push(name, value);
  }
  const listed = connectionOptions(connection);
  if (listed === undefined) return { headers, authorization, dpop, contentLength, chunked, otherCoding, loop };
  const kept: string[] = [];
  for (let i = 0; i < headers.length; i += 2) if (!listed.has(headers[i]!.toLowerCase())) kept.push(headers[i]!, headers[i + 1]!);
  return { headers: kept, authorization, dpop, contentLength, chunked, otherCoding, loop };
}

/**
 * The response fields (undici's parsed object) to send back, as a flat list for `writeHead`. A 204 or 304 (`status`)
 * goes without `Content-Length`: a 204 must not carry one, and a 304's (the representation's length) makes undici
 * callers, Node's `fetch` among them, fail on a body length mismatch.
 */
export function forwardResponseHeaders(headers: Record<string, string | string[] | undefined>, status = 200): string[] {
  const listed = connectionOptions(headers['connection']);
  const bodiless = status === 204 || status === 304;
  const out: string[] = [];
  for (const name in headers) {
    if (RESPONSE_DROPPED.has(name) || listed?.has(name) || (bodiless && name === 'content-length')) continue;
    const value = headers[name];
    if (value === undefined) continue;
    if (typeof value === 'string') out.push(name, value);
    else for (const v of value) out.push(name, v);
  }
  return out;
}
