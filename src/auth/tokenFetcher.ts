/**
 * Fetches tokens from the token endpoint with client authentication, retries (exponential backoff with full jitter,
 * honouring `Retry-After`, within a total bound) and a circuit breaker. Each outcome has its own error code.
 * Network errors, timeouts, 408, 429 and 5xx are retried; RFC 6749 errors and malformed 2xx answers are not
 * (the latter still count towards opening the circuit).
 */
import { performance } from 'node:perf_hooks';
import { setImmediate } from 'node:timers';
import { setTimeout as sleep } from 'node:timers/promises';
import { AbortError, CircuitOpenError, RetriesExhaustedError } from '../errors.js';
import type { EventHub } from '../events.js';
import type { OAuthToken } from '../token.js';
import type { ClientAuthInput } from './clientAuthentication.js';
import { rememberExactTimes } from './tokenRecord.js';
import { backoffDelay, HEDGE_INTERVAL, CircuitBreaker, hedgeDelay, isRetryable, isServerFault, MAX_ATTEMPTS_IN_FLIGHT, retryAfterOf, smoothLatency, type CircuitBreakerOptions, type RetryOptions } from './resilience.js';
import { observeTokenRequest } from './tokenRequestEvents.js';
import { sendTokenRequest, type TokenEndpointContext, type TokenRequestParameters } from './tokenEndpoint.js';

/** Mutable counters the fetcher reports into. */
export interface FetcherCounters {
  tokenRequests: number;
  retries: number;
}

/** What the fetcher needs. */
export interface TokenFetcherOptions {
  endpoint: TokenEndpointContext;
  clientAuth: ClientAuthInput;
  retry: RetryOptions;
  circuitBreaker: CircuitBreakerOptions | undefined;
  events: EventHub;
  counters: FetcherCounters;
  /** A monotonic clock in ms, for the retry budget and the circuit breaker (a wall-clock step cannot hold it open). */
  monotonic: () => number;
  /** Checks a token just received (e.g. that it has usable life left); a throw counts as a server fault, not retried. */
  check?: (token: OAuthToken) => void;
  random?: () => number;
}

/** How one fetch behaves. */
export interface FetchOptions {
  /** Cancels the fetch (and a retry sleep). */
  signal?: AbortSignal | undefined;
  /** Extra form fields for this fetch. */
  extraFields?: Record<string, string> | undefined;
  /**
   * A background refresh: a single attempt (the lifecycle paces background retries itself, against the time left),
   * not gated by an open circuit (it still reports its outcome to the breaker, so its success closes the circuit).
   */
  background?: boolean;
}

/** Fetches tokens from one token endpoint for one client, resiliently. */
export class TokenFetcher {
  readonly #options: TokenFetcherOptions;
  readonly #breaker: CircuitBreaker | undefined;
  /** Smoothed latency (ms) of the token requests that succeeded; undefined before the first. */
  #latency: number | undefined;

  constructor(options: TokenFetcherOptions) {
    this.#options = options;
    this.#breaker = options.circuitBreaker ? new CircuitBreaker(options.circuitBreaker, options.retry.maxRetryAfter) : undefined;
  }

  /** Whether the circuit breaker is open now. */
  circuitOpen(): boolean {
    return this.#breaker?.isOpen(this.#options.monotonic()) ?? false;
  }

  /** One attempt, without retries: authenticate, POST, parse, check. */
  async attempt(parameters: TokenRequestParameters, signal?: AbortSignal, extraFields: Record<string, string> = {}): Promise<OAuthToken> {
    this.#options.counters.tokenRequests++;
    const { endpoint, clientAuth, events } = this.#options;
    const { result, sentAt } = await observeTokenRequest(events, endpoint.tokenUrl, () => sendTokenRequest(endpoint, clientAuth, parameters, extraFields, signal));
    rememberExactTimes(result, sentAt);
    this.#options.check?.(result);
    return result;
  }

  /** How long a token request may go unanswered before another one goes out, from the latency observed so far. */
  hedgeDelay(): number {
    return hedgeDelay(this.#latency);
  }

  /**
   * Fetches a token, retrying retryable failures. Throws the failure itself when it is not retryable
   * (e.g. `invalid_client`), {@link RetriesExhaustedError} when the budget ran out, and {@link CircuitOpenError}
   * while the circuit is open with a trial out. Retry sleeps never keep the process alive on their own (a caller
   * waiting for the token does).
   *
   * Hedging: an attempt that has not answered within {@link hedgeDelay} (at most 1 s) does not hold the fetch: another
   * one goes out, then one every 0.75 s while none answers, at most {@link MAX_ATTEMPTS_IN_FLIGHT} at once (the first
   * attempt is kept, for an endpoint that is slow rather than black-holed; the oldest of the others is abandoned, its
   * socket closed, to make room). The first answer wins and the others are abandoned; a late answer is
   * never returned. `tokenRequestTimeout` bounds each attempt's life; `retry.maxElapsed` the whole fetch.
   */
  async fetch(parameters: TokenRequestParameters, options: FetchOptions = {}): Promise<OAuthToken> {
    const { retry, events, monotonic } = this.#options;
    const { signal, extraFields, background = false } = options;
    const started = monotonic();
    const maxAttempts = background ? 1 : retry.maxAttempts;
    const hedging = !background && maxAttempts > 1;
    const inFlight: Attempt[] = [];
    let answered = 0;
    let trial = false;
    let trialWait = 0;
    // The next moment (monotonic) a new attempt goes out: now, after a hedge delay, or after a retry's back-off. `due`
    // is set when that wait has passed (by its timer, so an injected monotonic clock that stands still cannot stall it).
    let nextAt: number | undefined;
    let due = true;
    let hedges = 0;
    const maxHedges = Math.max(Math.floor(retry.maxElapsed / HEDGE_INTERVAL), 1);
    const abandonAll = (reason: unknown) => {
      for (const attempt of inFlight.splice(0)) attempt.controller.abort(reason);
    };
    if (!background) {
      const decision = this.#checkCircuit();
      trial = decision.trial;
      trialWait = decision.waitMs;
    }
    try {
      if (trialWait > 0) await pause(trialWait, signal);
      for (;;) {
        if (signal?.aborted) throw new AbortError('The token request was aborted', { cause: signal.reason });
        if (due) {
          due = false;
          // The oldest attempt is kept: it is the first to answer when the endpoint is slow rather than black-holed
          // (abandoning it meant no attempt ever lived long enough to answer an endpoint slower than ~2.5 s).
          if (inFlight.length >= MAX_ATTEMPTS_IN_FLIGHT) inFlight.splice(1, 1)[0]!.controller.abort(new AbortError('A newer attempt replaced this unanswered token request'));
          if (inFlight.length > 0) hedges++;
          inFlight.push(this.#launch(parameters, signal, extraFields));
          const first = inFlight.length === 1;
          nextAt = hedging && hedges < maxHedges ? monotonic() + (first ? this.hedgeDelay() : Math.max(this.hedgeDelay(), HEDGE_INTERVAL)) : undefined;
          if (nextAt !== undefined && nextAt - started > retry.maxElapsed) nextAt = undefined;
        }
        const outcome = await settledFirst(inFlight, nextAt === undefined ? undefined : Math.max(nextAt - monotonic(), 0), signal);
        if (outcome === undefined) {
          due = true; // time for a hedge, or for a retry
          continue;
        }
        inFlight.splice(inFlight.indexOf(outcome.attempt), 1);
        if (outcome.ok) {
          abandonAll(new AbortError('Another token request answered first'));
          if (this.#breaker?.success()) events.emit('circuitClosed', {});
          return outcome.token;
        }
        const error = outcome.error;
        if (error instanceof AbortError || signal?.aborted) {
          if (signal?.aborted || (inFlight.length === 0 && nextAt === undefined)) throw error;
          continue; // an attempt this fetch abandoned itself
        }
        answered++;
        if (!isServerFault(error)) {
          if (this.#breaker?.success()) events.emit('circuitClosed', {});
          throw error;
        }
        const retryAfter = retryAfterOf(error, this.#options.endpoint.now());
        // A background refresh runs while a usable token is served: its failures do not open the circuit for callers.
        const openFor = background ? undefined : this.#breaker?.failure(monotonic(), error, retryAfter);
        trial = false;
        if (openFor !== undefined) {
          events.emit('circuitOpen', { failures: this.#breaker!.failures, retryInMs: openFor, error: error as Error });
          throw new CircuitOpenError(this.#options.endpoint.now() + openFor, error, openFor);
        }
        if (!isRetryable(error)) throw error;
        if (inFlight.length > 0) continue; // a hedge is still out: wait for it (and its hedges)
        // Retry-After is a floor: 0 or a past date is "no extra wait", never "no pacing".
        const backoff = backoffDelay(answered, retry, this.#options.random);
        const delay = retryAfter !== undefined && retryAfter > backoff ? retryAfter : backoff;
        const elapsed = monotonic() - started;
        if (answered >= maxAttempts || (retryAfter !== undefined && retryAfter > retry.maxRetryAfter) || elapsed + delay > retry.maxElapsed) {
          throw maxAttempts <= 1 ? error : new RetriesExhaustedError(answered, error);
        }
        this.#options.counters.retries++;
        events.emit('requestRetried', { attempt: answered, delayMs: delay, error: error as Error });
        nextAt = monotonic() + delay;
      }
    } catch (error) {
      abandonAll(new AbortError('The token fetch ended'));
      if (error instanceof AbortError || signal?.aborted) {
        if (trial) this.#breaker?.abandon(true);
      }
      throw error;
    }
  }

  /** One attempt with its own abort controller (linked to the fetch's signal), its outcome captured. */
  #launch(parameters: TokenRequestParameters, signal: AbortSignal | undefined, extraFields: Record<string, string> | undefined): Attempt {
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal?.reason);
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    const sent = this.#options.monotonic();
    const attempt = { controller } as Attempt;
    attempt.outcome = this.attempt(parameters, controller.signal, extraFields).then(
      (token): Outcome => {
        this.#latency = smoothLatency(this.#latency, this.#options.monotonic() - sent);
        return { attempt, ok: true, token };
      },
      (error: unknown): Outcome => ({ attempt, ok: false, error }),
    ).finally(() => signal?.removeEventListener('abort', onAbort));
    return attempt;
  }

  /**
   * Throws {@link CircuitOpenError} while the circuit is open and a trial is out; when the circuit is open and no trial
   * is out, this fetch becomes the trial, which waits for the rest of the probe interval (`waitMs`) and goes out.
   */
  #checkCircuit(): { trial: boolean; waitMs: number } {
    const breaker = this.#breaker;
    if (!breaker) return { trial: false, waitMs: 0 };
    const now = this.#options.monotonic();
    const decision = breaker.check(now);
    if (decision.allowed) return { trial: decision.trial, waitMs: 0 };
    const waitMs = breaker.claimTrial(now);
    if (waitMs === undefined) throw new CircuitOpenError(this.#options.endpoint.now() + decision.retryInMs, decision.cause, decision.retryInMs);
    return { trial: true, waitMs };
  }
}

/** Event-loop utilization above which an unanswered attempt is not hedged yet: the delay is likely this process's. */
const BUSY_UTILIZATION = 0.8;
/** Hedge waits extended at most this many times because the process was busy. */
const MAX_BUSY_DEFERRALS = 4;

type Outcome = { attempt: Attempt; ok: true; token: OAuthToken } | { attempt: Attempt; ok: false; error: unknown };

/** One token request of a fetch. */
interface Attempt {
  controller: AbortController;
  outcome: Promise<Outcome>;
}

/** Waits `ms` (unreferenced: a caller waiting keeps the process alive, not this), or until `signal` aborts. */
async function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  try {
    await sleep(ms, undefined, { signal, ref: false });
  } catch {
    throw new AbortError('The token request was aborted while waiting to retry', { cause: signal?.reason });
  }
}

/**
 * The first of `attempts` to settle, or undefined once `waitMs` has passed (never, when undefined). The timer is
 * unreferenced; a fetch aborted meanwhile sees its attempts reject, as their signals are linked.
 */
async function settledFirst(attempts: readonly Attempt[], waitMs: number | undefined, signal: AbortSignal | undefined): Promise<Outcome | undefined> {
  if (attempts.length === 0) {
    if (waitMs !== undefined && waitMs > 0) await pause(waitMs, signal);
    return undefined;
  }
  if (waitMs === undefined) return Promise.race(attempts.map((a) => a.outcome));
  if (waitMs <= 0) return undefined;
  let timer: NodeJS.Timeout | undefined;
  const elapsed = new Promise<undefined>((resolve) => {
    let deferrals = 0;
    // Not every runtime measures its event loop (Bun, Deno): there the hedge goes out on time.
    const measure = typeof performance.eventLoopUtilization === 'function' ? () => performance.eventLoopUtilization() : undefined;
    let since = measure?.();
    const fire = () => {
      // An attempt not answered while this process was busy says nothing about the endpoint: its answer may be sitting
      // unread in the socket. While the event loop was mostly busy, wait again (a few times at most), then give the
      // I/O one more turn before hedging.
      const busy = since === undefined ? 0 : performance.eventLoopUtilization(since).utilization;
      if (busy > BUSY_UTILIZATION && deferrals++ < MAX_BUSY_DEFERRALS) {
        since = measure?.();
        timer = setTimeout(fire, waitMs);
        timer.unref();
        return;
      }
      setImmediate(resolve, undefined);
    };
    timer = setTimeout(fire, waitMs);
    timer.unref();
  });
  try {
    return await Promise.race([...attempts.map((a) => a.outcome), elapsed]);
  } finally {
    clearTimeout(timer);
  }
}
