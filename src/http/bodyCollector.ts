/**
 * A response read into memory through undici's handler API: the request the Client sends on its own dispatcher (the
 * hot path, and token requests). `dispatcher.request()` then `body.text()` builds a body stream, an async resource
 * and a promise per read for every response; collecting the chunks in the handler skips all three, which measured
 * about 20 % of undici's CPU per request here. Semantics are those of the stream path: 1xx answers skipped, a
 * declared or counted size past the cap refused, the caller's `signal` and the whole-request deadline end it.
 */
import type { Dispatcher } from 'undici';
import { BodyTooLargeError, bodyFollows, declaredLength } from './bodyLimit.js';
import { decodeContent, utf8Text } from './contentEncoding.js';
import type { Deadline, Deadlines } from './deadlines.js';

/** What a collected response resolves with (the transport's `HttpResponse`, text or bytes). */
export interface Collected {
  statusCode: number;
  headers: Record<string, string>;
  /** The body as UTF-8 text (a byte order mark dropped), or `''` when `bytes` was asked for. */
  body: string;
  bytes?: Uint8Array;
}

/** What the request asks of its response. */
export interface CollectRequest {
  /** The request's method (a HEAD answer has no body, whatever length it declares). */
  method?: string | undefined;
  /** Largest body, in bytes. */
  maxBodyBytes?: number | undefined;
  /** `bytes`: the body as bytes; else as text. */
  responseType?: string | undefined;
  signal?: AbortSignal | undefined;
}

/** What every response of one transport shares. */
export interface CollectShared<R extends CollectRequest> {
  /** The timer body deadlines go on. */
  deadlines: Deadlines;
  /** Response headers as the transport hands them on (repeated ones joined). */
  headersOf: (raw: Record<string, string | string[] | undefined>) => Record<string, string>;
  /** The error of a request whose deadline passed. */
  timedOut: (req: R) => Error;
}

const EMPTY: Record<string, string> = Object.freeze({}) as Record<string, string>;

/** One response being collected; settles `resolve` or `reject` once. */
export class BodyCollector<R extends CollectRequest> implements Dispatcher.DispatchHandler {
  #controller: Dispatcher.DispatchController | undefined;
  /** A reason to end the request given before undici handed over its controller (the caller's abort). */
  #early: unknown = undefined;
  #chunks: Buffer[] = [];
  #size = 0;
  #statusCode = 0;
  #headers: Record<string, string> = EMPTY;
  #deadline: Deadline | undefined;
  #onAbort: (() => void) | undefined;

  /**
   * @param deadline epoch ms by which the whole exchange must be over (0: none).
   */
  constructor(
    readonly req: R,
    readonly deadline: number,
    readonly shared: CollectShared<R>,
    readonly resolve: (response: Collected) => void,
    readonly reject: (error: unknown) => void,
  ) {
    // The deadline runs from the dispatch, as `timeout` bounds the whole request: undici's headers timer starts only
    // once the request is sent (not while it waits for a connection) and restarts at each 1xx answer.
    if (deadline) this.#deadline = shared.deadlines.add(deadline, () => this.#end(shared.timedOut(req)));
    const { signal } = req;
    if (signal !== undefined) {
      if (signal.aborted) this.#end(signal.reason);
      else {
        this.#onAbort = () => this.#end(signal.reason);
        signal.addEventListener('abort', this.#onAbort, { once: true });
      }
    }
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#early !== undefined) controller.abort(this.#early as Error);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    // 1xx (103 Early Hints…): informational, the final answer follows.
    if (statusCode < 200) return;
    const limit = this.req.maxBodyBytes;
    this.#statusCode = statusCode;
    const own = (this.#headers = this.shared.headersOf(headers));
    if (limit !== undefined) {
      const declared = declaredLength(own);
      if (declared !== undefined && declared > limit && bodyFollows(this.req.method)) return controller.abort(new BodyTooLargeError(limit, statusCode, own));
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#size += chunk.length;
    const limit = this.req.maxBodyBytes;
    if (limit !== undefined && this.#size > limit) return controller.abort(new BodyTooLargeError(limit, this.#statusCode, this.#headers));
    this.#chunks.push(chunk);
  }

  onResponseEnd(): void {
    this.#settle();
    // One lookup: a compressed body (rare; see contentEncoding.ts) takes its own way.
    const coding = this.#headers['content-encoding'];
    if (coding !== undefined) return this.#endEncoded(coding);
    const chunks = this.#chunks;
    const statusCode = this.#statusCode;
    if (this.req.responseType === 'bytes') {
      // Copied: a chunk may be a view of memory undici or the socket goes on using.
      const bytes = new Uint8Array(this.#size);
      let at = 0;
      for (const chunk of chunks) {
        bytes.set(chunk, at);
        at += chunk.length;
      }
      this.resolve({ statusCode, headers: this.#headers, body: '', bytes });
      return;
    }
    const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.#size);
    this.resolve({ statusCode, headers: this.#headers, body: utf8Text(all) });
  }

  /** Resolves with the body decoded from its `Content-Encoding`, or rejects when it decodes past the cap. */
  #endEncoded(coding: string): void {
    const statusCode = this.#statusCode;
    let all: Buffer;
    try {
      all = decodeContent(Buffer.concat(this.#chunks, this.#size), coding, this.req.maxBodyBytes, statusCode, this.#headers);
    } catch (error) {
      return this.reject(error);
    }
    const headers = this.#headers;
    if (this.req.responseType === 'bytes') this.resolve({ statusCode, headers, body: '', bytes: new Uint8Array(all) });
    else this.resolve({ statusCode, headers, body: utf8Text(all) });
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.#settle();
    this.reject(error);
  }

  /**
   * Ends the request with `reason` (the caller's abort, the deadline): undici then reports it as the error. A request
   * still waiting for a connection rejects at once (undici aborts it when its turn comes, before sending it): else it
   * would wait for the requests ahead of it, which a server that never answers holds for undici's 300 s.
   */
  #end(reason: unknown): void {
    if (this.#controller !== undefined) return this.#controller.abort(reason as Error);
    this.#early = reason;
    this.reject(reason);
  }

  /** Forgets the deadline and the abort listener, once the response ended either way. */
  #settle(): void {
    if (this.#deadline !== undefined) this.shared.deadlines.delete(this.#deadline);
    if (this.#onAbort !== undefined) this.req.signal!.removeEventListener('abort', this.#onAbort);
  }
}
