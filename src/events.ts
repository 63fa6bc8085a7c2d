/**
 * Typed lifecycle events and counters. Nothing here ever carries a secret or an access token:
 * tokens are described by their cache key hash, scope and expiry only.
 */

/** What an event says about a token: never the token itself. */
export interface TokenInfo {
  /** Short non-reversible hash of the cache key the token belongs to. */
  key: string;
  /** Granted scope, when known. */
  scope: string | undefined;
  /** Expiry in unix seconds, when known. */
  expiry: number | undefined;
  /** Where the token came from. */
  source: 'endpoint' | 'provider' | 'store' | 'preset' | 'manual';
}

/** The events a Client emits, by name. */
export interface ClientEvents {
  /** A token was fetched when none was usable (callers waited for it). */
  tokenFetched: TokenInfo;
  /** A stale token was replaced by a background refresh (callers did not wait). */
  tokenRefreshed: TokenInfo;
  /** A background refresh failed; the current token keeps being served until it expires. */
  refreshFailed: { key: string; error: Error; attempt: number; nextAttemptAt: number };
  /** A token was dropped because a resource answered 401 to it, or by `invalidate()`. */
  tokenInvalidated: { key: string; reason: 'unauthorized' | 'manual' };
  /** A token request is retried after a retryable failure. */
  requestRetried: { attempt: number; delayMs: number; error: Error };
  /** An API request was retried once with a new token after a 401. */
  unauthorizedRetried: { key: string };
  /** The token endpoint failed repeatedly; calls fail fast until `retryAt`. */
  circuitOpen: { failures: number; retryAt: number; error: Error };
  /** The token endpoint answered again; the circuit is closed. */
  circuitClosed: Record<string, never>;
  /** A request had to wait for a token fetch (no usable token was cached). */
  tokenWait: { key: string };
  /** A user callback (`oAuthOnTokenUpdate`) or an event listener threw; the request went on. */
  callbackError: { callback: string; error: unknown };
  /** The token store failed or timed out; the Client went on with its in-process cache. */
  storeError: { operation: string; error: Error };
}

/** The name of one {@link ClientEvents} event. */
export type ClientEventName = keyof ClientEvents;

/** A listener of one event. It may be async: a throw or a rejection is reported as `callbackError`. */
export type Listener<K extends ClientEventName> = (event: ClientEvents[K]) => void;

/** A small synchronous typed event emitter; a listener that throws is reported, never propagated. */
export class EventHub {
  readonly #listeners = new Map<ClientEventName, Set<(event: never) => void>>();
  readonly #scrub: (<T>(value: T) => T) | undefined;

  /** `scrub` removes credentials from each payload (in place) before any listener sees it. */
  constructor(scrub?: <T>(value: T) => T) {
    this.#scrub = scrub;
  }

  /** Subscribes to `name`; returns a function that unsubscribes. */
  on<K extends ClientEventName>(name: K, listener: Listener<K>): () => void {
    let set = this.#listeners.get(name);
    if (!set) this.#listeners.set(name, (set = new Set()));
    set.add(listener as (event: never) => void);
    return () => {
      set.delete(listener as (event: never) => void);
      if (set.size === 0) this.#listeners.delete(name);
    };
  }

  /** True when somebody listens to `name`, so callers can skip building an event nobody reads. */
  has(name: ClientEventName): boolean {
    return this.#listeners.has(name);
  }

  /** Calls every listener of `name` with `event`. */
  emit<K extends ClientEventName>(name: K, event: ClientEvents[K]): void {
    const set = this.#listeners.get(name);
    if (!set) return;
    if (this.#scrub) this.#scrub(event);
    for (const listener of set) {
      try {
        const result: unknown = (listener as Listener<K>)(event);
        // An async listener rejects instead of throwing; unhandled, that rejection would end the process.
        if (typeof (result as PromiseLike<unknown> | undefined)?.then === 'function') {
          (result as PromiseLike<unknown>).then(undefined, (error: unknown) => this.#listenerFailed(name, error));
        }
      } catch (error) {
        this.#listenerFailed(name, error);
      }
    }
  }

  #listenerFailed(name: ClientEventName, error: unknown): void {
    if (name === 'callbackError') process.emitWarning(`client-credentials: a callbackError listener threw: ${(error as Error)?.name ?? 'error'}`);
    else this.emit('callbackError', { callback: `listener of ${name}`, error });
  }
}

/** Counters of a Client since it was created; see `client.stats()`. */
export interface ClientStats {
  /** Token requests sent to the token endpoint (every attempt, including retries). */
  tokenRequests: number;
  /** Tokens obtained: from the endpoint, the provider or the store. */
  tokensObtained: number;
  /** Authenticated requests served from the in-process cache without waiting. */
  cacheHits: number;
  /** Authenticated requests that had to wait for a token fetch. */
  waits: number;
  /** Background refreshes started in the stale window. */
  backgroundRefreshes: number;
  /** Token acquisitions that failed (after retries). */
  failures: number;
  /** Token request retries. */
  retries: number;
  /** Tokens dropped after a 401 or `invalidate()`. */
  invalidations: number;
  /** API requests retried after a 401. */
  unauthorizedRetries: number;
  /** Tokens read from the token store. */
  storeHits: number;
  /** Token store operations that failed or timed out. */
  storeErrors: number;
  /** Tokens currently cached in process. */
  cachedTokens: number;
  /** Whether the circuit breaker is open now. */
  circuitOpen: boolean;
}

/** A fresh set of zeroed counters. */
export function emptyStats(): Omit<ClientStats, 'cachedTokens' | 'circuitOpen'> {
  return { tokenRequests: 0, tokensObtained: 0, cacheHits: 0, waits: 0, backgroundRefreshes: 0, failures: 0, retries: 0, invalidations: 0, unauthorizedRetries: 0, storeHits: 0, storeErrors: 0 };
}
