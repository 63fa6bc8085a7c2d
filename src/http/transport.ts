/**
 * The HTTP transport: one undici request, with its failures mapped to this library's typed errors.
 * Everything above it (auth, 401 recovery, error mapping) is the Client's.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request, type Dispatcher } from 'undici';
import type { DispatcherLike } from '../types/dispatcher.js';
import { AbortError, NetworkError, TimeoutError, ClientCredentialsError } from '../errors.js';
import { runtimeRefusal } from './runtimeErrors.js';
import { Deadlines, type Deadline } from './deadlines.js';
import { BodyTooLargeError, bodyFollows, declaredLength } from './bodyLimit.js';
import { BodyCollector, type Collected, type CollectShared } from './bodyCollector.js';
import { decodeContent, utf8Text } from './contentEncoding.js';

/** One HTTP request as the transport sends it. */
export interface HttpRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string | Uint8Array | undefined;
  /** Aborts the request; the transport rejects with {@link AbortError}. */
  signal?: AbortSignal | undefined;
  /** Milliseconds the whole request may take, body included; 0 or undefined: undici's defaults (per phase). */
  timeout?: number | undefined;
  /**
   * Epoch ms by which the exchange must be over: set from `timeout` when the request is first sent (or earlier, by a
   * caller that first waited for a token), and kept when the same request is sent again (a retry after a 401), so
   * `timeout` bounds the whole call.
   */
  deadline?: number | undefined;
  /** Never follow a redirect, even through a dispatcher composed with undici's redirect interceptor. */
  noRedirects?: boolean | undefined;
  /** Largest body to read, in bytes; a larger one rejects with `BodyTooLargeError` from the caller's mapper. */
  maxBodyBytes?: number | undefined;
  /**
   * `url` split into undici's `origin` and `path`, set by a caller that knows a URL parser would leave both unchanged
   * (so the transport neither splits nor parses it). Both or neither.
   */
  origin?: string | undefined;
  path?: string | undefined;
  /**
   * How the body is handed over: `text` (default) decodes it as UTF-8 into `body`; `bytes` reads it into `bytes`;
   * `stream` hands it over unread as `stream` (`maxBodyBytes` does not apply). `body` is `''` for the last two.
   */
  responseType?: 'text' | 'bytes' | 'stream' | undefined;
}

/** One HTTP response, fully read. */
export interface HttpResponse {
  statusCode: number;
  /** Lower-cased names; repeated headers are joined with `, `. */
  headers: Record<string, string>;
  body: string;
  /** The body's bytes, for `responseType: 'bytes'`. */
  bytes?: Uint8Array;
  /** The unread body, for `responseType: 'stream'`: the caller reads or cancels it. */
  stream?: ReadableStream<Uint8Array>;
}

/** Sends one request. */
export type Transport = (request: HttpRequest) => Promise<HttpResponse>;

export { BodyTooLargeError };

/** A keep-alive undici Agent, as the Client uses by default. `connect` carries TLS options (mTLS). */
export function createDispatcher(connect?: Record<string, unknown>): DispatcherLike & { close(): Promise<void> } {
  return new Agent({ keepAliveTimeout: 10_000, connections: 128, ...(connect ? { connect } : {}) });
}

/**
 * undici's response headers with repeated ones joined by `, `, as they are when every value is a string (nearly
 * always). Only for a dispatcher known to build a fresh object per response (an interceptor may share one).
 */
function ownHeaders(raw: Record<string, string | string[] | undefined>): Record<string, string> {
  for (const name in raw) {
    if (typeof raw[name] !== 'string') return flattenHeaders(raw);
  }
  return raw as Record<string, string>;
}

/**
 * A copy of undici's response headers with repeated ones joined by `, `. A header named `__proto__` stays a header
 * (an own property, as undici makes it), not an attempt to set the copy's prototype.
 */
function flattenHeaders(raw: Record<string, string | string[] | undefined>): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name in raw) {
    const value = raw[name];
    if (value === undefined) continue;
    const joined = typeof value === 'string' ? value : value.join(', ');
    if (name === '__proto__') Object.defineProperty(headers, name, { value: joined, enumerable: true, configurable: true, writable: true });
    else headers[name] = joined;
  }
  return headers;
}

async function readCappedBytes(body: AsyncIterable<Uint8Array>, limit: number, statusCode: number, headers: Record<string, string>): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.byteLength;
    if (size > limit) throw new BodyTooLargeError(limit, statusCode, headers);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}


/** Listens to an error nobody is waiting for. */
function ignore(): void {}

/**
 * Whether the body declares a `content-length` within `limit`: then undici reads it in one go (the hot path), since
 * the HTTP parser delivers exactly that many bytes. One declared larger is refused unread (the body destroyed); false:
 * no length declared, so the body is counted as it arrives.
 */
function declaredWithin(res: Dispatcher.ResponseData<unknown>, limit: number, headers: Record<string, string>, method: string): boolean {
  const length = declaredLength(headers);
  if (length === undefined) return false;
  if (length <= limit || !bodyFollows(method)) return true;
  // Destroyed unread, undici's body stream emits an abort error: nobody reads it, so nobody must hear it either.
  res.body.on('error', ignore).destroy();
  throw new BodyTooLargeError(limit, res.statusCode, headers);
}

/**
 * Reads a body of at most `limit` bytes as UTF-8 text (see {@link declaredWithin}). Not `async`: a body that declares
 * its length gets undici's own promise, without a second one around it.
 */
function readCapped(res: Dispatcher.ResponseData<unknown>, limit: number, headers: Record<string, string>, method: string): Promise<string> {
  return declaredWithin(res, limit, headers, method) ? res.body.text() : readCountedText(res, limit, headers);
}

/** Reads a body that declares no length, counting its bytes against `limit`, as UTF-8 text. */
async function readCountedText(res: Dispatcher.ResponseData<unknown>, limit: number, headers: Record<string, string>): Promise<string> {
  // A UTF-8 byte order mark is dropped, as undici's `text()` (and fetch's) drops it on the path above.
  return utf8Text(await readCappedBytes(res.body, limit, res.statusCode, headers));
}

/** Reads a body of at most `limit` bytes into a Buffer (see {@link declaredWithin}). */
async function readCappedBuffer(res: Dispatcher.ResponseData<unknown>, limit: number, headers: Record<string, string>, method: string): Promise<Buffer> {
  if (declaredWithin(res, limit, headers, method)) return Buffer.from(await res.body.arrayBuffer());
  return readCappedBytes(res.body, limit, res.statusCode, headers);
}

/** Reads a body of at most `limit` bytes as bytes (see {@link declaredWithin}). */
async function readCappedRaw(res: Dispatcher.ResponseData<unknown>, limit: number, headers: Record<string, string>, method: string): Promise<Uint8Array> {
  return plainBytes(await readCappedBuffer(res, limit, headers, method));
}

/**
 * A web ReadableStream over a response body, pulled as the caller reads (no buffering ahead); a failure while reading
 * errors the stream with the same typed error the transport throws; cancelling it discards the body.
 */
function webStream(body: Dispatcher.ResponseData<unknown>['body'], req: HttpRequest): ReadableStream<Uint8Array> {
  const chunks = body[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const { done, value } = await chunks.next();
          if (done) controller.close();
          else controller.enqueue(value);
        } catch (error) {
          controller.error(mapTransportError(error, req));
        }
      },
      cancel() {
        // Destroyed, not only its iterator returned: an iterator never pulled returns without touching the stream, and
        // the unread body would hold its connection. Nobody reads the abort error destroying it emits.
        body.on('error', ignore).destroy();
      },
    },
    { highWaterMark: 0 },
  );
}

/** A Buffer as a plain Uint8Array over the same memory. */
function plainBytes(buffer: Buffer): Uint8Array {
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT']);

/** Where a request went, without query or credentials, for error messages. */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}

/**
 * The credentials `req` carries: its `authorization` value after the scheme, and a token request's `client_secret`
 * and `client_assertion` form fields, as sent and decoded.
 */
function credentialsOf(req: HttpRequest): string[] {
  const found: string[] = [];
  const authorization = req.headers.authorization;
  if (authorization) found.push(authorization.slice(authorization.indexOf(' ') + 1));
  if (typeof req.body === 'string' && req.body.includes('client_')) {
    for (const pair of req.body.split('&')) {
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      if (name !== 'client_secret' && name !== 'client_assertion') continue;
      const value = pair.slice(eq + 1);
      found.push(value);
      try {
        found.push(decodeURIComponent(value.replace(/\+/g, ' ')));
      } catch {
        // not valid percent-encoding: the raw value is enough
      }
    }
  }
  return found.filter((s) => s !== '');
}

const MAX_CAUSE_DEPTH = 5;

/**
 * `error` as it is, unless its message (or a cause's) repeats one of `req`'s credentials, as a dispatcher may when it
 * describes the request it failed on (undici's MockAgent prints the unmatched body and headers). Then a copy with
 * each credential replaced by `[redacted]`: name, code, message, stack and causes, nothing else.
 */
function withoutCredentials(error: unknown, req: HttpRequest): unknown {
  const secrets = credentialsOf(req);
  if (secrets.length === 0) return error;
  const text = (e: unknown): string => (typeof e === 'string' ? e : e instanceof Error ? `${e.message}\n${e.stack ?? ''}` : '');
  const leaks = (e: unknown, depth: number): boolean =>
    depth < MAX_CAUSE_DEPTH && (secrets.some((s) => text(e).includes(s)) || (e instanceof Error && leaks(e.cause, depth + 1)));
  if (!leaks(error, 0)) return error;
  const redact = (value: string): string => secrets.reduce((out, s) => out.replaceAll(s, '[redacted]'), value);
  const scrub = (e: unknown, depth: number): unknown => {
    if (typeof e === 'string') return redact(e);
    if (!(e instanceof Error)) return e;
    const cause = depth + 1 < MAX_CAUSE_DEPTH && e.cause !== undefined ? { cause: scrub(e.cause, depth + 1) } : undefined;
    const copy = new Error(redact(e.message), cause) as Error & { code?: unknown };
    copy.name = e.name;
    if ((e as { code?: unknown }).code !== undefined) copy.code = (e as { code?: unknown }).code;
    copy.stack = redact(e.stack ?? '');
    return copy;
  };
  return scrub(error, 0);
}

/**
 * Maps a failure of undici to a typed error; our own errors pass through. The original failure is kept in `cause`,
 * scrubbed of the request's credentials if it repeats them.
 */
export function mapTransportError(error: unknown, req: HttpRequest): Error {
  if (error instanceof ClientCredentialsError || error instanceof BodyTooLargeError) return error;
  if (req.signal?.aborted) {
    const reason: unknown = req.signal.reason;
    if (reason instanceof ClientCredentialsError) return reason;
    return new AbortError(`${req.method} ${describeUrl(req.url)} was aborted`, { cause: reason });
  }
  const cause = withoutCredentials(error, req);
  const code = (cause as { code?: string } | undefined)?.code;
  if (code === 'UND_ERR_DESTROYED' || code === 'UND_ERR_CLOSED') {
    return new AbortError(`${req.method} ${describeUrl(req.url)} was not sent: the Client is closed (its connection pool is closed)`, { cause });
  }
  if (code && TIMEOUT_CODES.has(code)) {
    return timedOut(req, { cause });
  }
  const refusal = runtimeRefusal(cause, `${req.method} ${describeUrl(req.url)}`);
  if (refusal) return refusal;
  const detail = (cause as { cause?: { code?: string } })?.cause?.code ?? code ?? (cause as Error)?.message ?? 'unknown error';
  return new NetworkError(`${req.method} ${describeUrl(req.url)} failed: ${detail}`, { cause });
}

/** Characters a WHATWG URL parser leaves as they are in a path and query: RFC 3986 unreserved, sub-delims, `:@/?%`. */
const VERBATIM_PATH = /^\/[A-Za-z0-9\-._~!$&()*+,;=:@/?%]*$/;

/**
 * Splits `url` into the `origin` and `path` that undici's top-level `request(url)` would derive with `new URL()`,
 * without parsing: only for a URL that parsing would leave unchanged (an origin already in normal form, a path of
 * verbatim characters with no dot segment and no empty query). Anything else returns undefined and takes the
 * parsing route, so behaviour is the same either way.
 */
function splitUrl(url: string, origins: Map<string, boolean>): { origin: string; path: string } | undefined {
  const scheme = url.startsWith('https://') ? 8 : url.startsWith('http://') ? 7 : 0;
  if (scheme === 0) return undefined;
  const slash = url.indexOf('/', scheme);
  if (slash < 0) return undefined;
  const origin = url.slice(0, slash);
  let normal = origins.get(origin);
  if (normal === undefined) {
    normal = isNormalOrigin(origin);
    if (origins.size >= 64) origins.clear();
    origins.set(origin, normal);
  }
  if (!normal) return undefined;
  const path = url.slice(slash);
  return isVerbatimPath(path) ? { origin, path } : undefined;
}

/**
 * Whether a WHATWG URL parser leaves `path` (path and query, starting with `/`) as it is: verbatim characters only,
 * no dot segment, no empty query.
 */
export function isVerbatimPath(path: string): boolean {
  return VERBATIM_PATH.test(path) && !path.includes('/.') && !path.endsWith('?') && !/%2e/i.test(path);
}

/** Whether `origin` (`scheme://host[:port]`) is in the normal form a WHATWG URL parser gives it. */
export function isNormalOrigin(origin: string): boolean {
  try {
    return new URL(origin).origin === origin;
  } catch {
    return false;
  }
}

/** Whether an undici Agent has requests running or queued, from its `stats` (undefined when it has none). */
function busy(dispatcher: Dispatcher): boolean | undefined {
  const stats = (dispatcher as { stats?: Record<string, { running?: number; pending?: number }> }).stats;
  if (!stats || typeof stats !== 'object') return undefined;
  return Object.values(stats).some((s) => (s.running ?? 0) > 0 || (s.pending ?? 0) > 0);
}

/**
 * Closes `dispatcher`, letting requests in flight finish for `graceMs`; then destroys what is left, and those
 * requests reject with {@link AbortError}. (undici's `close()` forgets its connections at once, so a `destroy()`
 * after it would reach nothing: the wait happens first, on the Agent's `stats`.)
 */
export async function closeDispatcher(dispatcherLike: DispatcherLike, graceMs: number): Promise<void> {
  const dispatcher = dispatcherLike as Dispatcher;
  const deadline = Date.now() + graceMs;
  while (busy(dispatcher) === true && Date.now() < deadline) await sleep(Math.min(20, Math.max(1, deadline - Date.now())));
  if (busy(dispatcher) === false) return dispatcher.close();
  const reason = new AbortError(`The Client was closed; the request was still in flight after the \`closeTimeout\` of ${graceMs} ms`);
  if (busy(dispatcher) === undefined) {
    // Not an Agent with stats: close, and destroy if the grace period ends first.
    let timer: NodeJS.Timeout | undefined;
    const closed = await Promise.race([dispatcher.close().then(() => true, () => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), graceMs)))]);
    clearTimeout(timer);
    if (closed) return;
  }
  await dispatcher.destroy(reason).catch(() => undefined);
}

/** The {@link TimeoutError} of `req`, which took longer than its `timeout`. */
export function timedOut(req: HttpRequest, options?: { cause?: unknown }): TimeoutError {
  const timeout = req.timeout ?? 0;
  return new TimeoutError(`${req.method} ${describeUrl(req.url)} timed out after ${timeout} ms`, timeout, options);
}

/** Sends `options` and reads the whole response into memory, through a {@link BodyCollector}. */
function collect(dispatcher: Dispatcher, options: Dispatcher.DispatchOptions, req: HttpRequest, deadline: number, shared: CollectShared<HttpRequest>): Promise<Collected> {
  return new Promise<Collected>((resolve, reject) => {
    dispatcher.dispatch(options, new BodyCollector(req, deadline, shared, resolve, reject));
  });
}

/**
 * Creates the transport that sends requests through `dispatcher`. `fresh`: the dispatcher is a plain undici Agent of
 * our own, whose response headers objects nobody else holds (so they are handed on without a copy).
 */
export function createTransport(dispatcherLike: DispatcherLike, fresh = false): Transport {
  const dispatcher = dispatcherLike as Dispatcher;
  const headersOf = fresh ? ownHeaders : flattenHeaders;
  /** Origins seen, and whether each is in normal form (so requests to it can skip URL parsing). */
  const origins = new Map<string, boolean>();
  /** The deadlines of the bodies this transport is reading (one timer for all of them). */
  const deadlines = new Deadlines();
  /** What each collected response shares (see {@link BodyCollector}; only on a dispatcher of our own, `fresh`). */
  const shared: CollectShared<HttpRequest> = { deadlines, headersOf, timedOut };
  return async function send(req: HttpRequest): Promise<HttpResponse> {
    // One deadline for the whole exchange: undici's own timeouts are per phase, and a server dripping a byte at a
    // time never trips its body timeout. The headers get `timeout`; the body gets what is left, then it is destroyed.
    // A request sent again (after a 401), or after a wait for its token, keeps the deadline it was given first.
    const given = req.deadline;
    const deadline = given ?? (req.timeout ? (req.deadline = Date.now() + req.timeout) : 0);
    let bodyDeadline: Deadline | undefined;
    try {
      const left = given === undefined ? req.timeout : given - Date.now();
      // undici's `request(url)` parses the URL, then passes these options with `origin` and `path` to the dispatcher
      // (`dispatcher` included: interceptors may read it). For a URL in normal form the hot path does that split itself.
      const options = {
        method: req.method as Dispatcher.HttpMethod,
        headers: req.headers,
        body: req.body,
        signal: req.signal,
        dispatcher,
      } as Dispatcher.RequestOptions & { dispatcher: Dispatcher };
      if (req.timeout) {
        if (left! <= 0) throw timedOut(req);
        options.headersTimeout = left!;
        options.bodyTimeout = left!;
      }
      // undici's redirect interceptor follows only when `maxRedirections` is set; 0 turns it off for this request.
      if (req.noRedirects) (options as { maxRedirections?: number }).maxRedirections = 0;
      const split = req.origin !== undefined && req.path !== undefined ? (req as { origin: string; path: string }) : splitUrl(req.url, origins);
      let res: Dispatcher.ResponseData<unknown>;
      let headerTimer: AbortController | undefined;
      if (deadline && !(fresh && split && req.responseType !== 'stream')) {
        // undici restarts its headers timer at each 1xx answer, which request() never shows: a 1xx flood would
        // outlast `timeout`. So until the headers arrive, the deadline aborts the request (the handler path does so itself).
        const timer = (headerTimer = new AbortController());
        options.signal = req.signal ? AbortSignal.any([req.signal, timer.signal]) : timer.signal;
        bodyDeadline = deadlines.add(deadline, () => timer.abort(timedOut(req)));
      }
      if (split) {
        options.origin = split.origin;
        options.path = split.path;
        // The hot path: the body read in the handler, without undici's body stream (see bodyCollector.ts).
        if (fresh && req.responseType !== 'stream') return await collect(dispatcher, options, req, deadline, shared);
        res = await dispatcher.request(options);
      } else {
        res = await request(req.url, options);
      }
      if (headerTimer !== undefined) {
        deadlines.delete(bodyDeadline!);
        bodyDeadline = undefined;
      }
      const headers = headersOf(res.headers);
      if (req.responseType === 'stream') return { statusCode: res.statusCode, headers, body: '', stream: webStream(res.body, req) };
      if (deadline) {
        const body = res.body;
        bodyDeadline = deadlines.add(deadline, () => body.destroy(timedOut(req)));
      }
      const coding = headers['content-encoding'];
      if (coding !== undefined) {
        // A compressed body (see contentEncoding.ts): read as bytes, then decoded within the same cap.
        const raw = req.maxBodyBytes === undefined ? Buffer.from(await res.body.arrayBuffer()) : await readCappedBuffer(res, req.maxBodyBytes, headers, req.method);
        const decoded = decodeContent(raw, coding, req.maxBodyBytes, res.statusCode, headers);
        if (req.responseType === 'bytes') return { statusCode: res.statusCode, headers, body: '', bytes: new Uint8Array(decoded) };
        return { statusCode: res.statusCode, headers, body: utf8Text(decoded) };
      }
      if (req.responseType === 'bytes') {
        const bytes = req.maxBodyBytes === undefined ? new Uint8Array(await res.body.arrayBuffer()) : await readCappedRaw(res, req.maxBodyBytes, headers, req.method);
        return { statusCode: res.statusCode, headers, body: '', bytes };
      }
      const body = req.maxBodyBytes === undefined ? await res.body.text() : await readCapped(res, req.maxBodyBytes, headers, req.method);
      return { statusCode: res.statusCode, headers, body };
    } catch (error) {
      throw mapTransportError(error, req);
    } finally {
      if (bodyDeadline !== undefined) deadlines.delete(bodyDeadline);
    }
  };
}
