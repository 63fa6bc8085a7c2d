/**
 * Retry and circuit-breaker policy for the token endpoint: which failures are retried, how long to wait
 * (exponential backoff with full jitter, honouring `Retry-After`), and when to stop calling a sick server.
 * Pure logic: time and randomness are passed in.
 */
import { DEFAULTS } from '../defaults.js';
import { ApiError, MalformedTokenResponseError, NetworkError, OAuthProviderError, TimeoutError, TokenLifetimeError } from '../errors.js';

export type { RetryOptions, CircuitBreakerOptions } from '../types/resilience.js';
import type { RetryOptions, CircuitBreakerOptions } from '../types/resilience.js';

/** Defaults for {@link RetryOptions}. */
export const DEFAULT_RETRY: RetryOptions = { ...DEFAULTS.retry };

/** RFC 6749 errors that no retry can fix. */
export const NEVER_RETRIED_ERRORS: ReadonlySet<string> = new Set(['invalid_client', 'invalid_scope', 'unauthorized_client', 'unsupported_grant_type', 'invalid_request', 'invalid_grant', 'invalid_target']);

const RETRYABLE_STATUS = (status: number) => status === 408 || status === 429 || status >= 500;

/**
 * True when `error` says the token endpoint is unhealthy, so it counts towards opening the circuit: every retryable
 * failure, a 2xx answer that is not a usable token response (HTML, truncated JSON, a body over the size cap), and a
 * token with less than a second of usable life (so such tokens cost about one request per probe interval, not per call).
 * RFC 6749 errors such as `invalid_client` come from a healthy server and do not count.
 */
export function isServerFault(error: unknown): boolean {
  return isRetryable(error) || error instanceof MalformedTokenResponseError || error instanceof TokenLifetimeError;
}

/** True when a token request that failed with `error` may succeed if tried again. */
export function isRetryable(error: unknown): boolean {
  if (error instanceof NetworkError || error instanceof TimeoutError) return true;
  if (error instanceof OAuthProviderError) return !NEVER_RETRIED_ERRORS.has(error.error) && RETRYABLE_STATUS(error.statusCode);
  if (error instanceof ApiError) return RETRYABLE_STATUS(error.statusCode);
  return false;
}

/**
 * The delay before retry number `attempt` (1 for the first retry): full jitter over an exponentially growing ceiling,
 * `random() × min(maxDelay, baseDelay × 2^(attempt−1))`.
 */
export function backoffDelay(attempt: number, options: Pick<RetryOptions, 'baseDelay' | 'maxDelay'>, random: () => number = Math.random): number {
  const ceiling = Math.min(options.maxDelay, options.baseDelay * 2 ** Math.max(attempt - 1, 0));
  return Math.floor(random() * ceiling);
}

/**
 * Parses `Retry-After` (delay-seconds or an HTTP-date) into milliseconds from `nowMs`; undefined when absent or invalid.
 * A date in the past means 0. All three HTTP-date forms of RFC 9110 are read as GMT: IMF-fixdate
 * (`Sun, 06 Nov 1994 08:49:37 GMT`), the obsolete RFC 850 form (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime
 * (`Sun Nov  6 08:49:37 1994`, which carries no zone and which `Date.parse` alone would read in local time). Values
 * such as `-1` or `1.5`, which `Date.parse` would read as years, are invalid.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-10.2.3
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-5.6.7
 */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  let date: number;
  const asctime = /^[A-Za-z]{3} ([A-Za-z]{3}) ( \d|\d{2}) (\d{2}:\d{2}:\d{2}) (\d{4})$/.exec(trimmed);
  if (asctime) date = Date.parse(`${asctime[2]!.trim()} ${asctime[1]} ${asctime[4]} ${asctime[3]} GMT`);
  else if (/^[A-Za-z]{3,9}, .* GMT$/.test(trimmed)) date = Date.parse(trimmed);
  else return undefined;
  return Number.isNaN(date) ? undefined : Math.max(date - nowMs, 0);
}

/**
 * The `Retry-After` delay a failure asks for, in ms, if any; for a 429 without it, `X-RateLimit-Reset` read as the unix
 * time (seconds) at which the limit resets, as Auth0 sends it.
 */
export function retryAfterOf(error: unknown, nowMs: number): number | undefined {
  if (!(error instanceof ApiError)) return undefined;
  const retryAfter = parseRetryAfter(error.headers['retry-after'], nowMs);
  if (retryAfter !== undefined || error.statusCode !== 429) return retryAfter;
  const reset = error.headers['x-ratelimit-reset']?.trim();
  // Only an epoch time (after 2001) counts: a small number could be seconds from now, which some servers send instead.
  return reset !== undefined && /^\d{10}$/.test(reset) ? Math.max(Number(reset) * 1000 - nowMs, 0) : undefined;
}

/** Defaults for {@link CircuitBreakerOptions}. */
export const DEFAULT_CIRCUIT_BREAKER: CircuitBreakerOptions = { ...DEFAULTS.circuitBreaker };

/** The first wait between trial requests, in ms. */
const FIRST_PROBE_INTERVAL = 250;

/** A circuit breaker's decision for a request at some moment. */
export type CircuitDecision = { allowed: true; trial: boolean } | { allowed: false; retryInMs: number; cause: unknown };

/**
 * A consecutive-failure circuit breaker on a monotonic clock: closed → open after `failureThreshold` failures →
 * half-open when the probe interval has passed, when exactly one trial is let through; a success closes it, a failure
 * opens it again for a doubled interval (capped at `maxProbeInterval`, or the server's `Retry-After`).
 */
export class CircuitBreaker {
  #failures = 0;
  #openUntil = 0;
  #reopens = 0;
  #trialInFlight = false;
  #lastError: unknown;

  constructor(
    private readonly options: CircuitBreakerOptions,
    private readonly maxRetryAfter = DEFAULT_RETRY.maxRetryAfter,
  ) {}

  /** Whether the circuit is open at `nowMs` (monotonic). */
  isOpen(nowMs: number): boolean {
    return this.#failures >= this.options.failureThreshold && (nowMs < this.#openUntil || this.#trialInFlight);
  }

  /**
   * May a request go out at `nowMs` (monotonic)? While open, none may; once the interval has passed, exactly one
   * trial may (`trial: true`), until it succeeds, fails or is {@link abandon}ed.
   */
  check(nowMs: number): CircuitDecision {
    if (this.#failures < this.options.failureThreshold) return { allowed: true, trial: false };
    if (nowMs < this.#openUntil || this.#trialInFlight) return { allowed: false, retryInMs: Math.max(this.#openUntil - nowMs, 0), cause: this.#lastError };
    this.#trialInFlight = true;
    return { allowed: true, trial: true };
  }

  /** Whether a half-open trial is out now (its request sent or waiting for its moment). */
  get trialInFlight(): boolean {
    return this.#trialInFlight;
  }

  /**
   * Makes the caller's request the trial of an open circuit when none is out, so that a caller with no usable token
   * is never refused while nothing is being tried: returns how long (ms) the trial waits before it goes out (the rest of
   * the probe interval, or of the server's `Retry-After`), or undefined when the circuit is closed or a trial is out.
   */
  claimTrial(nowMs: number): number | undefined {
    if (this.#failures < this.options.failureThreshold || this.#trialInFlight) return undefined;
    this.#trialInFlight = true;
    return Math.max(this.#openUntil - nowMs, 0);
  }

  /** Records a success; returns true when that closed an open circuit. */
  success(): boolean {
    const wasOpen = this.#failures >= this.options.failureThreshold;
    this.#failures = 0;
    this.#reopens = 0;
    this.#trialInFlight = false;
    return wasOpen;
  }

  /**
   * Records that a request let through ended with neither success nor failure (it was aborted). Only the trial's
   * own request frees the trial slot: an aborted request that was not the trial must not let a second one through.
   */
  abandon(trial: boolean): void {
    if (trial) this.#trialInFlight = false;
  }

  /**
   * Records a failure at `nowMs` (monotonic), with the server's `Retry-After` in ms when it sent one; returns the
   * milliseconds until the next trial when this failure opened (or re-opened) the circuit, else undefined.
   */
  failure(nowMs: number, error: unknown, retryAfterMs?: number): number | undefined {
    this.#lastError = error;
    this.#failures++;
    this.#trialInFlight = false;
    if (this.#failures < this.options.failureThreshold) return undefined;
    const probe = Math.min(FIRST_PROBE_INTERVAL * 2 ** this.#reopens, this.options.maxProbeInterval);
    this.#reopens++;
    // Retry-After is a floor, never a way around the pacing: 0 or a past date means "no extra wait".
    const wait = retryAfterMs !== undefined ? Math.max(Math.min(retryAfterMs, this.maxRetryAfter), probe) : probe;
    this.#openUntil = nowMs + wait;
    return wait;
  }

  /** Consecutive failures so far. */
  get failures(): number {
    return this.#failures;
  }
}

/** Longest wait before a token request that has not answered is hedged, in ms (issue 18: "capped at about 1 s"). */
export const MAX_HEDGE_DELAY = 1_000;
/** Shortest hedge wait, in ms: below it a hedge would race a healthy request on a noisy machine. */
export const MIN_HEDGE_DELAY = 250;
/** Least time between two new attempts for one key while it is failing or not answering, in ms (~1 per second). */
export const ATTEMPT_INTERVAL = 1_000;
/**
 * Time between further hedges of a fetch whose attempts do not answer, in ms: a little under a second, so that once a
 * black-holed endpoint is back the next attempt goes out, and answers, within about a second (about 1.3 attempts a
 * second per key while nothing answers).
 */
export const HEDGE_INTERVAL = 750;
/** Attempts in flight at once for one key (the first one and its hedges). */
export const MAX_ATTEMPTS_IN_FLIGHT = 3;

/**
 * How long a token request may go unanswered before a second one goes out (hedging), from the observed latency of
 * token requests that succeeded: four times the smoothed latency, within [{@link MIN_HEDGE_DELAY},
 * {@link MAX_HEDGE_DELAY}]; {@link MAX_HEDGE_DELAY} before any request has been observed.
 */
export function hedgeDelay(latencyMs: number | undefined): number {
  if (latencyMs === undefined || !Number.isFinite(latencyMs)) return MAX_HEDGE_DELAY;
  return Math.min(Math.max(Math.ceil(latencyMs * 4), MIN_HEDGE_DELAY), MAX_HEDGE_DELAY);
}

/** Folds one observed latency into a smoothed estimate (exponentially weighted, weight 1/4 for the new sample). */
export function smoothLatency(previous: number | undefined, sampleMs: number): number {
  return previous === undefined ? sampleMs : previous + (sampleMs - previous) / 4;
}

/**
 * When the next background refresh of a token still served may start, after a failed (or unanswered) one: full
 * jitter over a ceiling that doubles from 1 s to 30 s but never exceeds a quarter of the time left; never sooner than
 * {@link ATTEMPT_INTERVAL} after the last attempt started (the per-key pace), nor before the server's `Retry-After`.
 *
 * @param failures consecutive failures so far, this one included (1 for the first).
 * @param leftMs the time the token being served has left.
 * @param lastAttemptAt when the failed attempt started, on the same clock as `nowMs`.
 * @param retryAfterMs the server's `Retry-After`, if it sent one (0: no extra wait).
 */
export function nextBackgroundAttempt(nowMs: number, failures: number, leftMs: number, lastAttemptAt: number, retryAfterMs: number | undefined, random: () => number): number {
  const ceiling = Math.min(1_000 * 2 ** Math.max(failures - 1, 0), 30_000, Math.max(leftMs, 0) / 4);
  const jittered = nowMs + ceiling * (0.5 + random() / 2);
  return Math.max(jittered, lastAttemptAt + ATTEMPT_INTERVAL, nowMs + (retryAfterMs ?? 0));
}

/**
 * The longest a background refresh attempt may run, in ms: four times the hedge delay (itself derived from observed
 * latency), at least {@link ATTEMPT_INTERVAL}, twice as long after each consecutive failure (`failures`) up to a quarter
 * of the time left and `growthCapMs` (the token request timeout), and never past the moment the token being served
 * expires (nor past `timeoutMs`). An attempt that does not answer in that time is abandoned (its socket closed) and counts
 * as a failure, so a black-holed request neither blocks the key nor keeps the process alive; the growth lets an endpoint
 * that became slower than the first bound (it looks black-holed until it answers) answer a later attempt in time.
 */
export function backgroundAttemptBound(hedgeDelayMs: number, leftMs: number, timeoutMs: number, failures = 0, growthCapMs = Number.POSITIVE_INFINITY): number {
  const base = Math.max(hedgeDelayMs * 4, ATTEMPT_INTERVAL);
  const grown = Math.min(base * 2 ** Math.min(Math.max(failures, 0), 6), Math.max(Math.min(leftMs / 4, growthCapMs), base));
  return Math.max(Math.min(grown, leftMs, timeoutMs), 1);
}
