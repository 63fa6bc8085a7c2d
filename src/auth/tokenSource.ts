/**
 * Acquisition: the one function through which every token reaches the cache, from a token store, a fleet lease, the
 * `oAuthTokenProvider` or the token endpoint. One rule for refused tokens: a token the API refused (401) is never
 * taken from any source; when the provider offers only that one, the token endpoint is asked. Every token goes
 * through the one time model ({@link recordFromInput}), so a stored or provided value gets the same validation and
 * clamps as a fresh one.
 */
import { AbortError, CallbackError, ClientCredentialsError, TimeoutError, TokenExpiredError, TokenStoreError } from '../errors.js';
import type { OAuthTokenProvider } from '../types/options.js';
import type { GuardedStore } from '../stores/guardedStore.js';
import type { OAuthToken } from '../token.js';
import type { ClientCredentialsAuthManager } from '../types/authManager.js';
import type { TokenKey } from './tokenKey.js';
import { ATTEMPT_INTERVAL } from './resilience.js';
import { assertUsableLifetime, recordFromInput, recordState, type TimePolicy, type TokenRecord } from './tokenRecord.js';

/** Counters the source reports into. */
export interface SourceCounters {
  storeHits: number;
}

/** What acquisition needs from its Client. */
export interface TokenSourceOptions {
  /** The Client's clock, ms since the epoch. */
  now: () => number;
  /** A monotonic clock in ms, for waits. */
  monotonic: () => number;
  policy: TimePolicy;
  counters: SourceCounters;
  /** Fetches a token from the token endpoint (with retries unless `background`). */
  fetch: (key: TokenKey, signal: AbortSignal, background: boolean) => Promise<OAuthToken>;
  provider: OAuthTokenProvider | undefined;
  /** The `authManager` handed to the provider, bound to the key's selection. */
  managerFor: (key: TokenKey) => ClientCredentialsAuthManager;
  /** Whether the token endpoint can be asked (a token URL and credentials). */
  canFetch: boolean;
  store: GuardedStore | undefined;
  /** Total time in ms a token request (or a provider call) may take. */
  timeout: number;
  /** Lease time in ms for fleet single flight; the holder renews it every third of it while its fetch runs. */
  leaseTtl: number;
  /** How long to wait for another process's fetch before fetching ourselves, in ms. */
  leaseWait: number;
  /** How often a waiting process looks again (store, then lease), in ms; a pub/sub store wakes it earlier. */
  leasePoll: number;
}

/** One acquisition. */
export interface AcquireRequest {
  key: TokenKey;
  /** Cancels it (only `client.close()` does). */
  signal: AbortSignal;
  /** A background refresh: one attempt at the endpoint, paced by the lifecycle. */
  background: boolean;
  /** The token cached now, if any: a store or provider must offer a different one. */
  current: OAuthToken | undefined;
  /**
   * A store that cannot take a lease postpones this acquisition (a background refresh with time to spare) rather than
   * have this process fetch on its own; see {@link TokenSource.acquire}.
   */
  postpone?: boolean;
  /** Whether the API refused this access token. */
  refused: (accessToken: string) => boolean;
}

/** Acquires tokens; see the module comment. */
export class TokenSource {
  readonly #o: TokenSourceOptions;

  constructor(options: TokenSourceOptions) {
    this.#o = options;
  }

  /** A new token for `request.key`, from the first source that has a usable one. */
  async acquire(request: AcquireRequest): Promise<TokenRecord> {
    const { store, provider } = this.#o;
    const hash = request.key.hash;
    let stored: TokenRecord | undefined;
    if (store) {
      stored = this.#read(await store.get(hash));
      if (this.#usable(stored, request)) return this.#fromStore(stored);
    }
    if (provider) {
      const record = await this.#callProvider(request, stored);
      if (!request.refused(record.token.accessToken)) {
        if (store) await store.set(hash, forStore(record), this.#ttl(record));
        return record;
      }
      // The provider offered the token the API refused (typically the saved copy): the endpoint must give a new one.
      if (!this.#o.canFetch) throw new TokenExpiredError('oAuthTokenProvider returned the token the API refused, and the Client cannot fetch another: set `tokenUrl` and a client secret (or key)');
    }
    if (store?.hasLease) {
      const shared = await this.#fleetFetch(request);
      if (shared) return shared;
    }
    const record = await this.#fromEndpoint(request);
    if (store) await store.set(hash, forStore(record), this.#ttl(record));
    return record;
  }

  async #fromEndpoint(request: AcquireRequest): Promise<TokenRecord> {
    const token = await this.#o.fetch(request.key, request.signal, request.background);
    return recordFromInput(token, this.#o.now(), this.#o.policy, 'endpoint', 'token response');
  }

  /**
   * Single flight across processes: take the lease and fetch, or wait for the holder's token; when the holder
   * dies its lease expires and a waiter takes over. Returns undefined when the wait bound passed or the store
   * failed, and the caller then fetches on its own.
   */
  async #fleetFetch(request: AcquireRequest): Promise<TokenRecord | undefined> {
    const store = this.#o.store!;
    const hash = request.key.hash;
    const { monotonic, leaseTtl } = this.#o;
    const deadline = monotonic() + this.#o.leaseWait;
    for (;;) {
      const lease = await store.acquireLease(hash, leaseTtl);
      if (lease.state === 'unavailable') {
        // The store cannot coordinate the fleet right now (a Redis restart, a back-off). While the token has time to
        // spare, a background refresh waits for it rather than have every process fetch at once; late in the stale
        // window (the store may be down or hanging for long) or once the token has expired, this process fetches on
        // its own, so that callers never wait for a store at the expiry.
        if (request.postpone) {
          throw new TokenStoreError('acquireLease', 'the token store is unavailable: the background refresh is postponed while the current token is served');
        }
        return undefined;
      }
      if (lease.state === 'held') {
        // Renew the lease while the token request (with its retries) runs: a slow holder keeps it, a dead one
        // loses it within one lease time and a waiter takes over.
        const renew = setInterval(() => void store.extend(lease.lease, leaseTtl), Math.max(Math.floor(leaseTtl / 3), 1));
        renew.unref();
        const started = monotonic();
        let failed = true;
        try {
          const again = this.#read(await store.get(hash));
          if (this.#usable(again, request)) {
            failed = false;
            return this.#fromStore(again);
          }
          const record = await this.#fromEndpoint(request);
          failed = false;
          await store.set(hash, forStore(record), this.#ttl(record), true);
          return record;
        } finally {
          clearInterval(renew);
          // Not awaited: the token is stored (or the fetch failed), and a hanging store must not hold this process's
          // callers for a second store timeout. The release never rejects; if it fails, the lease expires by itself.
          // After a failure the lease is kept until a second after the attempt started: the fleet's pace, about one
          // token request per second per key however many processes are failing (the next holder takes it then).
          const keep = ATTEMPT_INTERVAL - (monotonic() - started);
          if (failed && keep > 0) void store.lapse(lease.lease, keep);
          else void store.release(lease.lease);
        }
      }
      if (request.signal.aborted) throw new AbortError('The token fetch was aborted', { cause: request.signal.reason });
      const left = deadline - monotonic();
      if (left <= 0) return undefined;
      await store.waitForToken(hash, Math.min(left, this.#o.leasePoll));
      const stored = this.#read(await store.get(hash));
      if (this.#usable(stored, request)) return this.#fromStore(stored);
    }
  }

  /** A stored value as a record, through the same validation and clamps as any token; undefined when unusable. */
  #read(value: OAuthToken | undefined): TokenRecord | undefined {
    if (value === undefined) return undefined;
    try {
      return recordFromInput(value, this.#o.now(), this.#o.policy, 'store', 'stored token');
    } catch {
      return undefined;
    }
  }

  /** Whether a token from a store may be taken now: not refused, not the one cached, and fresh (or stale when none is cached). */
  #usable(record: TokenRecord | undefined, request: AcquireRequest): record is TokenRecord {
    if (!record || request.refused(record.token.accessToken)) return false;
    if (request.current && record.token.accessToken === request.current.accessToken) return false;
    const state = recordState(record, this.#o.now());
    return state === 'fresh' || (state === 'stale' && !request.current);
  }

  #fromStore(record: TokenRecord): TokenRecord {
    this.#o.counters.storeHits++;
    return record;
  }

  /** Calls the provider with the selection's last token and a manager bound to the selection, within the token request timeout. */
  async #callProvider(request: AcquireRequest, stored: TokenRecord | undefined): Promise<TokenRecord> {
    const last = request.current ?? (stored && !request.refused(stored.token.accessToken) ? stored.token : undefined);
    let result: unknown;
    let timer: NodeJS.Timeout | undefined;
    try {
      const call = Promise.resolve().then(() => this.#o.provider!(last === undefined ? undefined : { ...last }, this.#o.managerFor(request.key)));
      const limit = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new TimeoutError(`oAuthTokenProvider did not settle within ${this.#o.timeout} ms`, this.#o.timeout)), this.#o.timeout);
        timer.unref();
      });
      const aborted = new Promise<never>((_, reject) => {
        if (request.signal.aborted) reject(request.signal.reason);
        request.signal.addEventListener('abort', () => reject(request.signal.reason), { once: true });
      });
      result = await Promise.race([call, limit, aborted]);
    } catch (error) {
      if (error instanceof ClientCredentialsError) throw error;
      throw new CallbackError(`oAuthTokenProvider threw: ${(error as Error)?.message ?? String(error)}`, { cause: error });
    } finally {
      clearTimeout(timer);
    }
    const now = this.#o.now();
    const record = recordFromInput(result, now, this.#o.policy, 'provider', 'value returned by oAuthTokenProvider');
    // In the background too: an expired token must never replace the stale one still being served (stale-if-error).
    if (recordState(record, now) === 'expired') {
      throw new TokenExpiredError('oAuthTokenProvider returned an expired token: return a valid token or authManager.fetchToken()');
    }
    assertUsableLifetime(record, now, 'The token returned by oAuthTokenProvider');
    return record;
  }

  #ttl(record: TokenRecord): number {
    return record.expiryMs - this.#o.now();
  }
}

/**
 * The token as a store keeps it: `expiry` with its milliseconds (a fraction of a second), so that another process
 * reading it takes no decision on a rounded value (a whole-second expiry makes a short token look stale up to a second
 * early, and a fleet would refresh it twice). Reading it back gives the whole-second `expiry` of the public token.
 */
function forStore(record: TokenRecord): OAuthToken {
  return { ...record.token, expiry: record.expiryMs / 1000 };
}
