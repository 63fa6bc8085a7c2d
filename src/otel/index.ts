/**
 * `oauth-client-credentials/otel`: OpenTelemetry metrics and spans for a Client, from its events and `stats()`.
 * `@opentelemetry/api` is an optional peer dependency; with no provider given, the global ones are used (no-ops
 * until an SDK registers). Attribute names follow the semantic conventions where they exist (`http.*`, `server.*`,
 * `url.full`, `error.type`); the rest live under `oauth.client_credentials.*`. No secret and no token is ever an
 * attribute. See docs/observability.md for the full table.
 */
import {
  context,
  metrics,
  trace,
  SpanKind,
  SpanStatusCode,
  ValueType,
  type Attributes,
  type BatchObservableCallback,
  type MeterProvider,
  type Observable,
  type Span,
  type TracerProvider,
} from '@opentelemetry/api';
import type { Client } from '../client.js';
import type { TokenRequestEnd, TokenRequestStart } from '../events.js';

/** The instrumentation scope name of the meter and the tracer. */
export const INSTRUMENTATION_SCOPE = 'oauth-client-credentials';

/** Metric names (stable; see docs/observability.md). */
export const METRICS = {
  /** Counter: HTTP requests to the token endpoint, by `oauth.client_credentials.outcome` (success | failure). */
  tokenRequests: 'oauth.client_credentials.token.requests',
  /** Histogram, seconds: duration of one token request. */
  tokenRequestDuration: 'oauth.client_credentials.token.request.duration',
  /** Observable counter: authenticated requests served from the in-process cache without waiting. */
  cacheHits: 'oauth.client_credentials.cache.hits',
  /** Observable counter: authenticated requests that waited for a token fetch. */
  waits: 'oauth.client_credentials.token.waits',
  /** Observable counter: background refreshes started in the stale window. */
  backgroundRefreshes: 'oauth.client_credentials.token.background_refreshes',
  /** Observable counter: token acquisitions that failed after retries. */
  failures: 'oauth.client_credentials.token.failures',
  /** Observable counter: tokens dropped after a 401 or `invalidate()`. */
  invalidations: 'oauth.client_credentials.token.invalidations',
  /** Observable counter: API requests retried once after a 401. */
  unauthorizedRetries: 'oauth.client_credentials.unauthorized_retries',
  /** Observable gauge: tokens cached in process. */
  cachedTokens: 'oauth.client_credentials.cache.size',
  /** Observable gauge: 1 while the circuit breaker is open, else 0. */
  circuitOpen: 'oauth.client_credentials.circuit.open',
} as const;

/** The name of the span of one token request. */
export const TOKEN_REQUEST_SPAN = 'oauth.client_credentials.token_request';

/** Attribute names in the `oauth.client_credentials.*` namespace. */
export const ATTRIBUTES = {
  /** `success` or `failure`. */
  outcome: 'oauth.client_credentials.outcome',
  /** The OAuth client id (public, never the secret). */
  clientId: 'oauth.client_credentials.client_id',
} as const;

/** Options of {@link instrumentClient}. */
export interface InstrumentOptions {
  /** Where metrics go; default the global MeterProvider. */
  meterProvider?: MeterProvider;
  /** Where spans go; default the global TracerProvider. */
  tracerProvider?: TracerProvider;
}

/** `server.address` and `server.port` of a URL. */
function serverAttributes(url: string): Attributes {
  try {
    const u = new URL(url);
    return { 'server.address': u.hostname, 'server.port': u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80 };
  } catch {
    return {};
  }
}

/** `error.type` of a failed token request: the HTTP status for an HTTP error, else the error's class. */
function errorType(event: TokenRequestEnd): string {
  if (event.statusCode !== undefined && (event.statusCode < 200 || event.statusCode >= 300)) return String(event.statusCode);
  return event.error?.name ?? '_OTHER';
}

/**
 * Instruments `client` with OpenTelemetry: token request metrics and spans (each a child of the active span of
 * whoever caused it), and the Client's counters as observable instruments. Counters of events count from now on;
 * the observable ones report `client.stats()`. Clones sharing a token cache share these figures: instrument one.
 *
 * @returns a function that removes the instrumentation (listeners and observable callbacks; open spans end).
 */
export function instrumentClient(client: Client, options: InstrumentOptions = {}): () => void {
  const meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter(INSTRUMENTATION_SCOPE);
  const tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer(INSTRUMENTATION_SCOPE);
  const clientId = (client.toJSON() as { clientId?: unknown }).clientId;
  const base: Attributes = typeof clientId === 'string' ? { [ATTRIBUTES.clientId]: clientId } : {};

  const requests = meter.createCounter(METRICS.tokenRequests, { description: 'HTTP requests to the OAuth token endpoint, by outcome', unit: '{request}', valueType: ValueType.INT });
  const duration = meter.createHistogram(METRICS.tokenRequestDuration, { description: 'Duration of one token request', unit: 's', valueType: ValueType.DOUBLE });
  const observed = {
    cacheHits: meter.createObservableCounter(METRICS.cacheHits, { description: 'Authenticated requests served from the token cache without waiting', unit: '{request}', valueType: ValueType.INT }),
    waits: meter.createObservableCounter(METRICS.waits, { description: 'Authenticated requests that waited for a token fetch', unit: '{request}', valueType: ValueType.INT }),
    backgroundRefreshes: meter.createObservableCounter(METRICS.backgroundRefreshes, { description: 'Background token refreshes started', unit: '{refresh}', valueType: ValueType.INT }),
    failures: meter.createObservableCounter(METRICS.failures, { description: 'Token acquisitions that failed after retries', unit: '{failure}', valueType: ValueType.INT }),
    invalidations: meter.createObservableCounter(METRICS.invalidations, { description: 'Tokens dropped after a 401 or invalidate()', unit: '{token}', valueType: ValueType.INT }),
    unauthorizedRetries: meter.createObservableCounter(METRICS.unauthorizedRetries, { description: 'API requests retried after a 401', unit: '{request}', valueType: ValueType.INT }),
    cachedTokens: meter.createObservableGauge(METRICS.cachedTokens, { description: 'Tokens cached in process', unit: '{token}', valueType: ValueType.INT }),
    circuitOpen: meter.createObservableGauge(METRICS.circuitOpen, { description: '1 while the token endpoint circuit breaker is open', unit: '1', valueType: ValueType.INT }),
  };
  const observables: Observable[] = Object.values(observed);
  const collect: BatchObservableCallback = (result) => {
    const s = client.stats();
    result.observe(observed.cacheHits, s.cacheHits, base);
    result.observe(observed.waits, s.waits, base);
    result.observe(observed.backgroundRefreshes, s.backgroundRefreshes, base);
    result.observe(observed.failures, s.failures, base);
    result.observe(observed.invalidations, s.invalidations, base);
    result.observe(observed.unauthorizedRetries, s.unauthorizedRetries, base);
    result.observe(observed.cachedTokens, s.cachedTokens, base);
    result.observe(observed.circuitOpen, s.circuitOpen ? 1 : 0, base);
  };
  meter.addBatchObservableCallback(collect, observables);

  const spans = new Map<number, Span>();
  const onStart = (event: TokenRequestStart): void => {
    const span = tracer.startSpan(
      TOKEN_REQUEST_SPAN,
      { kind: SpanKind.CLIENT, attributes: { ...base, 'http.request.method': event.method, 'url.full': event.url, ...serverAttributes(event.url) } },
      context.active(),
    );
    spans.set(event.id, span);
  };
  const onEnd = (event: TokenRequestEnd): void => {
    const failed = event.error !== undefined;
    const attributes: Attributes = { ...base, [ATTRIBUTES.outcome]: failed ? 'failure' : 'success', 'http.request.method': event.method, ...serverAttributes(event.url) };
    if (event.statusCode !== undefined) attributes['http.response.status_code'] = event.statusCode;
    if (failed) attributes['error.type'] = errorType(event);
    requests.add(1, attributes);
    duration.record(event.durationMs / 1000, attributes);
    const span = spans.get(event.id);
    if (!span) return;
    spans.delete(event.id);
    if (event.statusCode !== undefined) span.setAttribute('http.response.status_code', event.statusCode);
    if (failed) {
      span.setAttribute('error.type', attributes['error.type'] as string);
      // The error's class and code only: a message may describe the request in more detail than an operator needs.
      span.setStatus({ code: SpanStatusCode.ERROR, message: event.error!.name });
    }
    span.end();
  };
  const onWait = (): void => {
    trace.getSpan(context.active())?.addEvent('oauth.client_credentials.token_wait');
  };
  const onRetried = (): void => {
    trace.getSpan(context.active())?.addEvent('oauth.client_credentials.unauthorized_retry');
  };
  const offs = [client.on('tokenRequestStart', onStart), client.on('tokenRequestEnd', onEnd), client.on('tokenWait', onWait), client.on('unauthorizedRetried', onRetried)];

  let removed = false;
  return () => {
    if (removed) return;
    removed = true;
    for (const off of offs) off();
    meter.removeBatchObservableCallback(collect, observables);
    for (const span of spans.values()) span.end();
    spans.clear();
  };
}
