/**
 * Checks of what a caller hands the Client, before any I/O: request options (types, header names and values,
 * method, signal, URL) and where an access token may be sent. A mistake throws an {@link InvalidOptionError} naming
 * the field; it is never retried, never counted by the circuit breaker, and never quotes a credential.
 */
import { InvalidOptionError } from '../errors.js';

/** RFC 9110 §5.6.2 `token`: header names and methods. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Characters undici accepts in a header value: HTAB, visible ASCII, space and obs-text (RFC 9110 §5.5). */
const BAD_HEADER_VALUE = /[^\t\x20-\x7e\x80-\xff]/;

/** Why `value` cannot be a header value (a CR, LF, NUL or other control character, or a character above U+00FF). */
export function headerValueProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return `must be a string, got ${describeType(value)}`;
  const bad = BAD_HEADER_VALUE.exec(value);
  if (bad) return `contains character U+${bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}, which a header value may not hold (CR, LF and other control characters are refused)`;
  return undefined;
}

/** Throws when `value` cannot be sent as a header value. */
export function assertHeaderValue(path: string, value: unknown): void {
  const problem = headerValueProblem(value);
  if (problem) throw new InvalidOptionError(path, problem);
}

/** The headers undici sets itself, in lower case: a caller's are refused (see {@link refusedHeaderProblem}). */
const MANAGED_HEADERS = new Set(['transfer-encoding', 'keep-alive', 'upgrade', 'expect', 'connection', 'content-length']);

/**
 * Why undici refuses a header it sets itself (`transfer-encoding`, `keep-alive`, `upgrade`, `expect`, a `connection`
 * other than `close` or `keep-alive`, a `content-length` that is not a number), or undefined. A caller that forwards
 * an incoming request's headers sends these; refused here, they fail before any I/O rather than as a network error.
 * `lower` is the header's name in lower case.
 */
function refusedHeaderProblem(lower: string, value: unknown): string | undefined {
  if (!MANAGED_HEADERS.has(lower)) return undefined;
  if (lower === 'connection') return typeof value === 'string' && !/^(?:close|keep-alive)$/i.test(value) ? 'sets `connection` to something other than `close` or `keep-alive` (undici refuses it); leave it out' : undefined;
  if (lower === 'content-length') return typeof value === 'string' && !/^\d{1,15}$/.test(value) ? 'sets `content-length` to something other than a number of bytes' : undefined;
  return `sets \`${lower}\`, which the HTTP client manages itself (undici refuses it); leave it out`;
}

/**
 * Checks a headers object: an object (not a `Headers` or a `Map`, whose entries would be ignored) of valid names and
 * string values (`undefined` values too when `allowUndefined`: undici leaves those headers out), without the headers
 * undici refuses. `path` names it, e.g. `headers`.
 *
 * @returns the `content-length` value given, if any (checked against the body by the caller).
 */
export function assertHeaders(path: string, headers: unknown, allowUndefined = false): string | undefined {
  if (headers === undefined) return undefined;
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) throw new InvalidOptionError(path, `must be an object of strings, got ${describeType(headers)}`);
  let contentLength: string | undefined;
  let names = 0;
  for (const name in headers) {
    names++;
    if (!TOKEN.test(name)) throw new InvalidOptionError(path, `has a header name that is not an RFC 9110 token (${JSON.stringify(name.slice(0, 40))})`);
    const value = (headers as Record<string, unknown>)[name];
    if (value === undefined && allowUndefined) continue;
    const problem = headerValueProblem(value);
    if (problem) throw new InvalidOptionError(path, `has a value for ${name} that ${problem}`);
    const lower = name.toLowerCase(); // the same string, not a copy, when it is already in lower case
    const refused = refusedHeaderProblem(lower, value);
    if (refused) throw new InvalidOptionError(path, refused);
    if (lower === 'content-length') contentLength = value as string;
  }
  // A `Headers` or a `Map` has no enumerable properties: its entries would be dropped without a word.
  if (names === 0 && typeof (headers as Partial<Iterable<unknown>>)[Symbol.iterator] === 'function') {
    throw new InvalidOptionError(path, `must be a plain object of strings, got a ${headers.constructor?.name ?? 'iterable'} (its entries are not its properties; pass \`Object.fromEntries(headers)\`)`);
  }
  return contentLength;
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}

function isAbortSignal(value: unknown): boolean {
  if (value instanceof AbortSignal) return true;
  const v = value as { aborted?: unknown; addEventListener?: unknown; removeEventListener?: unknown } | null;
  return typeof v === 'object' && v !== null && typeof v.aborted === 'boolean' && typeof v.addEventListener === 'function' && typeof v.removeEventListener === 'function';
}

function optionalBoolean(path: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'boolean') throw new InvalidOptionError(path, `must be a boolean, got ${describeType(value)}`);
}

/**
 * Checks the options of one `client.request()` call: `method` (an RFC 9110 token), `path` (a string), `query`,
 * `headers` (valid names, values without CR/LF), `body` (a string or bytes), `signal` (an AbortSignal), `auth` and
 * `retryOnUnauthorized` (booleans). `timeout`, scopes, resource and audience are checked where they are read.
 */
export function checkRequestOptions(options: unknown): void {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('options', `of a request must be an object, got ${describeType(options)}`);
  const o = options as Record<string, unknown>;
  const { method, path, query, headers, body, signal } = o;
  // `GET`, what `client.get` passes, skips the pattern test.
  if (method !== undefined && method !== '' && method !== 'GET' && (typeof method !== 'string' || !TOKEN.test(method))) {
    throw new InvalidOptionError('method', typeof method === 'string' ? 'is not a valid HTTP method (RFC 9110 token characters only)' : `must be a string, got ${describeType(method)}`);
  }
  if (typeof method === 'string' && method.length === 7 && method.toUpperCase() === 'CONNECT') throw new InvalidOptionError('method', 'is CONNECT, which opens a tunnel: the Client sends requests, not tunnels (undici refuses it)');
  if (path !== undefined && typeof path !== 'string') throw new InvalidOptionError('path', `must be a string, got ${describeType(path)}`);
  if (query !== undefined && (typeof query !== 'object' || query === null || Array.isArray(query))) throw new InvalidOptionError('query', `must be an object, got ${describeType(query)}`);
  const contentLength = assertHeaders('headers', headers, true);
  if (body !== undefined && typeof body !== 'string' && !(body instanceof Uint8Array)) throw new InvalidOptionError('body', `must be a string or a Uint8Array, got ${describeType(body)}`);
  if (body !== undefined && o['json'] !== undefined) throw new InvalidOptionError('json', 'cannot be combined with `body`: give one of them (`json` for a value sent as JSON, `body` for a raw string or bytes)');
  if (contentLength !== undefined) assertContentLength(contentLength, body as string | Uint8Array | undefined, o['json']);
  if (signal !== undefined && !isAbortSignal(signal)) throw new InvalidOptionError('signal', `must be an AbortSignal, got ${describeType(signal)}`);
  optionalBoolean('auth', o['auth']);
  optionalBoolean('retryOnUnauthorized', o['retryOnUnauthorized']);
}

/** Throws unless a request's own `content-length` header is the byte length of its body (undici refuses a mismatch). */
function assertContentLength(declared: string, body: string | Uint8Array | undefined, json: unknown): void {
  const text = body === undefined && json !== undefined ? jsonBody(json) : body;
  const length = text === undefined ? 0 : typeof text === 'string' ? Buffer.byteLength(text) : text.byteLength;
  if (Number(declared) !== length) throw new InvalidOptionError('headers', `has a content-length of ${declared} for a body of ${length} bytes (undici refuses the mismatch); leave it out, the HTTP client sets it`);
}

/**
 * The error for the options argument of `client.get`, `post`, `put`, `patch` or `delete` (`method`), checked before
 * it is spread into a request's options (a string, number, array or null would be spread into nonsense or ignored);
 * undefined when it is fine.
 */
export function callOptionsError(method: string, options: unknown): InvalidOptionError | undefined {
  if (options === undefined || (typeof options === 'object' && options !== null && !Array.isArray(options))) return undefined;
  const hint = method === 'get' || method === 'delete' ? '' : '; the JSON body is the argument before it';
  return new InvalidOptionError('options', `of client.${method}() must be an object (the options of a request), got ${describeType(options)}${hint}`);
}

/** The JSON text of a request's `json` option; a value JSON cannot encode (a BigInt, a cycle) is a typed error. */
export function jsonBody(value: unknown): string {
  try {
    const text = JSON.stringify(value) as string | undefined;
    if (text === undefined) throw new TypeError(typeof value);
    return text;
  } catch (error) {
    throw new InvalidOptionError('json', `cannot be encoded as JSON (${error instanceof Error ? error.name : 'error'})`);
  }
}

/**
 * Parses an absolute request URL. An invalid one throws an error naming `path` that does not keep the URL (whose
 * userinfo may hold a password), unlike the parser's own error.
 */
export function parseAbsoluteUrl(url: string): URL {
  try {
    return new URL(url);
  } catch {
    throw new InvalidOptionError('path', 'is not a valid absolute URL');
  }
}

/**
 * Whether `hostname` (as `URL.hostname` gives it) is the local machine: `localhost`, 127.0.0.0/8, `[::1]` or an
 * IPv4-mapped loopback address. A `*.localhost` name is not: RFC 6761 asks resolvers to answer it with loopback, but
 * many (glibc with `hosts: files dns`) ask DNS, which may answer with any address.
 */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  if (host === 'localhost') return true;
  if (/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)) return true;
  return host === '[::1]' || host === '[::ffff:7f00:1]' || /^\[::ffff:127\.\d{1,3}\.\d{1,3}\.\d{1,3}\]$/.test(host) || /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(host);
}

/** Whether a URL or origin is plain `http:` to a host other than this machine. */
export function isInsecureRemote(url: string | URL): boolean {
  const parsed = typeof url === 'string' ? new URL(url) : url;
  return parsed.protocol === 'http:' && !isLoopbackHost(parsed.hostname);
}

/**
 * Throws when an access token may not be sent to `origin`: over plain `http:` to another machine without
 * `allowInsecureHttp`. `origin` is a URL origin (`http://host:port`).
 */
export function assertSecureDestination(origin: string, allowInsecureHttp: boolean): void {
  if (allowInsecureHttp || !origin.startsWith('http:')) return;
  if (isInsecureRemote(origin)) {
    throw new InvalidOptionError('allowInsecureHttp', `is not set: the access token is not sent over plain http to ${origin} (only to loopback); use https, or set \`allowInsecureHttp: true\``);
  }
}
