// oauth-client-credentials/otel with the real OpenTelemetry SDK and in-memory exporters: metric counts equal
// client.stats(), a span per token request nested under the caller's span, semconv attribute names, no secret or
// token anywhere, uninstrument; and the lifecycle events on node:diagnostics_channel.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { context, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader, type MetricData } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { Client, DIAGNOSTICS_CHANNEL_PREFIX, OAuthProviderError, type ClientConfiguration } from '../src/index.js';
import { instrumentClient, METRICS, TOKEN_REQUEST_SPAN } from '../src/otel/index.js';
import { SVC_CREDENTIALS, manualClock, nextEvent, startStack, type ManualClock, type Stack } from './helpers/fixtures.js';

let stack: Stack;
const contextManager = new AsyncLocalStorageContextManager();

before(async () => {
  stack = await startStack({ ttl: 60 });
  context.setGlobalContextManager(contextManager.enable());
});
after(async () => {
  context.disable();
  await stack.close();
});

function makeClient(clock: ManualClock, extra: Partial<ClientConfiguration> = {}): Client {
  return new Client({ baseUrl: stack.api.url, tokenUrl: stack.proxiedTokenUrl, clock, clientCredentialsAuthCredentials: SVC_CREDENTIALS, ...extra });
}

function telemetry() {
  const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  const spanExporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spanExporter)] });
  const metricsNow = async (): Promise<Map<string, MetricData>> => {
    metricExporter.reset();
    await meterProvider.forceFlush();
    const out = new Map<string, MetricData>();
    for (const rm of metricExporter.getMetrics()) for (const sm of rm.scopeMetrics) for (const m of sm.metrics) out.set(m.descriptor.name, m);
    return out;
  };
  const total = (m: MetricData | undefined): number => (m?.dataPoints ?? []).reduce((sum, p) => sum + (typeof p.value === 'number' ? p.value : (p.value as { count: number }).count), 0);
  return { meterProvider, tracerProvider, spanExporter, metricsNow, total, close: async () => Promise.all([meterProvider.shutdown(), tracerProvider.shutdown()]) };
}

test('metrics equal client.stats(): token requests by outcome, duration, cache hits, waits, background refreshes, 401s, circuit', async () => {
  const clock = manualClock();
  const client = makeClient(clock);
  const t = telemetry();
  const uninstrument = instrumentClient(client, { meterProvider: t.meterProvider, tracerProvider: t.tracerProvider });
  try {
    await Promise.all(Array.from({ length: 20 }, () => client.get('/things')));
    await client.get('/things');
    stack.api.revoke((await client.clientCredentialsAuthManager.getToken()).accessToken);
    await client.get('/things');
    const token = await client.clientCredentialsAuthManager.getToken();
    clock.set(token.expiry! * 1000 - 15_000);
    const refreshed = nextEvent(client, 'tokenRefreshed');
    await client.get('/things');
    await refreshed;
    stack.proxy.inject({ kind: 'json', status: 400, body: { error: 'invalid_scope' } });
    await assert.rejects(client.get('/things', { scopes: 'api:write' }), OAuthProviderError);

    const stats = client.stats();
    const m = await t.metricsNow();
    assert.equal(stats.tokenRequests, 4);
    assert.equal(t.total(m.get(METRICS.tokenRequests)), stats.tokenRequests);
    assert.equal(t.total(m.get(METRICS.tokenRequestDuration)), stats.tokenRequests);
    const byOutcome = new Map(m.get(METRICS.tokenRequests)!.dataPoints.map((p) => [`${p.attributes['oauth.client_credentials.outcome']}:${p.attributes['error.type'] ?? ''}`, p.value]));
    assert.deepEqual(Object.fromEntries(byOutcome), { 'success:': 3, 'failure:400': 1 });
    assert.equal(t.total(m.get(METRICS.cacheHits)), stats.cacheHits);
    assert.equal(t.total(m.get(METRICS.waits)), stats.waits);
    assert.equal(t.total(m.get(METRICS.backgroundRefreshes)), stats.backgroundRefreshes);
    assert.equal(stats.backgroundRefreshes, 1);
    assert.equal(t.total(m.get(METRICS.failures)), stats.failures);
    assert.equal(t.total(m.get(METRICS.invalidations)), stats.invalidations);
    assert.equal(t.total(m.get(METRICS.unauthorizedRetries)), 1);
    assert.equal(t.total(m.get(METRICS.cachedTokens)), stats.cachedTokens);
    assert.equal(t.total(m.get(METRICS.circuitOpen)), 0);
    const point = m.get(METRICS.tokenRequestDuration)!.dataPoints[0]!;
    assert.equal(point.attributes['server.address'], '127.0.0.1');
    assert.equal(point.attributes['http.request.method'], 'POST');
    assert.equal(m.get(METRICS.tokenRequestDuration)!.descriptor.unit, 's');
  } finally {
    uninstrument();
    await client.close();
    await t.close();
  }
});

test('a span per token request, a child of the caller\'s active span; semconv attributes; no secret or token', async () => {
  const client = makeClient(manualClock());
  const t = telemetry();
  const uninstrument = instrumentClient(client, { meterProvider: t.meterProvider, tracerProvider: t.tracerProvider });
  const tracer = t.tracerProvider.getTracer('test');
  try {
    await tracer.startActiveSpan('caller', async (span) => {
      await Promise.all(Array.from({ length: 10 }, () => client.get('/things')));
      span.end();
    });
    stack.proxy.inject({ kind: 'json', status: 400, body: { error: 'invalid_scope' } });
    await tracer.startActiveSpan('failing caller', async (span) => {
      await assert.rejects(client.get('/things', { scopes: 'api:write' }));
      span.end();
    });
    const spans = t.spanExporter.getFinishedSpans();
    const byName = (name: string): ReadableSpan[] => spans.filter((s) => s.name === name);
    const [caller] = byName('caller');
    const [failingCaller] = byName('failing caller');
    const tokenSpans = byName(TOKEN_REQUEST_SPAN);
    assert.equal(tokenSpans.length, 2, 'one span per token request, not per call');
    const [ok, failed] = tokenSpans;
    assert.equal(ok!.parentSpanContext?.spanId, caller!.spanContext().spanId);
    assert.equal(ok!.spanContext().traceId, caller!.spanContext().traceId);
    assert.equal(failed!.parentSpanContext?.spanId, failingCaller!.spanContext().spanId);
    assert.equal(ok!.kind, SpanKind.CLIENT);
    const port = Number(new URL(stack.proxiedTokenUrl).port);
    assert.deepEqual(ok!.attributes, {
      'oauth.client_credentials.client_id': 'svc',
      'http.request.method': 'POST',
      'url.full': stack.proxiedTokenUrl,
      'server.address': '127.0.0.1',
      'server.port': port,
      'http.response.status_code': 200,
    });
    assert.equal(failed!.attributes['error.type'], '400');
    assert.equal(failed!.attributes['http.response.status_code'], 400);
    assert.equal(failed!.status.code, SpanStatusCode.ERROR);
    const token = (await client.clientCredentialsAuthManager.getToken()).accessToken;
    const dump = JSON.stringify(spans.map((s) => ({ a: s.attributes, e: s.events, st: s.status })));
    assert.ok(!dump.includes('svc-secret') && !dump.includes(token));

    uninstrument();
    const before = t.spanExporter.getFinishedSpans().length;
    await client.get('/things', { scopes: 'api:read api:write' });
    assert.equal(t.spanExporter.getFinishedSpans().length, before, 'no spans once uninstrumented');
  } finally {
    uninstrument();
    await client.close();
    await t.close();
  }
});

test('lifecycle events are published on node:diagnostics_channel, with no listener on the Client', async () => {
  const client = makeClient(manualClock());
  const received: { name: string; message: unknown }[] = [];
  const names = ['tokenFetched', 'tokenRequestStart', 'tokenRequestEnd', 'tokenWait', 'tokenInvalidated', 'unauthorizedRetried'];
  const subscribers = names.map((name) => {
    const fn = (message: unknown): void => void received.push({ name, message });
    diagnosticsChannel.subscribe(DIAGNOSTICS_CHANNEL_PREFIX + name, fn);
    return () => diagnosticsChannel.unsubscribe(DIAGNOSTICS_CHANNEL_PREFIX + name, fn);
  });
  try {
    await client.get('/things');
    const token = (await client.clientCredentialsAuthManager.getToken()).accessToken;
    stack.api.revoke(token);
    await client.get('/things');
    assert.deepEqual(received.map((r) => r.name), [
      'tokenWait', 'tokenRequestStart', 'tokenRequestEnd', 'tokenFetched',
      'tokenInvalidated', 'tokenWait', 'tokenRequestStart', 'tokenRequestEnd', 'tokenFetched', 'unauthorizedRetried',
    ]);
    const end = received.find((r) => r.name === 'tokenRequestEnd')!.message as { statusCode: number; url: string; durationMs: number };
    assert.equal(end.statusCode, 200);
    assert.equal(end.url, stack.proxiedTokenUrl);
    assert.ok(end.durationMs >= 0);
    const dump = JSON.stringify(received);
    assert.ok(!dump.includes('svc-secret') && !dump.includes(token));
  } finally {
    for (const off of subscribers) off();
    await client.close();
  }
  assert.equal(diagnosticsChannel.channel(`${DIAGNOSTICS_CHANNEL_PREFIX}tokenFetched`).hasSubscribers, false);
});
