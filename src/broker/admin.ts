/**
 * The broker's admin endpoints: `/healthz` (the process answers), `/readyz` (every client has a token or can get
 * one now) and `/metrics` (Prometheus text format).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BrokerClient } from './clients.js';
import { describeError } from './log.js';
import type { BrokerMetrics } from './metrics.js';
import { answer } from './proxy.js';

/** What the admin endpoints need. */
export interface AdminOptions {
  readonly clients: () => ReadonlyMap<string, BrokerClient>;
  readonly metrics: BrokerMetrics;
  /** How long `/readyz` waits for a client's token, in ms. */
  readonly readyTimeoutMs: number;
  /** True once shutdown started (`/readyz` then answers 503). */
  readonly draining: () => boolean;
}

function json(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

/** Whether `client` holds a token or gets one within `timeoutMs`; the reason when not. */
async function readiness(client: BrokerClient, timeoutMs: number): Promise<{ client: string; ready: boolean; error?: string }> {
  if (client.access.peek(client.key)) return { client: client.name, ready: true };
  try {
    await client.access.token(client.key, AbortSignal.timeout(timeoutMs));
    return { client: client.name, ready: true };
  } catch (error) {
    const { code, message } = describeError(error);
    return { client: client.name, ready: false, error: code ? `${code}: ${message}` : message };
  }
}

/** The request listener of the admin server. */
export function createAdminHandler(o: AdminOptions): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return answer(res, 405, 'method_not_allowed', 'use GET');
    if (path === '/healthz') return json(res, 200, { status: 'ok' });
    if (path === '/metrics') {
      const clients = [...o.clients().values()].map((c) => ({ name: c.name, stats: c.client.stats(), hasToken: c.access.peek(c.key) !== undefined }));
      const body = o.metrics.render(clients);
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
      res.end(body);
      return;
    }
    if (path === '/readyz') {
      if (o.draining()) return json(res, 503, { status: 'draining', clients: [] });
      void Promise.all([...o.clients().values()].map((c) => readiness(c, o.readyTimeoutMs))).then((results) => {
        const ready = results.every((r) => r.ready);
        json(res, ready ? 200 : 503, { status: ready ? 'ready' : 'not_ready', clients: results });
      });
      return;
    }
    answer(res, 404, 'not_found', 'the admin endpoints are /healthz, /readyz and /metrics');
  };
}
