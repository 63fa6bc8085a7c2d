/**
 * Fetches tokens from the token endpoint with client authentication, retries (exponential backoff with full jitter,
 * honouring `Retry-After`, within a total bound) and a circuit breaker. Each outcome has its own error code.
 * Network errors, timeouts, 408, 429 and 5xx are retried; RFC 6749 errors and malformed 2xx answers are not
 * (the latter still count towards opening the circuit).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { AbortError, CircuitOpenError, RetriesExhaustedError } from '../errors.js';
import type { EventHub } from '../events.js';
import type { OAuthToken } from '../token.js';
import type { ClientAuthInput } from './clientAuthentication.js';
import { rememberExactTimes } from './tokenRecord.js';
import { backoffDelay, CircuitBreaker, isRetryable, isServerFault, retryAfterOf, type CircuitBreakerOptions, type RetryOptions } from './resilience.js';
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

  /**
   * Fetches a token, retrying retryable failures. Throws the failure itself when it is not retryable
   * (e.g. `invalid_client`), {@link RetriesExhaustedError} when the budget ran out, and {@link CircuitOpenError}
   * while the circuit is open. Retry sleeps never keep the process alive on their own (a caller waiting for the
   * token does).
   */
  async fetch(parameters: TokenRequestParameters, options: FetchOptions = {}): Promise<OAuthToken> {
    const { retry, events, monotonic } = this.#options;
    const { signal, extraFields, background = false } = options;
    const started = monotonic();
    const maxAttempts = background ? 1 : retry.maxAttempts;
    let attempt = 0;
    for (;;) {
      const trial = background ? false : this.#checkCircuit();
      attempt++;
      try {
        const token = await this.attempt(parameters, signal, extraFields);
        if (this.#breaker?.success()) events.emit('circuitClosed', {});
        return token;
      } catch (error) {
        if (error instanceof AbortError || signal?.aborted) {
          this.#breaker?.abandon(trial);
          throw error;
        }
        if (!isServerFault(error)) {
          if (this.#breaker?.success()) events.emit('circuitClosed', {});
          throw error;
        }
        const retryAfter = retryAfterOf(error, this.#options.endpoint.now());
        const openFor = this.#breaker?.failure(monotonic(), error, retryAfter);
        if (openFor !== undefined) {
          events.emit('circuitOpen', { failures: this.#breaker!.failures, retryInMs: openFor, error: error as Error });
          throw new CircuitOpenError(this.#options.endpoint.now() + openFor, error, openFor);
        }
        if (!isRetryable(error)) throw error;
        const delay = retryAfter ?? backoffDelay(attempt, retry, this.#options.random);
        const elapsed = monotonic() - started;
        if (attempt >= maxAttempts || (retryAfter !== undefined && retryAfter > retry.maxRetryAfter) || elapsed + delay > retry.maxElapsed) {
          throw maxAttempts <= 1 ? error : new RetriesExhaustedError(attempt, error);
        }
        this.#options.counters.retries++;
        events.emit('requestRetried', { attempt, delayMs: delay, error: error as Error });
        try {
          await sleep(delay, undefined, { signal, ref: false });
        } catch {
          throw new AbortError('The token request was aborted while waiting to retry', { cause: signal?.reason });
        }
      }
    }
  }

  /** Throws {@link CircuitOpenError} while the circuit is open; returns whether this request is the half-open trial. */
  #checkCircuit(): boolean {
    const decision = this.#breaker?.check(this.#options.monotonic());
    if (!decision) return false;
    if (!decision.allowed) throw new CircuitOpenError(this.#options.endpoint.now() + decision.retryInMs, decision.cause, decision.retryInMs);
    return decision.trial;
  }
}
