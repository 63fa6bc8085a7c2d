/**
 * The broker's reverse proxy: a request whose path matches a route goes to the route's upstream (prefix replaced,
 * query kept) with `Authorization` set to the route's client's token (and a DPoP proof per request for a DPoP-bound
 * token), its body streamed byte for byte both ways through undici's `dispatch` (one keep-alive pool per upstream).
 * A 401 drops the token and the request is replayed once with a new one when its body was small enough to keep.
 * Anything else (no route, absolute-form, `*`, unsafe paths) is answered here and reaches nothing: never an open proxy.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Dispatcher } from 'undici';
import { asksForNonce } from '../auth/dpop.js';
import type { OAuthToken } from '../token.js';
import type { BrokerClient } from './clients.js';
import { forwardRequestHeaders, forwardResponseHeaders } from './headers.js';
import { describeError, type Log } from './log.js';
import type { BrokerMetrics } from './metrics.js';
import { matchRoute, type CompiledRoute, type RouteMatch } from './routes.js';

/** The routes and clients in force (swapped whole by a reload). */
export interface ProxyState {
  readonly routes: readonly CompiledRoute[];
  readonly clients: ReadonlyMap<string, BrokerClient>;
}

/** What the proxy handler needs. */
export interface ProxyOptions {
  /** The state in force now. */
  readonly state: () => ProxyState;
  /** The upstream connection pools. */
  readonly dispatcher: Dispatcher;
  readonly metrics: BrokerMetrics;
  readonly log: Log;
  readonly upstreamTimeoutMs: number;
  /** True once shutdown started: responses then close their connection. */
  readonly draining: () => boolean;
}

/** The `maxHeadersCount` of the broker's servers: a request with this many header fields or more is refused. */
export const MAX_HEADER_FIELDS = 2000;

/** Answers a request the broker itself handles, with a small JSON body. */
export function answer(res: ServerResponse, status: number, error: string, description: string): void {
  const body = JSON.stringify({ error, error_description: description });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

/** The whole body of `req` (at most `limit` bytes, as its content-length said). */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) req.destroy(new Error('request body longer than its content-length'));
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)));
    req.on('error', reject);
  });
}

function stalled(attempt: UpstreamAttempt): void {
  attempt.stalled();
}

function uncork(res: ServerResponse): void {
  res.uncork();
}

/** How one upstream attempt ended. */
type Outcome = 'done' | 'replay' | 'replay-nonce' | 'failed';

/** One upstream attempt: the undici dispatch handler that writes the upstream's answer into `res`. */
class UpstreamAttempt implements Dispatcher.DispatchHandler {
  #resolve!: (outcome: Outcome) => void;
  readonly done = new Promise<Outcome>((resolve) => {
    this.#resolve = resolve;
  });
  #discarding = false;
  #started: boolean;
  #controller: Dispatcher.DispatchController | undefined;
  /** Resumes the upstream once the caller drained (made on first backpressure only). */
  #resume: (() => void) | undefined;
  /** Armed while the upstream is paused for a caller that has not drained the response yet. */
  #stall: NodeJS.Timeout | undefined;

  constructor(
    readonly res: ServerResponse,
    readonly route: CompiledRoute,
    readonly url: string,
    readonly proxy: ProxyOptions,
    readonly client: BrokerClient,
    /** The token sent, when the broker sent its own; undefined for a passed-through Authorization. */
    readonly token: OAuthToken | undefined,
    /** A 401 may be replayed (the body is kept and this is the first attempt). */
    readonly mayReplay: boolean,
    readonly sentAt = performance.now(),
  ) {
    this.#started = false;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    // An interim response (100 Continue, 103 Early Hints) comes before the final one: it is not forwarded (undici
    // reports it here too, and writing it as the response would make the real one fail).
    if (statusCode < 200) return;
    const { proxy, route, res, client, token } = this;
    proxy.metrics.latency(route.config.path, (performance.now() - this.sentAt) / 1000);
    const signer = client.signer;
    const freshNonce = signer !== undefined && token !== undefined && headers['dpop-nonce'] !== undefined && signer.remember(this.url, headers as Record<string, string>);
    if (statusCode === 401 && token !== undefined) {
      if (this.mayReplay && freshNonce && asksForNonce(headers as Record<string, string>)) {
        this.#discarding = true;
        this.#resolve('replay-nonce');
        return;
      }
      // The token is dropped (the next request gets a new one) even when this request cannot be replayed.
      if (client.access.unauthorized(client.key, token.accessToken) && this.mayReplay) {
        this.#discarding = true;
        this.#resolve('replay');
        return;
      }
    }
    proxy.metrics.proxied(route.config.path, statusCode);
    this.#started = true;
    if (proxy.draining()) res.shouldKeepAlive = false;
    // Headers, a small body and its end usually arrive in one tick: corked, they leave in one write.
    res.cork();
    process.nextTick(uncork, res);
    res.writeHead(statusCode, forwardResponseHeaders(headers));
    if (res.destroyed) controller.abort(new Error('the caller went away'));
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#discarding) return;
    const res = this.res;
    if (res.destroyed) {
      controller.abort(new Error('the caller went away'));
      return;
    }
    if (!res.write(chunk) && this.#stall === undefined) {
      controller.pause();
      res.once('drain', (this.#resume ??= () => {
        clearTimeout(this.#stall);
        this.#stall = undefined;
        this.#controller?.resume();
      }));
      // A caller that stops reading would hold the upstream connection for ever: after upstreamTimeoutMs without
      // draining, both are closed.
      this.#stall = setTimeout(stalled, this.proxy.upstreamTimeoutMs, this);
    }
  }

  /** The caller read nothing for upstreamTimeoutMs while the response waited: give up on both sides. */
  stalled(): void {
    this.res.destroy();
    this.#controller?.abort(new Error('the caller stopped reading'));
  }

  onResponseEnd(): void {
    clearTimeout(this.#stall);
    if (this.#discarding) return;
    this.res.end();
    this.#resolve('done');
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    clearTimeout(this.#stall);
    if (this.#discarding) return;
    const { res, proxy, route } = this;
    if (this.#started || res.headersSent) {
      res.destroy();
      this.#resolve('failed');
      return;
    }
    const code = (error as { code?: string }).code;
    const timeout = code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT';
    const status = timeout ? 504 : 502;
    proxy.metrics.proxied(route.config.path, status);
    proxy.log('warn', 'upstream_failed', { route: route.config.path, upstream: route.origin, status, error: describeError(error) });
    if (!res.destroyed) answer(res, status, timeout ? 'upstream_timeout' : 'upstream_unavailable', timeout ? 'the upstream did not answer in time' : 'the upstream could not be reached');
    this.#resolve('failed');
  }
}

async function forward(o: ProxyOptions, req: IncomingMessage, res: ServerResponse, match: RouteMatch, client: BrokerClient): Promise<void> {
  const route = match.route;
  const label = route.config.path;
  const method = req.method!;
  const forwarded = forwardRequestHeaders(req.rawHeaders);
  if (forwarded.otherCoding) {
    o.metrics.refused();
    res.shouldKeepAlive = false;
    answer(res, 501, 'unsupported_transfer_coding', 'only the chunked transfer coding is accepted');
    return;
  }
  const headers = forwarded.headers;
  const passCaller = route.config.passAuthorization && forwarded.authorization !== undefined;
  if (passCaller) {
    headers.push('authorization', forwarded.authorization!);
    if (forwarded.dpop !== undefined) headers.push('dpop', forwarded.dpop);
  }
  let body: Buffer | IncomingMessage | undefined;
  let keep = true;
  const length = forwarded.contentLength;
  if (forwarded.chunked || (length !== undefined && length !== '0')) {
    // A caller that stops sending mid-body would otherwise hold its socket, and for a streamed body an upstream
    // connection, for ever: silent for upstreamTimeoutMs, it is disconnected (the upstream request is aborted).
    req.setTimeout(o.upstreamTimeoutMs);
    req.once('end', () => req.socket?.setTimeout(0));
    const size = length === undefined ? Infinity : Number(length);
    if (size <= route.config.replayBodyBytes) {
      try {
        body = await readBody(req, size);
      } catch {
        res.destroy();
        return;
      }
    } else {
      body = req;
      keep = false;
    }
  }
  const authAt = headers.length;
  const url = client.signer ? route.origin + match.path : '';
  let replayed = false;
  for (;;) {
    let token: OAuthToken | undefined;
    if (!passCaller) {
      try {
        token = client.access.peek(client.key) ?? (await client.access.token(client.key));
      } catch (error) {
        o.metrics.proxied(label, 503);
        o.log('error', 'token_unavailable', { client: client.name, route: label, error: describeError(error) });
        if (!res.headersSent && !res.destroyed) answer(res, 503, 'token_unavailable', `no access token for client "${client.name}"`);
        return;
      }
      headers.length = authAt;
      headers.push('authorization', client.access.authorization(token));
      if (client.signer !== undefined && token.tokenType.toLowerCase() === 'dpop') headers.push('dpop', client.signer.proof(method, url, token.accessToken));
    }
    const attempt = new UpstreamAttempt(res, route, url, o, client, token, keep && !replayed);
    o.dispatcher.dispatch({ origin: route.origin, path: match.path, method, headers, body: body ?? null, headersTimeout: o.upstreamTimeoutMs, bodyTimeout: o.upstreamTimeoutMs }, attempt);
    const outcome = await attempt.done;
    if (outcome !== 'replay' && outcome !== 'replay-nonce') return;
    replayed = true;
    if (outcome === 'replay') client.access.retried(client.key);
  }
}

/**
 * The request listener of the proxy's server. Requests that match no route get 404; absolute-form and `*` targets
 * and paths that could leave a route's prefix get 400; none of them reaches an upstream.
 */
export function createProxyHandler(o: ProxyOptions): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    if (o.draining()) res.shouldKeepAlive = false;
    // Node keeps the first MAX_HEADER_FIELDS fields and drops the rest silently (a Content-Length among them would be
    // lost, and the body with it): a request that reaches the limit is refused whole.
    if (req.rawHeaders.length >= 2 * MAX_HEADER_FIELDS) {
      o.metrics.refused();
      res.shouldKeepAlive = false;
      answer(res, 431, 'too_many_header_fields', `a request may have at most ${MAX_HEADER_FIELDS - 1} header fields`);
      return;
    }
    const match = matchRoute(o.state().routes, req.url ?? '');
    if (match === undefined) {
      o.metrics.refused();
      answer(res, 404, 'no_route', 'no route matches this path');
      return;
    }
    if (typeof match === 'string') {
      o.metrics.refused();
      answer(res, 400, match === 'not-origin-form' ? 'not_origin_form' : 'unsafe_path', match === 'not-origin-form' ? 'only origin-form targets (a path) are served: this is not a forward proxy' : 'the path holds a dot segment or an encoded slash, dot or backslash');
      return;
    }
    const client = o.state().clients.get(match.route.config.client)!;
    void forward(o, req, res, match, client).catch((error: unknown) => {
      o.log('error', 'proxy_failed', { route: match.route.config.path, error: describeError(error) });
      if (!res.headersSent && !res.destroyed) answer(res, 502, 'proxy_failed', 'the broker could not forward the request');
      else res.destroy();
    });
  };
}

/** Refuses CONNECT (the server's `connect` event) and upgrades: this is not a tunnel. */
export function refuseTunnel(socket: import('node:stream').Duplex, status: 405 | 501): void {
  const text = status === 405 ? 'Method Not Allowed' : 'Not Implemented';
  socket.end(`HTTP/1.1 ${status} ${text}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
}
