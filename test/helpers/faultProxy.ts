import http from 'node:http';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { finished } from 'node:stream/promises';
import { closeServer, listenLocal } from './http.js';

/** A fault consumed by exactly one request (FIFO). */
export type Fault =
  | { kind: 'status'; status: number; body?: string; headers?: Record<string, string> }
  | { kind: 'reset' }
  | { kind: 'hang' }
  | { kind: 'malformed-json' }
  | { kind: 'html' }
  | { kind: 'huge'; bytes: number }
  | { kind: 'delay'; ms: number }
  /** 200 and a valid-looking JSON body, one byte every `intervalMs` (a body that trickles in). */
  | { kind: 'drip'; intervalMs: number }
  | { kind: 'json'; status: number; body: unknown; headers?: Record<string, string> };

/**
 * The shape of an outage (every request while it lasts): answered with an error status, the connection reset, the
 * connection refused (the proxy stops listening and drops its open connections, so a keep-alive socket fails too),
 * accepted and never answered (requests that arrive during the outage stay unanswered after it, as black-holed ones
 * do, until the client gives up), answered after a delay, or answered one byte at a time.
 */
export type OutageShape =
  | { kind: 'status'; status: number; headers?: Record<string, string> }
  | { kind: 'reset' }
  | { kind: 'refuse' }
  | { kind: 'hang' }
  | { kind: 'delay'; ms: number }
  | { kind: 'drip'; intervalMs: number };

/** A running fault-injecting reverse proxy. */
export interface FaultProxyHandle {
  /** Base URL of the proxy; path and query are appended to the target URL's path. */
  readonly url: string;
  /** Requests that reached the proxy (including faulted and outage ones). */
  readonly requests: number;
  /** Requests passed through to the target. */
  readonly forwarded: number;
  /** Faults still queued. */
  readonly pending: number;
  /** Queues `fault` for the next `times` requests (after any already queued). */
  inject(fault: Fault, times?: number): void;
  /** true: every request gets its socket destroyed (outage) until setDown(false). */
  setDown(down: boolean): void;
  /** A status (e.g. 503): every request is answered with it (an outage that answers) until setOutage(undefined). */
  setOutage(status: number | undefined): void;
  /** An outage of this shape until `setShape(undefined)`; a `refuse` outage ends when its listener is back. */
  setShape(shape: OutageShape | undefined): Promise<void>;
  /** Requests received and never answered so far (hang outages and faults). */
  readonly hanging: number;
  /** Drops queued faults and ends any outage (counters are kept). */
  clear(): void;
  close(): Promise<void>;
}

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'upgrade', 'te', 'trailer'];

/** Starts an HTTP reverse proxy on 127.0.0.1:0 in front of `targetUrl` that can inject faults. */
export async function startFaultProxy(targetUrl: string): Promise<FaultProxyHandle> {
  const target = new URL(targetUrl);
  if (target.protocol !== 'http:') throw new TypeError(`startFaultProxy only proxies http: targets, got ${targetUrl}`);
  const basePath = target.pathname.replace(/\/$/, '');
  const agent = new http.Agent({ keepAlive: true });
  const queue: Fault[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let down = false;
  let outage: number | undefined;
  let shape: OutageShape | undefined;
  let hanging = 0;
  const sockets = new Set<import('node:net').Socket>();
  let requests = 0;
  let forwarded = 0;

  const forward = (req: IncomingMessage, res: ServerResponse): void => {
    if (res.destroyed || req.socket.destroyed) return;
    forwarded++;
    const headers: OutgoingHttpHeaders = { ...req.headers, host: target.host };
    for (const h of HOP_BY_HOP) delete headers[h];
    const upstream = http.request({
      hostname: target.hostname,
      port: target.port,
      method: req.method,
      path: basePath + (req.url ?? '/'),
      headers,
      agent,
    });
    upstream.on('response', (up) => {
      const out: OutgoingHttpHeaders = { ...up.headers };
      for (const h of [...HOP_BY_HOP, 'transfer-encoding']) delete out[h];
      res.writeHead(up.statusCode ?? 502, up.statusMessage, out);
      up.pipe(res);
      up.on('error', () => res.destroy());
    });
    upstream.on('error', () => {
      if (!res.headersSent) sendBody(res, 502, 'application/json', JSON.stringify({ error: 'bad_gateway' }));
      else res.destroy();
    });
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    requests++;
    req.on('error', () => undefined);
    res.on('error', () => undefined);
    if (down) {
      req.socket.destroy();
      return;
    }
    if (shape !== undefined) return outageAnswer(req, res, shape);
    if (outage !== undefined) {
      const status = outage;
      req.resume();
      await finished(req).catch(() => undefined);
      if (!req.socket.destroyed) sendBody(res, status, 'application/json', JSON.stringify({ error: 'temporarily_unavailable' }));
      return;
    }
    const fault = queue.shift();
    if (!fault) return forward(req, res);
    if (fault.kind === 'delay') {
      const timer = setTimeout(() => {
        timers.delete(timer);
        forward(req, res);
      }, fault.ms);
      timers.add(timer);
      return;
    }
    // Every other fault answers (or not) after the full request has been received.
    req.resume();
    await finished(req).catch(() => undefined);
    if (req.socket.destroyed) return;
    switch (fault.kind) {
      case 'reset':
        req.socket.destroy();
        return;
      case 'hang':
        hanging++;
        return; // never answered; the socket is destroyed by close()
      case 'drip':
        await drip(res, fault.intervalMs, timers);
        return;
      case 'status':
        res.writeHead(fault.status, { 'content-length': Buffer.byteLength(fault.body ?? ''), ...fault.headers });
        res.end(fault.body ?? '');
        return;
      case 'json':
        sendBody(res, fault.status, 'application/json', JSON.stringify(fault.body), fault.headers);
        return;
      case 'malformed-json':
        sendBody(res, 200, 'application/json', '{"access_token":');
        return;
      case 'html':
        sendBody(res, 200, 'text/html; charset=utf-8', '<!DOCTYPE html><html><head><title>Login</title></head><body><h1>Please sign in</h1></body></html>');
        return;
      case 'huge':
        await sendHuge(res, fault.bytes);
        return;
    }
  };

  const outageAnswer = async (req: IncomingMessage, res: ServerResponse, current: OutageShape): Promise<void> => {
    if (current.kind === 'delay') {
      const timer = setTimeout(() => {
        timers.delete(timer);
        forward(req, res);
      }, current.ms);
      timers.add(timer);
      return;
    }
    req.resume();
    await finished(req).catch(() => undefined);
    if (req.socket.destroyed) return;
    switch (current.kind) {
      case 'status':
        sendBody(res, current.status, 'application/json', JSON.stringify({ error: 'temporarily_unavailable' }), current.headers);
        return;
      case 'reset':
      case 'refuse':
        req.socket.destroy();
        return;
      case 'hang':
        hanging++;
        return;
      case 'drip':
        await drip(res, current.intervalMs, timers);
        return;
    }
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  const url = await listenLocal(server);
  const port = Number(new URL(url).port);

  return {
    url,
    get requests() {
      return requests;
    },
    get forwarded() {
      return forwarded;
    },
    get pending() {
      return queue.length;
    },
    inject(fault, times = 1) {
      for (let i = 0; i < times; i++) queue.push(fault);
    },
    setDown(value) {
      down = value;
    },
    setOutage(status) {
      outage = status;
    },
    get hanging() {
      return hanging;
    },
    async setShape(next) {
      const wasRefusing = shape?.kind === 'refuse';
      shape = next;
      if (next?.kind === 'refuse' && !wasRefusing) {
        server.close();
        for (const socket of sockets) socket.destroy();
      } else if (next?.kind !== 'refuse' && wasRefusing) {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(port, '127.0.0.1', () => {
            server.off('error', reject);
            resolve();
          });
        });
      }
    },
    clear() {
      queue.length = 0;
      down = false;
      outage = undefined;
      if (shape?.kind !== 'refuse') shape = undefined;
    },
    async close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      for (const socket of sockets) socket.destroy();
      if (server.listening) await closeServer(server);
      agent.destroy();
    },
  };
}

function sendBody(res: ServerResponse, status: number, contentType: string, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

/** Streams a syntactically valid JSON token response of exactly `bytes` bytes (whitespace if too small). */
async function sendHuge(res: ServerResponse, bytes: number): Promise<void> {
  const head = '{"access_token":"';
  const tail = '","token_type":"Bearer","expires_in":60}';
  const fits = bytes >= head.length + tail.length;
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': bytes });
  const chunkSize = 64 * 1024;
  const filler = Buffer.alloc(chunkSize, fits ? 'a' : ' ');
  let remaining = bytes;
  const gone = (): boolean => res.destroyed || res.socket === null || res.socket.destroyed;
  const waitDrain = (): Promise<void> =>
    new Promise((resolve) => {
      const done = (): void => {
        res.off('drain', done);
        res.off('close', done);
        resolve();
      };
      res.on('drain', done);
      res.on('close', done);
    });
  const write = async (chunk: Buffer | string): Promise<boolean> => {
    if (gone()) return false;
    if (!res.write(chunk)) await waitDrain();
    return !gone();
  };
  if (fits) {
    if (!(await write(head))) return;
    remaining -= head.length + tail.length;
  }
  while (remaining > 0) {
    const n = Math.min(remaining, chunkSize);
    if (!(await write(n === chunkSize ? filler : filler.subarray(0, n)))) return;
    remaining -= n;
  }
  if (fits && !(await write(tail))) return;
  res.end();
}

/** Answers 200 with a token-shaped JSON body written one byte every `intervalMs` (stops when the client goes away). */
async function drip(res: ServerResponse, intervalMs: number, timers: Set<NodeJS.Timeout>): Promise<void> {
  const body = Buffer.from(JSON.stringify({ access_token: 'dripping', token_type: 'Bearer', expires_in: 60 }));
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
  for (let i = 0; i < body.length; i++) {
    if (res.destroyed || res.socket === null || res.socket.destroyed) return;
    res.write(body.subarray(i, i + 1));
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        resolve();
      }, intervalMs);
      timers.add(timer);
    });
  }
  res.end();
}
