/**
 * The broker's Prometheus metrics: proxied requests by route and status, upstream latency histograms by route, and
 * each client's token counters (read from `client.stats()` at scrape time). Rendered in the Prometheus text
 * exposition format 0.0.4. Pure apart from the counters it holds.
 *
 * @see https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format
 */
import type { ClientStats } from '../events.js';

/** Upper bounds, in seconds, of the upstream latency histogram's buckets. */
export const LATENCY_BUCKETS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Counters of one route. */
class RouteCounters {
  readonly statuses = new Map<number, number>();
  readonly buckets = new Float64Array(LATENCY_BUCKETS.length);
  latencyCount = 0;
  latencySum = 0;
}

/** A client's token counters, as a scrape sees them. */
export interface ClientSample {
  readonly name: string;
  readonly stats: ClientStats;
  /** Whether the client holds a token now. */
  readonly hasToken: boolean;
}

/** Escapes a label value (backslash, quote, newline). */
export function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** The metrics of one broker process. */
export class BrokerMetrics {
  readonly #routes = new Map<string, RouteCounters>();
  #tokenApiRequests = 0;
  #refused = 0;
  #reloads = 0;
  #reloadFailures = 0;

  #route(label: string): RouteCounters {
    let counters = this.#routes.get(label);
    if (counters === undefined) this.#routes.set(label, (counters = new RouteCounters()));
    return counters;
  }

  /** A proxied request ended with `status` (502/503/504 when the broker answered for the upstream, 499 when its caller went away first). */
  proxied(route: string, status: number): void {
    const statuses = this.#route(route).statuses;
    statuses.set(status, (statuses.get(status) ?? 0) + 1);
  }

  /** The upstream answered (headers) `seconds` after the request was sent. */
  latency(route: string, seconds: number): void {
    const counters = this.#route(route);
    counters.latencyCount++;
    counters.latencySum += seconds;
    for (let i = 0; i < LATENCY_BUCKETS.length; i++) {
      if (seconds <= LATENCY_BUCKETS[i]!) {
        counters.buckets[i]!++;
        break;
      }
    }
  }

  /** A request the proxy refused before any route (no route, absolute-form, CONNECT, TRACE, unsafe path, a loop back to the broker). */
  refused(): void {
    this.#refused++;
  }

  /** A token API request was answered. */
  tokenApiRequest(): void {
    this.#tokenApiRequests++;
  }

  /** A configuration reload succeeded or failed. */
  reloaded(ok: boolean): void {
    if (ok) this.#reloads++;
    else this.#reloadFailures++;
  }

  /** The exposition text, with the clients' counters sampled now. */
  render(clients: readonly ClientSample[]): string {
    const lines: string[] = [];
    const family = (name: string, type: string, help: string): void => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    };
    const perClient = (name: string, type: string, help: string, value: (c: ClientSample) => number): void => {
      family(name, type, help);
      for (const c of clients) lines.push(`${name}{client="${escapeLabel(c.name)}"} ${value(c)}`);
    };
    perClient('broker_token_requests_total', 'counter', 'Token requests sent to the token endpoint (attempts, retries included).', (c) => c.stats.tokenRequests);
    perClient('broker_tokens_obtained_total', 'counter', 'Tokens obtained from the endpoint or the token store.', (c) => c.stats.tokensObtained);
    perClient('broker_token_cache_hits_total', 'counter', 'Requests served a cached token without waiting.', (c) => c.stats.cacheHits);
    perClient('broker_token_waits_total', 'counter', 'Requests that waited for a token fetch.', (c) => c.stats.waits);
    perClient('broker_token_refreshes_total', 'counter', 'Background refreshes started ahead of expiry.', (c) => c.stats.backgroundRefreshes);
    perClient('broker_token_failures_total', 'counter', 'Token acquisitions that failed after retries.', (c) => c.stats.failures);
    perClient('broker_token_invalidations_total', 'counter', 'Tokens dropped after an upstream 401.', (c) => c.stats.invalidations);
    perClient('broker_token_store_hits_total', 'counter', 'Tokens read from the shared token store.', (c) => c.stats.storeHits);
    perClient('broker_token_store_errors_total', 'counter', 'Token store operations that failed or timed out.', (c) => c.stats.storeErrors);
    perClient('broker_circuit_open', 'gauge', 'Whether the token endpoint circuit breaker is open (1) or closed (0).', (c) => (c.stats.circuitOpen ? 1 : 0));
    perClient('broker_token_held', 'gauge', 'Whether the client holds a usable token now.', (c) => (c.hasToken ? 1 : 0));
    family('broker_proxied_requests_total', 'counter', 'Proxied requests by route and response status (499: the caller went away first).');
    for (const [route, counters] of this.#routes) {
      for (const [status, count] of counters.statuses) lines.push(`broker_proxied_requests_total{route="${escapeLabel(route)}",status="${status}"} ${count}`);
    }
    family('broker_upstream_latency_seconds', 'histogram', 'Time from sending a request upstream to its response headers.');
    for (const [route, counters] of this.#routes) {
      const label = escapeLabel(route);
      let cumulative = 0;
      LATENCY_BUCKETS.forEach((le, i) => {
        cumulative += counters.buckets[i]!;
        lines.push(`broker_upstream_latency_seconds_bucket{route="${label}",le="${le}"} ${cumulative}`);
      });
      lines.push(`broker_upstream_latency_seconds_bucket{route="${label}",le="+Inf"} ${counters.latencyCount}`);
      lines.push(`broker_upstream_latency_seconds_sum{route="${label}"} ${counters.latencySum}`);
      lines.push(`broker_upstream_latency_seconds_count{route="${label}"} ${counters.latencyCount}`);
    }
    family('broker_refused_requests_total', 'counter', 'Requests refused before routing (no route, absolute-form, CONNECT, TRACE, unsafe path, a loop back to the broker).');
    lines.push(`broker_refused_requests_total ${this.#refused}`);
    family('broker_token_api_requests_total', 'counter', 'Token API requests answered.');
    lines.push(`broker_token_api_requests_total ${this.#tokenApiRequests}`);
    family('broker_config_reloads_total', 'counter', 'Configuration reloads by result.');
    lines.push(`broker_config_reloads_total{result="ok"} ${this.#reloads}`, `broker_config_reloads_total{result="failed"} ${this.#reloadFailures}`);
    return `${lines.join('\n')}\n`;
  }
}
