/**
 * The token lifecycle engine. Per cache key it holds one token and moves it through three states:
 *
 * - fresh (before `refreshAt`): served from memory;
 * - stale (until `expiresAt`): served, and exactly one background refresh starts (stale-while-revalidate);
 *   when that refresh fails the token keeps being served (stale-if-error) and the refresh is retried with backoff;
 * - expired: callers wait on one shared fetch (single flight).
 *
 * A fetch goes to the token store first (when there is one), then to `oAuthTokenProvider` or the token endpoint,
 * with a lease in the store so a fleet makes one request. A generation number guards invalidation: a fetch that
 * began before a token was invalidated never installs its result.
 */
import { createHash } from 'node:crypto';
import { AbortError, CallbackError, ClientCredentialsError, TokenExpiredError } from '../errors.js';
import type { EventHub, TokenInfo } from '../events.js';
import { normalizeToken, tokenState, tokenTimes, type ExpiryPolicy, type LifetimePolicy, type OAuthToken, type OAuthTokenInput } from '../token.js';
import type { GuardedStore } from '../stores/guardedStore.js';
import type { OAuthOnTokenUpdate, OAuthTokenProvider } from '../configuration.js';
import { backoffDelay } from './resilience.js';
import type { TokenRequestParameters } from './tokenEndpoint.js';

/** Mutable counters the lifecycle reports into. */
export interface LifecycleCounters {
  tokensObtained: number;
  cacheHits: number;
  waits: number;
  backgroundRefreshes: number;
  failures: number;
  invalidations: number;
  storeHits: number;
}

/** What the lifecycle needs from its Client. */
export interface LifecycleOptions {
  now: () => number;
  expiry: ExpiryPolicy;
  lifetime: LifetimePolicy;
  maxEntries: number;
  events: EventHub;
  counters: LifecycleCounters;
  /** Fetches a new token from the token endpoint (with retries). */
  fetch: (parameters: TokenRequestParameters, signal: AbortSignal) => Promise<OAuthToken>;
  provider: OAuthTokenProvider | undefined;
  /** The `authManager` argument handed to the provider. */
  providerManager: unknown;
  onTokenUpdate: OAuthOnTokenUpdate | undefined;
  store: GuardedStore | undefined;
  /** Lease time in ms for fleet single flight; the holder renews it every third of it while its fetch runs. */
  leaseTtl: number;
  /** How long to wait for another process's fetch before fetching ourselves, in ms. */
  leaseWait: number;
  /** How often a waiting process looks again (store, then lease), in ms; a pub/sub store wakes it earlier. Default 50. */
  leasePoll?: number;
  /** Backoff of background refresh retries, in ms. */
  refreshBackoff: { baseDelay: number; maxDelay: number };
}

/** The identity of one cached token: the parameters that make tokens differ. */
export interface TokenKey {
  /**
   * The in-process cache key: sorted scopes, sorted resources, audience and sorted extra parameters. A Client's cache
   * belongs to one token URL and client id, so they are not repeated in it; no secret.
   */
  readonly id: string;
  /** SHA-256 of the full key (token URL, client id and `id`'s parts), base64url: what stores and events see. */
  readonly hash: string;
  /** The token request parameters of this key (scopes in sorted order). */
  readonly parameters: TokenRequestParameters;
}

interface Flight {
  promise: Promise<OAuthToken>;
  controller: AbortController;
  waiters: number;
  background: boolean;
  settled: boolean;
}

interface Entry {
  key: TokenKey;
  token: OAuthToken | undefined;
  /** When the token turns stale (ms of the injected clock); -Infinity without a token. */
  refreshAt: number;
  /** When the token expires (expiry − clamped skew); -Infinity without a token. */
  expiresAt: number;
  generation: number;
  flight: Flight | undefined;
  refreshFailures: number;
  nextRefreshAt: number;
  /** Recently invalidated access tokens, never to be taken back from a store or a provider's refresh (allocated on first use). */
  revoked: string[] | undefined;
}


/** The token URL and client id a cache key belongs to; shared by every key of a Client. */
interface KeyOwner {
  readonly tokenUrl: string;
  readonly clientId: string;
}

/**
 * A cache key, kept small because thousands may be cached: one canonical string and a shared owner. The request
 * parameters are read back from the string when a fetch needs them, and the hash is computed on first use (stores
 * and events need it; a Client without either never does).
 */
class CacheKey implements TokenKey {
  #hash: string | undefined;
  constructor(
    readonly id: string,
    readonly owner: KeyOwner,
  ) {}

  get parameters(): TokenRequestParameters {
    const [scopes, resource, audience, extra] = JSON.parse(this.id) as [string, string[], string | null, [string, string][]];
    return { scopes: scopes === '' ? [] : scopes.split(' '), resource, audience: audience ?? undefined, extra: Object.fromEntries(extra) };
  }

  get hash(): string {
    return (this.#hash ??= createHash('sha256').update(JSON.stringify([this.owner.tokenUrl, this.owner.clientId, this.id])).digest('base64url'));
  }
}

const owners = new Map<string, KeyOwner>();

/** Builds the cache key of a token from its request parameters. */
export function tokenKey(tokenUrl: string, clientId: string, parameters: TokenRequestParameters): TokenKey {
  const extra = Object.keys(parameters.extra).sort().map((k) => [k, parameters.extra[k]]);
  const scopes = [...new Set(parameters.scopes)].sort().join(' ');
  const id = JSON.stringify([scopes, [...new Set(parameters.resource)].sort(), parameters.audience ?? null, extra]);
  // V8 returns a long JSON.stringify result as a rope of parts; reading a character flattens it, so it is stored once.
  id.charCodeAt(0);
  const ownerId = `${tokenUrl}\u0000${clientId}`;
  let owner = owners.get(ownerId);
  if (!owner) {
    if (owners.size >= 256) owners.clear();
    owners.set(ownerId, (owner = { tokenUrl, clientId }));
  }
  return new CacheKey(id, owner);
}

/** The token lifecycle engine; see the module comment. */
export class TokenLifecycle {
  readonly #entries = new Map<string, Entry>();
  readonly #o: LifecycleOptions;
  #lastId: string | undefined;
  #closed = false;

  constructor(options: LifecycleOptions) {
    this.#o = options;
  }

  /** Number of tokens cached. */
  get size(): number {
    return this.#entries.size;
  }

  #entry(key: TokenKey): Entry {
    let entry = this.#entries.get(key.id);
    if (entry) {
      if (this.#lastId !== key.id && this.#entries.size > 1) {
        this.#entries.delete(key.id);
        this.#entries.set(key.id, entry);
      }
    } else {
      if (this.#entries.size >= this.#o.maxEntries) this.#evict();
      entry = { key, token: undefined, refreshAt: -Infinity, expiresAt: -Infinity, generation: 0, flight: undefined, refreshFailures: 0, nextRefreshAt: 0, revoked: undefined };
      this.#entries.set(key.id, entry);
    }
    this.#lastId = key.id;
    return entry;
  }

  #evict(): void {
    for (const [id, entry] of this.#entries) {
      if (!entry.flight) {
        this.#entries.delete(id);
        return;
      }
    }
  }

  /**
   * The token to send now, without waiting: the cached token when fresh or stale (a stale one starts a background
   * refresh), else undefined and the caller must `wait()`. This is the request hot path.
   */
  peek(key: TokenKey): OAuthToken | undefined {
    const entry = this.#entry(key);
    const token = entry.token;
    if (token === undefined) return undefined;
    const now = this.#o.now();
    if (now < entry.refreshAt) {
      this.#o.counters.cacheHits++;
      return token;
    }
    if (now < entry.expiresAt) {
      this.#o.counters.cacheHits++;
      if (!entry.flight && now >= entry.nextRefreshAt && !this.#closed) this.#startBackground(entry);
      return token;
    }
    return undefined;
  }

  /** A usable token, waiting on the shared fetch when there is none. `signal` abandons the wait. */
  async get(key: TokenKey, signal?: AbortSignal): Promise<OAuthToken> {
    const token = this.peek(key);
    if (token) return token;
    return this.wait(key, signal);
  }

  /** Waits on the shared fetch of `key` (starting it when none runs). */
  wait(key: TokenKey, signal?: AbortSignal): Promise<OAuthToken> {
    if (this.#closed) return Promise.reject(new AbortError('The Client is closed: it fetches no more tokens'));
    // Checked before a flight starts: a flight started only to be cancelled would reject with nobody listening.
    if (signal?.aborted) return Promise.reject(new AbortError('The request was aborted before a token was available', { cause: signal.reason }));
    const entry = this.#entry(key);
    this.#o.counters.waits++;
    if (this.#o.events.has('tokenWait')) this.#o.events.emit('tokenWait', { key: key.hash });
    const flight = entry.flight ?? this.#startFlight(entry, false);
    return this.#join(entry, flight, signal);
  }

  /** The cached token of `key` regardless of state, for inspection. */
  current(key: TokenKey): OAuthToken | undefined {
    return this.#entries.get(key.id)?.token;
  }

  /**
   * Drops the token of `key` if it is still `accessToken` (the generation guard: a token already replaced
   * is left alone). Returns whether it dropped it. A fetch in flight from before is detached, so it cannot
   * put the revoked token back.
   */
  invalidate(key: TokenKey, accessToken: string | undefined, reason: 'unauthorized' | 'manual'): boolean {
    const entry = this.#entries.get(key.id);
    if (!entry?.token || (accessToken !== undefined && entry.token.accessToken !== accessToken)) return false;
    const revoked = entry.token.accessToken;
    const list = (entry.revoked ??= []);
    list.push(revoked);
    if (list.length > 4) list.shift();
    entry.token = undefined;
    entry.refreshAt = -Infinity;
    entry.expiresAt = -Infinity;
    entry.generation++;
    entry.flight = undefined;
    entry.refreshFailures = 0;
    entry.nextRefreshAt = 0;
    this.#o.counters.invalidations++;
    this.#o.events.emit('tokenInvalidated', { key: key.hash, reason });
    void this.#o.store?.delete(key.hash, revoked);
    return true;
  }

  /** Installs a token by hand (`updateToken(token)`, a preset `oAuthToken`). */
  set(key: TokenKey, token: OAuthTokenInput, source: 'preset' | 'manual'): OAuthToken {
    const entry = this.#entry(key);
    const normalized = normalizeToken(token, this.#o.now(), this.#o.lifetime, source === 'preset' ? 'oAuthToken' : 'token');
    entry.generation++;
    entry.flight = undefined;
    this.#install(entry, normalized, source, false);
    return normalized;
  }

  /**
   * Stops all token work, for `client.close()`: every fetch in flight is cancelled (a background refresh sleeping
   * before a retry included, so no timer keeps the process alive), no background refresh starts any more, and a
   * caller that would have to wait for a token is rejected with {@link AbortError}. Cached tokens are still served.
   */
  close(): void {
    this.#closed = true;
    for (const entry of this.#entries.values()) {
      const flight = entry.flight;
      if (!flight) continue;
      entry.flight = undefined;
      flight.controller.abort(new AbortError('The Client was closed while a token was being fetched'));
    }
  }

  #join(entry: Entry, flight: Flight, signal: AbortSignal | undefined): Promise<OAuthToken> {
    flight.waiters++;
    if (!signal) return flight.promise;
    if (signal.aborted) {
      this.#leave(entry, flight);
      return Promise.reject(new AbortError('The request was aborted before a token was available', { cause: signal.reason }));
    }
    return new Promise<OAuthToken>((resolve, reject) => {
      const onAbort = () => {
        this.#leave(entry, flight);
        reject(new AbortError('The request was aborted while waiting for a token', { cause: signal.reason }));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      flight.promise.then(
        (token) => {
          signal.removeEventListener('abort', onAbort);
          resolve(token);
        },
        (error: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(error);
        },
      );
    });
  }

  /**
   * A waiter left: when nobody waits on a fetch any more, cancel it, and detach it at once so that a caller arriving
   * before the cancellation has settled starts a new fetch instead of inheriting the abort. This holds for a
   * background refresh that callers joined once the token expired, too: one that hangs (a provider that never
   * settles) must not hold every later caller of its key.
   */
  #leave(entry: Entry, flight: Flight): void {
    flight.waiters--;
    if (flight.waiters <= 0 && !flight.settled) {
      if (entry.flight === flight) entry.flight = undefined;
      flight.controller.abort(new AbortError('Every caller waiting for this token was aborted'));
    }
  }

  #startBackground(entry: Entry): void {
    this.#o.counters.backgroundRefreshes++;
    const flight = this.#startFlight(entry, true);
    flight.promise.catch(() => {});
  }

  #startFlight(entry: Entry, background: boolean): Flight {
    const generation = entry.generation;
    const controller = new AbortController();
    const flight: Flight = { promise: undefined as unknown as Promise<OAuthToken>, controller, waiters: 0, background, settled: false };
    entry.flight = flight;
    flight.promise = this.#acquire(entry, controller.signal).then(
      ({ token, source }) => {
        flight.settled = true;
        if (entry.flight === flight) entry.flight = undefined;
        if (entry.generation !== generation) return token; // invalidated meanwhile: hand it to this flight's waiters only
        if (background && token.accessToken === entry.token?.accessToken) {
          // The provider or store had nothing newer; try again later rather than on every call.
          this.#scheduleRetry(entry);
          return token;
        }
        this.#install(entry, token, source, background);
        return token;
      },
      (error: unknown) => {
        flight.settled = true;
        if (entry.flight === flight) entry.flight = undefined;
        if (!(error instanceof AbortError)) this.#o.counters.failures++;
        if (background && entry.generation === generation && !(error instanceof AbortError)) {
          const attempt = this.#scheduleRetry(entry);
          this.#o.events.emit('refreshFailed', { key: entry.key.hash, error: error as Error, attempt, nextAttemptAt: entry.nextRefreshAt });
        }
        throw error;
      },
    );
    return flight;
  }

  #scheduleRetry(entry: Entry): number {
    entry.refreshFailures++;
    entry.nextRefreshAt = this.#o.now() + Math.max(backoffDelay(entry.refreshFailures, this.#o.refreshBackoff), this.#o.refreshBackoff.baseDelay / 2);
    return entry.refreshFailures;
  }

  #install(entry: Entry, token: OAuthToken, source: TokenInfo['source'], background: boolean): void {
    entry.token = token;
    const times = tokenTimes(token, this.#o.expiry, this.#o.now());
    entry.refreshAt = times.refreshAt;
    entry.expiresAt = times.expiresAt;
    entry.refreshFailures = 0;
    entry.nextRefreshAt = 0;
    this.#o.counters.tokensObtained++;
    const name = background ? 'tokenRefreshed' : 'tokenFetched';
    if (this.#o.events.has(name)) this.#o.events.emit(name, { key: entry.key.hash, scope: token.scope, expiry: token.expiry, source });
    if (source !== 'preset' && this.#o.onTokenUpdate) {
      try {
        const result: unknown = this.#o.onTokenUpdate({ ...token });
        // An async callback (`async (token) => save(token)`) rejects instead of throwing: an unhandled rejection
        // would end the process.
        if (typeof (result as PromiseLike<unknown> | undefined)?.then === 'function') {
          (result as PromiseLike<unknown>).then(undefined, (error: unknown) => this.#callbackFailed(error));
        }
      } catch (error) {
        this.#callbackFailed(error);
      }
    }
  }

  /** Reports an `oAuthOnTokenUpdate` that threw or rejected: as `callbackError`, or a process warning with no listener. */
  #callbackFailed(error: unknown): void {
    if (this.#o.events.has('callbackError')) this.#o.events.emit('callbackError', { callback: 'oAuthOnTokenUpdate', error });
    else process.emitWarning(`client-credentials: oAuthOnTokenUpdate threw (${(error as Error)?.name ?? 'error'}); the request went on`);
  }

  /** Whether a token from a store or provider may be used for `entry` now. */
  #usable(entry: Entry, token: OAuthToken | undefined, now: number): token is OAuthToken {
    if (!token || entry.revoked?.includes(token.accessToken)) return false;
    if (entry.token && token.accessToken === entry.token.accessToken) return false;
    const state = tokenState(tokenTimes(token, this.#o.expiry, now), now);
    return state === 'fresh' || (state === 'stale' && !entry.token);
  }

  async #acquire(entry: Entry, signal: AbortSignal): Promise<{ token: OAuthToken; source: TokenInfo['source'] }> {
    const { store, provider } = this.#o;
    const key = entry.key;
    let stored: OAuthToken | undefined;
    if (store) {
      stored = await store.get(key.hash);
      if (this.#usable(entry, stored, this.#o.now())) return this.#fromStore(stored);
    }
    if (provider) {
      const token = await this.#callProvider(entry, stored);
      if (store) await store.set(key.hash, token, this.#ttl(token));
      return { token, source: 'provider' };
    }
    if (store?.hasLease) {
      const shared = await this.#fleetFetch(entry, signal);
      if (shared) return shared;
    }
    const token = await this.#o.fetch(key.parameters, signal);
    if (store) await store.set(key.hash, token, this.#ttl(token));
    return { token, source: 'endpoint' };
  }

  /**
   * Single flight across processes: take the lease and fetch, or wait for the holder's token; when the holder
   * dies its lease expires and a waiter takes over. Returns undefined when the wait bound passed or the store
   * failed, and the caller then fetches on its own.
   */
  async #fleetFetch(entry: Entry, signal: AbortSignal): Promise<{ token: OAuthToken; source: TokenInfo['source'] } | undefined> {
    const store = this.#o.store!;
    const key = entry.key;
    const deadline = Date.now() + this.#o.leaseWait;
    for (;;) {
      const lease = await store.acquireLease(key.hash, this.#o.leaseTtl);
      if (lease.state === 'unavailable') return undefined;
      if (lease.state === 'held') {
        // Renew the lease while the token request (with its retries) runs: a slow holder keeps it, a dead one
        // loses it within one lease time and a waiter takes over.
        const ttl = this.#o.leaseTtl;
        const renew = setInterval(() => void store.extend(lease.lease, ttl), Math.max(Math.floor(ttl / 3), 1));
        renew.unref();
        try {
          const again = await store.get(key.hash);
          if (this.#usable(entry, again, this.#o.now())) return this.#fromStore(again);
          const token = await this.#o.fetch(key.parameters, signal);
          await store.set(key.hash, token, this.#ttl(token), true);
          return { token, source: 'endpoint' };
        } finally {
          clearInterval(renew);
          // Not awaited: the token is stored (or the fetch failed), and a hanging store must not hold this process's
          // callers for a second store timeout. The release never rejects; if it fails, the lease expires by itself.
          void store.release(lease.lease);
        }
      }
      if (signal.aborted) throw new AbortError('The token fetch was aborted', { cause: signal.reason });
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      await store.waitForToken(key.hash, Math.min(left, this.#o.leasePoll ?? 50));
      const stored = await store.get(key.hash);
      if (this.#usable(entry, stored, this.#o.now())) return this.#fromStore(stored);
    }
  }

  #fromStore(token: OAuthToken): { token: OAuthToken; source: 'store' } {
    this.#o.counters.storeHits++;
    return { token: normalizeToken(token, this.#o.now(), this.#o.lifetime, 'stored token'), source: 'store' };
  }

  async #callProvider(entry: Entry, stored: OAuthToken | undefined): Promise<OAuthToken> {
    let result: unknown;
    try {
      result = await this.#o.provider!(entry.token ?? stored, this.#o.providerManager as never);
    } catch (error) {
      if (error instanceof ClientCredentialsError) throw error;
      throw new CallbackError(`oAuthTokenProvider threw: ${(error as Error)?.message ?? String(error)}`, { cause: error });
    }
    const now = this.#o.now();
    const token = normalizeToken(result, now, this.#o.lifetime, 'value returned by oAuthTokenProvider');
    // In the background too: an expired token must never replace the stale one still being served (stale-if-error).
    if (tokenState(tokenTimes(token, this.#o.expiry, now), now) === 'expired') {
      throw new TokenExpiredError('oAuthTokenProvider returned an expired token: return a valid token or authManager.fetchToken()');
    }
    return token;
  }

  #ttl(token: OAuthToken): number {
    return (token.expiry ?? 0) * 1000 - this.#o.now();
  }
}
