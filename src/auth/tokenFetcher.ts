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
import { clientAuthParts, type ClientAuthInput } from './clientAuthentication.js';
import { backoffDelay, CircuitBreaker, isRetryable, isServerFault, retryAfterOf, type CircuitBreakerOptions, type RetryOptions } from './resilience.js';
import { observeTokenRequest } from './tokenRequestEvents.js';
import { requestToken, tokenRequestForm, type TokenEndpointContext, type TokenRequestParameters } from './tokenEndpoint.js';

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
  random?: () => number;
}

/** Fetches tokens from one token endpoint for one client, resiliently. */
export class TokenFetcher {
  readonly #options: TokenFetcherOptions;
  readonly #breaker: CircuitBreaker | undefined;

  constructor(options: TokenFetcherOptions) {
    this.#options = options;
    this.#breaker = options.circuitBreaker ? new CircuitBreaker(options.circuitBreaker) : undefined;
  }

  /** Whether the circuit breaker is open now. */
  circuitOpen(): boolean {
    return this.#breaker?.isOpen(this.#options.endpoint.now()) ?? false;
  }

  /** One attempt, without retries: authenticate, POST, parse. */
  async attempt(parameters: TokenRequestParameters, signal?: AbortSignal, extraFields: Record<string, string> = {}): Promise<OAuthToken> {
    const { endpoint, clientAuth } = this.#options;
    const auth = clientAuthParts(clientAuth, endpoint.tokenUrl, endpoint.now());
    const form = tokenRequestForm(parameters, { ...extraFields, ...auth.form });
    this.#options.counters.tokenRequests++;
    return (await observeTokenRequest(this.#options.events, endpoint.tokenUrl, () => requestToken(endpoint, form, auth.headers, signal))).result;
  }

  /**
   * Fetches a token, retrying retryable failures. Throws the failure itself when it is not retryable
   * (e.g. `invalid_client`), {@link RetriesExhaustedError} when the budget ran out, and {@link CircuitOpenError}
   * while the circuit is open.
   */
  async fetch(parameters: TokenRequestParameters, signal?: AbortSignal, extraFields?: Record<string, string>): Promise<OAuthToken> {
    const { retry, endpoint, events } = this.#options;
    const started = Date.now();
    let attempt = 0;
    for (;;) {
      this.#checkCircuit();
      attempt++;
      try {
        const token = await this.attempt(parameters, signal, extraFields);
        if (this.#breaker?.success()) events.emit('circuitClosed', {});
        return token;
      } catch (error) {
        if (error instanceof AbortError || signal?.aborted) {
          this.#breaker?.abandon();
          throw error;
        }
        if (!isServerFault(error)) {
          if (this.#breaker?.success()) events.emit('circuitClosed', {});
          throw error;
        }
        const openUntil = this.#breaker?.failure(endpoint.now(), error);
        if (openUntil !== undefined) {
          events.emit('circuitOpen', { failures: this.#breaker!.failures, retryAt: openUntil, error: error as Error });
          throw new CircuitOpenError(openUntil, error);
        }
        if (!isRetryable(error)) throw error;
        const retryAfter = retryAfterOf(error, endpoint.now());
        const delay = retryAfter ?? backoffDelay(attempt, retry, this.#options.random);
        const elapsed = Date.now() - started;
        if (attempt >= retry.maxAttempts || (retryAfter !== undefined && retryAfter > retry.maxRetryAfter) || elapsed + delay > retry.maxElapsed) {
          throw retry.maxAttempts <= 1 ? error : new RetriesExhaustedError(attempt, error);
        }
        this.#options.counters.retries++;
        events.emit('requestRetried', { attempt, delayMs: delay, error: error as Error });
        try {
          await sleep(delay, undefined, { signal });
        } catch {
          throw new AbortError('The token request was aborted while waiting to retry', { cause: signal?.reason });
        }
      }
    }
  }

  #checkCircuit(): void {
    const decision = this.#breaker?.check(this.#options.endpoint.now());
    if (decision && !decision.allowed) {
      throw new CircuitOpenError(decision.retryAt, decision.cause);
    }
  }
}
