/**
 * `tokenRequestStart` / `tokenRequestEnd` around one HTTP request to the token endpoint, for tracing (a span per
 * token request) and metrics. Nothing is built when nobody listens. The start is emitted synchronously, in the
 * async context of whoever caused the request, so a tracer can parent its span on the caller's active span.
 */
import { performance } from 'node:perf_hooks';
import type { EventHub } from '../events.js';
import { describeUrl } from '../http/transport.js';

let lastId = 0;

/** Runs `send` (one token request), emitting its start and end events when somebody listens. */
export async function observeTokenRequest<T extends { statusCode: number }>(events: EventHub, tokenUrl: string, send: () => Promise<T>): Promise<T> {
  if (!events.has('tokenRequestStart') && !events.has('tokenRequestEnd')) return send();
  const start = { id: ++lastId, url: describeUrl(tokenUrl), method: 'POST' as const };
  const started = performance.now();
  events.emit('tokenRequestStart', start);
  try {
    const response = await send();
    events.emit('tokenRequestEnd', { ...start, durationMs: performance.now() - started, statusCode: response.statusCode, error: undefined });
    return response;
  } catch (error) {
    const statusCode = (error as { statusCode?: unknown })?.statusCode;
    const failure = error instanceof Error ? error : new Error(String(error));
    events.emit('tokenRequestEnd', { ...start, durationMs: performance.now() - started, statusCode: typeof statusCode === 'number' ? statusCode : undefined, error: failure });
    throw error;
  }
}
