/**
 * Typed lifecycle events and counters, also published on `node:diagnostics_channel` as
 * `oauth-client-credentials:<event name>` (e.g. `oauth-client-credentials:tokenFetched`) for APM agents. Nothing here ever carries a secret or an access token:
 * tokens are described by their cache key hash, scope and expiry only.
 */

import diagnosticsChannel from 'node:diagnostics_channel';

/** What an event says about a token: never the token itself. */
export interface TokenInfo {
  /** Short non-reversible hash of the cache key the token belongs to. */
  key: string;
  /** Granted scope, when known. */
  scope: string | undefined;
  /** The exact expiry, in ms since the epoch on the Client's clock (before clock skew). */
  expiresAtMs: number;
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
  refreshFailed: { key: string; error: Error; attempt: number; nextAttemptInMs: number };
  /** A token was dropped because a resource answered 401 to it, or by `invalidate()`. */
  tokenInvalidated: { key: string; reason: 'unauthorized' | 'manual' };
  /** A token request is retried after a retryable failure. */
  requestRetried: { attempt: number; delayMs: number; error: Error };
  /** An API request was retried once with a new token after a 401. */
  unauthorizedRetried: { key: string };
  /** The token endpoint failed repeatedly; callers without a usable token fail fast until a trial request in `retryInMs`. */
  circuitOpen: { failures: number; retryInMs: number; error: Error };
  /** The token endpoint answered again; the circuit is closed. */
  circuitClosed: Record<string, never>;
  /** A request had to wait for a token fetch (no usable token was cached). */
  tokenWait: { key: string };
  /** A user callback (`oAuthOnTokenUpdate`) or an event listener threw; the request went on. */
  callbackError: { callback: string; error: unknown };
  /** The token store failed or timed out; the Client went on with its in-process cache. */
  storeError: { operation: string; error: Error };
  /**
   * Automatic `client_secret_basic` learnt which encoding of the id and secret a token endpoint accepts: `raw` for a
   * server that compares the pair as sent (RFC 6749 §2.3.1's encoding was refused), `rfc6749` when it is back to that.
   */
  basicEncodingLearned: { url: string; encoding: 'rfc6749' | 'raw' };
  /** One HTTP request to the token endpoint starts (each attempt, retries included); emitted in the caller's async context. */
  tokenRequestStart: TokenRequestStart;
  /** That request ended: `error` is set when it failed (the response's `statusCode` when there was one). */
  tokenRequestEnd: TokenRequestEnd;
}

/** A token request starts: which one (`id`, unique in the process) and where (the token URL without query). */
export interface TokenRequestStart {
  id: number;
  /** The token endpoint's origin and path: never a query or credentials. */
  url: string;
  method: 'POST';
}

/** A token request ended. */
export interface TokenRequestEnd extends TokenRequestStart {
  /** Milliseconds from start to end (monotonic clock). */
  durationMs: number;
  /** The HTTP status, when a response arrived. */
  statusCode: number | undefined;
  /** Why it failed (a typed error of this library), or undefined on success. */
  error: Error | undefined;
}

/** The prefix of this library's `node:diagnostics_channel` names: `oauth-client-credentials:<event name>`. */
export const DIAGNOSTICS_CHANNEL_PREFIX = 'oauth-client-credentials:';

const channels = new Map<ClientEventName, diagnosticsChannel.Channel>();

/** The diagnostics channel of one event (channels are process-wide, created once per name). */
function channelOf(name: ClientEventName): diagnosticsChannel.Channel {
  let channel = channels.get(name);
  if (!channel) channels.set(name, (channel = diagnosticsChannel.channel(DIAGNOSTICS_CHANNEL_PREFIX + name)));
  return channel;
}

/** The name of one {@link ClientEvents} event. */
export type ClientEventName = keyof ClientEvents;

/** Every event name of {@link ClientEvents}: `client.on` refuses any other (it would never fire). */
export const CLIENT_EVENT_NAMES = {
  tokenFetched: true,
  tokenRefreshed: true,
  refreshFailed: true,
  tokenInvalidated: true,
  requestRetried: true,
  unauthorizedRetried: true,
  circuitOpen: true,
  circuitClosed: true,
  tokenWait: true,
  callbackError: true,
  storeError: true,
  basicEncodingLearned: true,
  tokenRequestStart: true,
  tokenRequestEnd: true,
} as const satisfies Record<ClientEventName, true>;

/** A listener of one event. It may be async: a throw or a rejection is reported as `callbackError`. */
export type Listener<K extends ClientEventName> = (event: ClientEvents[K]) => void;

/** A small synchronous typed event emitter; a listener that throws is reported, never propagated. */
export class EventHub {
  readonly #listeners = new Map<ClientEventName, Set<(event: never) => void>>();
  readonly #scrub: (<T>(value: T) => T) | undefined;

  /** `scrub` removes credentials from each payload (in place) before it is published or any listener sees it. */
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

  /** True when somebody listens to `name` (here or on its diagnostics channel), so callers can skip building an event nobody reads. */
  has(name: ClientEventName): boolean {
    return this.#listeners.has(name) || channelOf(name).hasSubscribers;
  }

  /**
   * Scrubs `event` of credentials, publishes it on the diagnostics channel when that has subscribers, then calls
   * every listener of `name`. Nothing is published before it is scrubbed.
   */
  emit<K extends ClientEventName>(name: K, event: ClientEvents[K]): void {
    const channel = channelOf(name);
    const set = this.#listeners.get(name);
    if (!set && !channel.hasSubscribers) return;
    if (this.#scrub) this.#scrub(event);
    if (channel.hasSubscribers) channel.publish(event);
    if (!set) return;
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
    if (name === 'callbackError') process.emitWarning(`oauth-client-credentials: a callbackError listener threw: ${(error as Error)?.name ?? 'error'}`);
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
