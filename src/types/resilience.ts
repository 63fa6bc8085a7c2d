/** The retry and circuit-breaker options of the token endpoint. Ground floor: imports nothing. */
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

/** How the circuit breaker behaves. */
export interface CircuitBreakerOptions {
  /** Consecutive failed attempts that open the circuit. Default 5. */
  failureThreshold: number;
  /**
   * Longest wait in ms between trial requests while the circuit is open. Trials start 250 ms apart (or this value
   * when smaller) and double up to it, so once the endpoint is back the first caller succeeds within about this
   * long, while an outage costs about one token request per this interval. A server's `Retry-After` makes the wait
   * longer (up to `retry.maxRetryAfter`), never shorter. Default 1,000.
   */
  maxProbeInterval: number;
}
