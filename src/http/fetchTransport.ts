/**
 * A transport on the runtime's own `fetch`, for runtimes whose `undici` is not the real one: Bun resolves `undici`
 * to a built-in stub whose `Agent` has no `request()`. On Node and Deno the Client keeps undici (connection pooling,
 * per-phase timeouts, interceptors); {@link undiciIsUsable} decides at run time.
 */
import { Agent } from 'undici';
import { TimeoutError } from '../errors.js';
import { isLoopbackOrigin } from './proxy.js';
import { BodyTooLargeError, mapTransportError, type HttpRequest, type HttpResponse, type Transport } from './transport.js';

let usable: boolean | undefined;

/** Whether undici's `Agent` is the real one (it has `request()`); false on Bun, whose `undici` is a stub. */
export function undiciIsUsable(): boolean {
  if (usable === undefined) {
    try {
      const agent = new Agent() as unknown as { request?: unknown; close?: () => unknown };
      usable = typeof agent.request === 'function';
      if (usable) void (agent.close?.() as Promise<void> | undefined)?.catch(() => undefined);
    } catch {
      usable = false;
    }
  }
  return usable;
}

/** Options of {@link createFetchTransport}: what the runtime's `fetch` takes besides the request (Bun's names). */
export interface FetchTransportOptions {
  /** TLS options (`cert`, `key`, `ca`, `passphrase`), passed as Bun's `tls` fetch option. */
  tls?: Record<string, unknown> | undefined;
  /** A proxy URL, passed as Bun's `proxy` fetch option. */
  proxy?: string | undefined;
}

function headersOf(response: Response): Record<string, string> {
  const headers: Record<string, string> = {};
  // Headers joins repeated values with ', ' already; set-cookie is the exception and is joined here the same way.
  response.headers.forEach((value, name) => {
    headers[name] = Object.hasOwn(headers, name) ? `${headers[name]}, ${value}` : value;
  });
  return headers;
}

/**
 * Creates a transport on `globalThis.fetch`. Redirects are not followed (as with undici's `request`); `timeout`
 * bounds the wait for the headers (until the request's `deadline` when it has one) and each wait between body
 * chunks; `maxBodyBytes` caps the body.
 */
export function createFetchTransport(options: FetchTransportOptions = {}): Transport {
  return async function send(req: HttpRequest): Promise<HttpResponse> {
    const timer = new AbortController();
    let handle: ReturnType<typeof setTimeout> | undefined;
    const arm = (ms = req.timeout): void => {
      if (!req.timeout) return;
      clearTimeout(handle);
      handle = setTimeout(() => timer.abort(new TimeoutError(`${req.method} ${req.url.replace(/[?#].*$/, '')} timed out after ${req.timeout} ms`, req.timeout ?? 0)), Math.max(0, ms ?? 0));
    };
    const signal = req.signal ? AbortSignal.any([req.signal, timer.signal]) : timer.signal;
    try {
      // A request sent again (after a 401), or after a wait for its token, waits for its headers only until the
      // deadline it was given first.
      if (req.timeout) {
        req.deadline ??= Date.now() + req.timeout;
        arm(req.deadline - Date.now());
      }
      const init: RequestInit & Record<string, unknown> = { method: req.method, headers: req.headers, redirect: 'manual', signal };
      if (req.body !== undefined) init.body = req.body as NonNullable<RequestInit["body"]>;
      if (options.tls) init.tls = options.tls;
      // Loopback never through a proxy (see src/http/proxy.ts).
      if (options.proxy && !isLoopbackOrigin(req.url)) init.proxy = options.proxy;
      const response = await fetch(req.url, init);
      const headers = headersOf(response);
      if (req.responseType === 'stream') {
        clearTimeout(handle);
        return { statusCode: response.status, headers, body: '', stream: response.body ?? new ReadableStream<Uint8Array>({ start: (c) => c.close() }) };
      }
      const chunks: Uint8Array[] = [];
      let size = 0;
      if (response.body) {
        const reader = response.body.getReader();
        for (;;) {
          arm();
          const { done, value } = await reader.read();
          if (done) break;
          size += value.byteLength;
          if (req.maxBodyBytes !== undefined && size > req.maxBodyBytes) {
            void reader.cancel().catch(() => undefined);
            throw new BodyTooLargeError(req.maxBodyBytes, response.status, headers);
          }
          chunks.push(value);
        }
      }
      const bytes = new Uint8Array(size);
      let offset = 0;
      for (const chunk of chunks) {
        bytes.set(chunk, offset);
        offset += chunk.byteLength;
      }
      if (req.responseType === 'bytes') return { statusCode: response.status, headers, body: '', bytes };
      return { statusCode: response.status, headers, body: new TextDecoder().decode(bytes) };
    } catch (error) {
      if (timer.signal.aborted && !req.signal?.aborted) throw timer.signal.reason;
      throw mapTransportError(error, req);
    } finally {
      clearTimeout(handle);
    }
  };
}
