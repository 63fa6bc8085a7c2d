/**
 * Retry and circuit-breaker policy for the token endpoint: which failures are retried, how long to wait
 * (exponential backoff with full jitter, honouring `Retry-After`), and when to stop calling a sick server.
 * Pure logic: time and randomness are passed in.
 */
import { ApiError, MalformedTokenResponseError, NetworkError, OAuthProviderError, TimeoutError } from '../errors.js';

/** How the token endpoint is retried. */
export interface RetryOptions {
  /** Attempts in all, the first included. Default 4. */
  maxAttempts: number;
  /** First backoff ceiling in ms; doubles each attempt. Default 200. */
  baseDelay: number;
  /** Largest backoff ceiling in ms. Default 5,000. */
  maxDelay: number;
  /** Total time in ms that retries of one fetch may take, waits included. Default 30,000. */
  maxElapsed: number;
  /** Largest `Retry-After` honoured, in ms; a longer one ends the retries. Default 60,000. */
  maxRetryAfter: number;
}

/** Defaults for {@link RetryOptions}. */
export const DEFAULT_RETRY: RetryOptions = { maxAttempts: 4, baseDelay: 200, maxDelay: 5_000, maxElapsed: 30_000, maxRetryAfter: 60_000 };

/** RFC 6749 errors that no retry can fix. */
export const NEVER_RETRIED_ERRORS: ReadonlySet<string> = new Set(['invalid_client', 'invalid_scope', 'unauthorized_client', 'unsupported_grant_type', 'invalid_request', 'invalid_grant', 'invalid_target']);

const RETRYABLE_STATUS = (status: number) => status === 408 || status === 429 || status >= 500;

/**
 * True when `error` says the token endpoint is unhealthy, so it counts towards opening the circuit: every retryable
 * failure, and a 2xx answer that is not a usable token response (HTML, truncated JSON, a body over the size cap).
 * RFC 6749 errors such as `invalid_client` come from a healthy server and do not count.
 */
export function isServerFault(error: unknown): boolean {
  return isRetryable(error) || error instanceof MalformedTokenResponseError;
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
 * A date in the past means 0. Only the HTTP-date forms are read as dates (they all begin with a day name), so values
 * such as `-1` or `1.5`, which `Date.parse` would read as years, are invalid.
 *
 * @see https://www.rfc-editor.org/rfc/rfc9110#section-10.2.3
 */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  if (!/^[A-Za-z]{3,9},? /.test(trimmed)) return undefined;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(date - nowMs, 0);
}

/** The `Retry-After` delay a failure asks for, in ms, if any. */
export function retryAfterOf(error: unknown, nowMs: number): number | undefined {
  return error instanceof ApiError ? parseRetryAfter(error.headers['retry-after'], nowMs) : undefined;
}

/** How the circuit breaker behaves. */
export interface CircuitBreakerOptions {
  /** Consecutive failed attempts that open the circuit. Default 5. */
  failureThreshold: number;
  /** Milliseconds the circuit stays open before one trial request. Default 30,000. */
  cooldown: number;
}

/** Defaults for {@link CircuitBreakerOptions}. */
export const DEFAULT_CIRCUIT_BREAKER: CircuitBreakerOptions = { failureThreshold: 5, cooldown: 30_000 };

/** A circuit breaker's decision for a request at some moment. */
export type CircuitDecision = { allowed: true } | { allowed: false; retryAt: number; cause: unknown };

/**
 * A consecutive-failure circuit breaker: closed → open after `failureThreshold` failures → half-open after `cooldown`,
 * when one trial is let through; a success closes it, a failure opens it again.
 */
export class CircuitBreaker {
  #failures = 0;
  #openUntil = 0;
  #trialInFlight = false;
  #lastError: unknown;

  constructor(private readonly options: CircuitBreakerOptions) {}

  /** Whether the circuit is open at `nowMs`. */
  isOpen(nowMs: number): boolean {
    return this.#failures >= this.options.failureThreshold && (nowMs < this.#openUntil || this.#trialInFlight);
  }

  /** May a request go out at `nowMs`? In half-open state only one trial at a time may. */
  check(nowMs: number): CircuitDecision {
    if (this.#failures < this.options.failureThreshold) return { allowed: true };
    if (nowMs < this.#openUntil || this.#trialInFlight) return { allowed: false, retryAt: Math.max(this.#openUntil, nowMs), cause: this.#lastError };
    this.#trialInFlight = true;
    return { allowed: true };
  }

  /** Records a success; returns true when that closed an open circuit. */
  success(): boolean {
    const wasOpen = this.#failures >= this.options.failureThreshold;
    this.#failures = 0;
    this.#trialInFlight = false;
    return wasOpen;
  }

  /**
   * Records that a request let through ended with neither success nor failure (it was aborted), so a half-open
   * trial does not hold the circuit open forever.
   */
  abandon(): void {
    this.#trialInFlight = false;
  }

  /** Records a failure at `nowMs`; returns the moment it re-opens until when this failure opened the circuit. */
  failure(nowMs: number, error: unknown): number | undefined {
    this.#lastError = error;
    this.#failures++;
    this.#trialInFlight = false;
    if (this.#failures >= this.options.failureThreshold) {
      this.#openUntil = nowMs + this.options.cooldown;
      return this.#openUntil;
    }
    return undefined;
  }

  /** Consecutive failures so far. */
  get failures(): number {
    return this.#failures;
  }
}
