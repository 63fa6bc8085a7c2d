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
import { matchRoute, rewriteLocation, type CompiledRoute, type RouteMatch } from './routes.js';
import type { UpstreamPools } from './upstreams.js';

/** The routes, clients and timeout in force (swapped whole by a reload). */
export interface ProxyState {
  readonly routes: readonly CompiledRoute[];
  readonly clients: ReadonlyMap<string, BrokerClient>;
  /** How long an upstream may take to send its headers and between body chunks, and a caller between two reads or writes. */
  readonly upstreamTimeoutMs: number;
}

/** What the proxy handler needs. */
export interface ProxyOptions {
  /** The state in force now. */
  readonly state: () => ProxyState;
  /** The upstream connection pools. */
  readonly upstreams: UpstreamPools;
  readonly metrics: BrokerMetrics;
  readonly log: Log;
  /** True once shutdown started: responses then close their connection. */
  readonly draining: () => boolean;
  /**
   * This broker's pseudonym in `Via` (`oauth-broker-<random>`, one per process): added to every request sent upstream,
   * and a request that arrives with it has come back round a loop (a route whose upstream leads to this broker).
   */
  readonly via: string;
}

/** The status a request is counted under in metrics when its caller went away before its response began (nginx's 499). */
export const CALLER_GONE = 499;

/** The `Allow` of a refused TRACE: the RFC 9110 methods the broker forwards (it forwards other methods too). */
const FORWARDED_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';

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

/** Why an upstream attempt is replayed: its token was refused, or the upstream asked for a (new) DPoP nonce. */
type Replay = 'token' | 'nonce';

/**
 * One upstream attempt: the undici dispatch handler that writes the upstream's answer into the caller's response, or
 * asks its {@link ProxiedRequest} for a replay.
 */
class UpstreamAttempt implements Dispatcher.DispatchHandler {
  #discarding = false;
  #started = false;
  /** The final response's status, once it began. */
  #status = 0;
  #controller: Dispatcher.DispatchController | undefined;
  /** Resumes the upstream once the caller drained (made on first backpressure only). */
  #resume: (() => void) | undefined;
  /** Armed while the upstream is paused for a caller that has not drained the response yet. */
  #stall: NodeJS.Timeout | undefined;
  readonly sentAt = performance.now();

  constructor(
    readonly request: ProxiedRequest,
    /** The token sent, when the broker sent its own; undefined for a passed-through Authorization. */
    readonly token: OAuthToken | undefined,
    /** A 401 may be replayed (the body is kept and this is the first attempt). */
    readonly mayReplay: boolean,
  ) {}

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.request.gone) controller.abort(new Error('the caller went away'));
  }

  /**
   * The 401 is replayed: this response is closed rather than read to its end (an upstream may send a refusal's body
   * for as long as it likes; the caller gets the replay's answer).
   */
  #replay(controller: Dispatcher.DispatchController, why: Replay): void {
    this.#discarding = true;
    controller.abort(new Error('refused: replayed'));
    this.request.replay(why);
  }

  /** The caller went away: the upstream request is aborted (its connection closed), whatever it was doing. */
  callerGone(): void {
    this.#controller?.abort(new Error('the caller went away'));
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    // An interim response (100 Continue, 103 Early Hints) comes before the final one: it is not forwarded (undici
    // reports it here too, and writing it as the response would make the real one fail).
    if (statusCode < 200) return;
    const { request, token } = this;
    const { proxy, label, res, client } = request;
    proxy.metrics.latency(label, (performance.now() - this.sentAt) / 1000);
    const signer = client.signer;
    if (signer !== undefined && token !== undefined && headers['dpop-nonce'] !== undefined) signer.remember(request.url, headers as Record<string, string>);
    if (statusCode === 401 && token !== undefined) {
      const outdated = signer !== undefined && request.proof !== undefined && asksForNonce(headers as Record<string, string>) && signer.hasNewerNonce(request.url, request.proof);
      if (this.mayReplay && outdated) return this.#replay(controller, 'nonce');
      // The token is dropped (the next request gets a new one) even when this request cannot be replayed.
      if (client.access.unauthorized(client.key, token.accessToken) && this.mayReplay) return this.#replay(controller, 'token');
    }
    proxy.metrics.proxied(label, statusCode);
    this.#started = true;
    this.#status = statusCode;
    if (proxy.draining()) res.shouldKeepAlive = false;
    // No cork here: Node corks the socket at the response's first write until the next tick, so headers, a small body
    // and its end already leave in one write.
    // A redirect into the upstream's base path is followed through the broker, under the route's prefix.
    const location = headers['location'];
    if (typeof location === 'string') headers['location'] = rewriteLocation(location, request.route, proxy.state().routes);
    res.writeHead(statusCode, forwardResponseHeaders(headers, statusCode));
    if (res.destroyed) controller.abort(new Error('the caller went away'));
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#discarding) return;
    const res = this.request.res;
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
      this.#stall = setTimeout(stalled, this.request.timeoutMs, this);
    }
  }

  /** The caller read nothing for upstreamTimeoutMs while the response waited: give up on both sides. */
  stalled(): void {
    this.request.res.destroy();
    this.#controller?.abort(new Error('the caller stopped reading'));
  }

  onResponseEnd(): void {
    clearTimeout(this.#stall);
    if (this.#discarding) return;
    this.request.res.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    clearTimeout(this.#stall);
    if (this.#discarding) return;
    const { res, proxy, label, route } = this.request;
    // A 204 or 304 ends with its headers, whatever Content-Length it declares (a 304's is the representation's, RFC
    // 9110 §8.6); undici reports the body it did not get as a mismatch.
    if ((this.#status === 204 || this.#status === 304) && (error as { code?: string }).code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH') {
      res.end();
      return;
    }
    if (this.#started || res.headersSent) {
      res.destroy();
      return;
    }
    // The caller's own disconnect (mid-upload, or waiting for the answer) is no fault of the upstream's.
    if (this.request.callerGone()) {
      proxy.metrics.proxied(label, CALLER_GONE);
      res.destroy();
      return;
    }
    const code = (error as { code?: string }).code;
    const timeout = code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT';
    const status = timeout ? 504 : 502;
    proxy.metrics.proxied(label, status);
    proxy.log('warn', 'upstream_failed', { route: label, upstream: route.origin, status, error: describeError(error) });
    if (!res.destroyed) answer(res, status, timeout ? 'upstream_timeout' : 'upstream_unavailable', timeout ? 'the upstream did not answer in time' : 'the upstream could not be reached');
  }
}

/**
 * One request being proxied: the headers and body to forward and the upstream attempts made with them (a second one
 * only to replay a 401). Callbacks rather than an async function: with the token cached (the usual case) a request
 * goes upstream with no promise and no microtask in between.
 */
class ProxiedRequest {
  readonly route: CompiledRoute;
  /** The route's label in metrics and logs (its path). */
  readonly label: string;
  /** The upstream URL a DPoP proof is made for (`''` for a client without DPoP). */
  readonly url: string;
  /** The DPoP proof of the latest attempt (a `use_dpop_nonce` refusal is replayed when its nonce is outdated). */
  proof: string | undefined = undefined;
  readonly method: string;
  /** Where the token's fields go in `headers` (a replay overwrites them). */
  readonly authAt: number;
  body: Buffer | IncomingMessage | null = null;
  /** The body is kept (read whole), so a 401 can be replayed. */
  keep = true;
  replayed = false;
  /** The caller's connection closed before its response was complete. */
  gone = false;
  /** The upstream attempt in flight. */
  attempt: UpstreamAttempt | undefined;

  constructor(
    readonly proxy: ProxyOptions,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly match: RouteMatch,
    readonly client: BrokerClient,
    method: string,
    readonly headers: string[],
    /** The caller's Authorization goes upstream (the route passes it through and the caller sent one). */
    readonly passCaller: boolean,
    /** The upstream timeout in force when the request came. */
    readonly timeoutMs: number,
  ) {
    this.route = match.route;
    this.label = match.route.config.path;
    this.method = method;
    this.url = client.signer ? match.route.origin + match.path : '';
    this.authAt = headers.length;
    res.on('close', () => {
      if (res.writableFinished) return;
      this.gone = true;
      this.attempt?.callerGone();
    });
  }

  /** Whether the caller went away before its response was complete (its upload cut short, or its connection closed). */
  callerGone(): boolean {
    return this.gone || this.res.destroyed || (this.req.destroyed && !this.req.complete);
  }

  /** Sends the request upstream, with the client's token unless the caller's goes. */
  send(): void {
    if (this.passCaller) return this.dispatch(undefined);
    const { client } = this;
    let token: OAuthToken | undefined;
    try {
      token = client.access.peek(client.key);
    } catch (error) {
      return this.noToken(error);
    }
    // A cached token (the usual case) is sent at once; only a request with none waits on the shared fetch.
    if (token !== undefined) this.dispatch(token);
    else
      client.access.token(client.key).then(
        (fetched) => this.dispatch(fetched),
        (error: unknown) => this.noToken(error),
      ).catch((error: unknown) => this.failed(error));
  }

  dispatch(token: OAuthToken | undefined): void {
    const { proxy, client, headers } = this;
    // A caller that left while its token was fetched: nothing goes upstream (it may have retried elsewhere).
    if (this.gone) return proxy.metrics.proxied(this.label, CALLER_GONE);
    if (token !== undefined) {
      headers.length = this.authAt;
      headers.push('authorization', client.access.authorization(token));
      if (client.signer !== undefined && token.tokenType.toLowerCase() === 'dpop') headers.push('dpop', (this.proof = client.signer.proof(this.method, this.url, token.accessToken)));
    }
    const attempt = (this.attempt = new UpstreamAttempt(this, token, this.keep && !this.replayed));
    proxy.upstreams.pool(this.route.origin, client.upstreamTls).dispatch({ path: this.match.path, method: this.method, headers, body: this.body, headersTimeout: this.timeoutMs, bodyTimeout: this.timeoutMs }, attempt);
  }

  /** The upstream's 401 is replayed with a new token (or the nonce it sent), once the attempt's callback returned. */
  replay(why: Replay): void {
    this.replayed = true;
    queueMicrotask(() => {
      try {
        if (why === 'token') this.client.access.retried(this.client.key);
        this.send();
      } catch (error) {
        this.failed(error);
      }
    });
  }

  noToken(error: unknown): void {
    const { proxy, res, client, label } = this;
    proxy.metrics.proxied(label, 503);
    proxy.log('error', 'token_unavailable', { client: client.name, route: label, error: describeError(error) });
    if (!res.headersSent && !res.destroyed) answer(res, 503, 'token_unavailable', `no access token for client "${client.name}"`);
  }

  /** A fault of the broker's own (never expected): 502 when nothing was sent yet, else the connection is closed. */
  failed(error: unknown): void {
    const res = this.res;
    this.proxy.log('error', 'proxy_failed', { route: this.label, error: describeError(error) });
    if (!res.headersSent && !res.destroyed) answer(res, 502, 'proxy_failed', 'the broker could not forward the request');
    else res.destroy();
  }
}

/** Filters the request's headers and sends it upstream, after reading its body when it is small enough to keep. */
function forward(o: ProxyOptions, req: IncomingMessage, res: ServerResponse, match: RouteMatch, client: BrokerClient, timeoutMs: number, viaEntry: string): void {
  const route = match.route;
  const forwarded = forwardRequestHeaders(req.rawHeaders, o.via);
  if (forwarded.loop) {
    o.metrics.refused();
    o.log('error', 'loop_detected', { route: route.config.path, upstream: route.origin });
    res.shouldKeepAlive = false;
    answer(res, 508, 'loop_detected', 'this request already passed through this broker: a route leads back to it');
    return;
  }
  if (forwarded.otherCoding) {
    o.metrics.refused();
    res.shouldKeepAlive = false;
    answer(res, 501, 'unsupported_transfer_coding', 'only the chunked transfer coding is accepted');
    return;
  }
  const headers = forwarded.headers;
  headers.push('via', viaEntry);
  const passCaller = route.config.passAuthorization && forwarded.authorization !== undefined;
  if (passCaller) {
    headers.push('authorization', forwarded.authorization!);
    if (forwarded.dpop !== undefined) headers.push('dpop', forwarded.dpop);
  }
  const request = new ProxiedRequest(o, req, res, match, client, req.method!, headers, passCaller, timeoutMs);
  const length = forwarded.contentLength;
  if (!forwarded.chunked && (length === undefined || length === '0')) return request.send();
  // A caller that stops sending mid-body would otherwise hold its socket, and for a streamed body an upstream
  // connection, for ever: silent for upstreamTimeoutMs, it is disconnected (the upstream request is aborted).
  req.setTimeout(timeoutMs);
  req.once('end', () => req.socket?.setTimeout(0));
  const size = length === undefined ? Infinity : Number(length);
  if (size > route.config.replayBodyBytes) {
    request.body = req;
    request.keep = false;
    return request.send();
  }
  readBody(req, size).then(
    (body) => {
      request.body = body;
      request.send();
    },
    () => res.destroy(),
  ).catch((error: unknown) => request.failed(error));
}

/**
 * The request listener of the proxy's server. Requests that match no route get 404; absolute-form and `*` targets
 * and paths that could leave a route's prefix get 400; none of them reaches an upstream.
 */
export function createProxyHandler(o: ProxyOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const viaEntry = `1.1 ${o.via}`;
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
    // A TRACE is answered with the request as received (RFC 9110 §9.3.8), so the token the broker adds would come back
    // to the caller: it is refused, as are the tunnels (CONNECT, upgrades).
    if (req.method === 'TRACE') {
      o.metrics.refused();
      res.setHeader('allow', FORWARDED_METHODS);
      answer(res, 405, 'method_not_allowed', 'TRACE is not forwarded: the upstream would echo the access token back');
      return;
    }
    const state = o.state();
    const match = matchRoute(state.routes, req.url ?? '');
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
    try {
      forward(o, req, res, match, state.clients.get(match.route.config.client)!, state.upstreamTimeoutMs, viaEntry);
    } catch (error) {
      o.log('error', 'proxy_failed', { route: match.route.config.path, error: describeError(error) });
      if (!res.headersSent && !res.destroyed) answer(res, 502, 'proxy_failed', 'the broker could not forward the request');
      else res.destroy();
    }
  };
}

/** Refuses CONNECT (the server's `connect` event) and upgrades: this is not a tunnel. */
export function refuseTunnel(socket: import('node:stream').Duplex, status: 405 | 501): void {
  const text = status === 405 ? 'Method Not Allowed' : 'Not Implemented';
  socket.end(`HTTP/1.1 ${status} ${text}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
}
