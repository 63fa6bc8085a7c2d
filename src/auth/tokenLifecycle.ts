/**
 * The token lifecycle: per cache key one token, moved through three states, and one shared fetch at a time.
 *
 * - fresh (before `staleAtMs`): served from memory;
 * - stale (until `expiresAtMs`): served, and exactly one background refresh starts (stale-while-revalidate); when it
 *   fails the token keeps being served (stale-if-error) and the refresh is tried again, paced against the time left;
 * - expired, or none: callers wait on one shared fetch (single flight).
 *
 * Guarantee (with the default stale point, the middle of the usable lifetime): a token-endpoint outage of any shape
 * (errors, resets, refused connections, requests never answered) shorter than half a token's lifetime, starting at any
 * moment of the token's life, fails no request: the token being served outlives it, a background attempt is bounded by
 * the time the token has left and paced about one a second per key, and a caller with no usable token is never held
 * behind an attempt that does not answer (its own fetch goes out beside it after the hedge delay). See
 * docs/resilience.md for the margin and its proof.
 *
 * Rules of the shared fetch: callers that give up (signal, timeout) leave it running, each attempt bounded by the token
 * request timeout, and later callers get its token; of two flights racing for a key, the first answer wins and the
 * other's is never installed; only {@link TokenLifecycle.close} cancels it, and after close nothing is installed and no
 * callback fires. A token the API refused is never installed again, from any source (refusals are remembered by value,
 * bounded, apart from the LRU of entries); an endpoint that hands a refused token back is not asked again for a while
 * ({@link TokenLifecycle.refuse}). Acquisition
 * itself (store, lease, provider, endpoint) is {@link TokenSource}'s.
 */
import { AbortError, TimeoutError } from '../errors.js';
import type { EventHub } from '../events.js';
import type { OAuthOnTokenUpdate } from '../types/options.js';
import type { GuardedStore } from '../stores/guardedStore.js';
import type { OAuthToken, OAuthTokenInput } from '../token.js';
import { backgroundAttemptBound, DEFAULT_RETRY, MAX_HEDGE_DELAY, nextBackgroundAttempt, retryAfterOf } from './resilience.js';
import { TokenCache } from './tokenCache.js';
import type { TokenKey } from './tokenKey.js';
import { recordFromInput, type TimePolicy, type TokenRecord } from './tokenRecord.js';
import type { TokenSource } from './tokenSource.js';

/** Mutable counters the lifecycle reports into. */
export interface LifecycleCounters {
  tokensObtained: number;
  cacheHits: number;
  waits: number;
  backgroundRefreshes: number;
  failures: number;
  invalidations: number;
}

/** What the lifecycle needs from its Client. */
export interface LifecycleOptions {
  /** The Client's clock, ms since the epoch. */
  now: () => number;
  /** A monotonic clock in ms. */
  monotonic: () => number;
  policy: TimePolicy;
  maxEntries: number;
  events: EventHub;
  counters: LifecycleCounters;
  source: TokenSource;
  onTokenUpdate: OAuthOnTokenUpdate | undefined;
  /** Told of every token installed, whatever its source, before anything else (the Client's redactor learns it). */
  learn?: (token: OAuthToken) => void;
  store: GuardedStore | undefined;
  /** Jitter source for background retries; default Math.random. */
  random?: () => number;
  /**
   * How long (ms) a token request may go unanswered before another goes out (the fetcher's adaptive hedge delay,
   * at most 1 s); default 1 s.
   */
  hedgeDelay?: () => number;
  /** The bound of one token request (`tokenRequestTimeout`): a background attempt's bound grows no further; default none. */
  attemptTimeout?: number;
}

/** The result of {@link TokenLifecycle.refuse}. */
export type RefuseOutcome = 'refused' | 'replaced' | 'throttled';

/** A key whose new token is refused too within this many ms is not re-fetched again: the route, not the token, is at fault. */
const REFUSAL_REFETCH_INTERVAL = 5_000;
/**
 * Refused access tokens remembered, by value, for the whole lifecycle (not per cache entry: an entry evicted from the
 * LRU and created again must not take a refused token back). The oldest refusal is forgotten first.
 */
const REFUSED_KEPT = 1_024;

interface Flight {
  /** Settled by the flight's own acquisition, or by a rival flight of the same key that answered first. */
  promise: Promise<OAuthToken>;
  resolve: (token: OAuthToken) => void;
  reject: (error: unknown) => void;
  settled: boolean;
  /** Monotonic ms when it started. */
  startedAt: number;
  /** The other flight of the key racing this one (a caller's fetch beside a background refresh that did not answer). */
  rival: Flight | undefined;
  /** A rival answered first: this flight's own answer, if any, is dropped (never installed). */
  superseded: boolean;
  /** The bound of a background refresh (the time the token has left, see {@link backgroundAttemptBound}) passed. */
  boundHit: boolean;
  bound: ReturnType<typeof setTimeout> | undefined;
  /** A background refresh (one attempt, paced by the lifecycle). */
  background: boolean;
  controller: AbortController;
  waiters: number;
  /** A referenced timer that keeps the process alive while somebody waits (retry sleeps are unreferenced). */
  hold: ReturnType<typeof setInterval> | undefined;
}

interface Entry {
  readonly key: TokenKey;
  record: TokenRecord | undefined;
  /** Bumped by a manual `set`: a fetch begun before it hands its token to its own waiters but does not install it. */
  generation: number;
  flight: Flight | undefined;
  refreshFailures: number;
  /** Earliest moment (Client clock, ms) of the next background refresh. */
  nextRefreshAt: number;
  /** When (Client clock, ms) the last background refresh started, for the per-key pace. */
  lastAttemptAt: number;
  /** Monotonic ms of the last 401 that dropped this key's token. */
  lastRefusalAt: number;
  /**
   * A refused token the token endpoint handed back when asked again (a caching identity provider or gateway hands out
   * the same token until it expires), with the monotonic ms it did: for {@link REFUSAL_REFETCH_INTERVAL} callers get it
   * without a token request, and its 401 reaches them (`'throttled'`). Never installed.
   */
  insisted: { record: TokenRecord; at: number } | undefined;
}

/** The token lifecycle engine; see the module comment. */
export class TokenLifecycle {
  readonly #o: LifecycleOptions;
  readonly #cache: TokenCache<Entry>;
  /** Every fetch running, detached ones included, so that `close()` reaches them all. */
  readonly #flights = new Set<Flight>();
  /** Access tokens the API refused, never to be installed again, oldest refusal first; bounded by {@link REFUSED_KEPT}. */
  readonly #refusals = new Set<string>();
  /** Aborted by {@link TokenLifecycle.close}. */
  readonly #life = new AbortController();
  #closed = false;

  constructor(options: LifecycleOptions) {
    this.#o = options;
    this.#cache = new TokenCache<Entry>(
      options.maxEntries,
      (key) => ({ key, record: undefined, generation: 0, flight: undefined, refreshFailures: 0, nextRefreshAt: 0, lastAttemptAt: -Infinity, lastRefusalAt: -Infinity, insisted: undefined }),
      (entry) => entry.flight !== undefined,
      // A selection whose fetch failed (nothing cached, nothing insisted on) goes before any cached token.
      (entry) => entry.record === undefined && entry.insisted === undefined,
    );
  }

  /** Aborted by {@link TokenLifecycle.close}: token work begun outside the lifecycle (a provider's `fetchToken()`) stops with it. */
  get signal(): AbortSignal {
    return this.#life.signal;
  }

  /** Number of tokens cached. */
  get size(): number {
    return this.#cache.size;
  }

  /**
   * The token to send now, without waiting: the cached token when fresh or stale (a stale one starts a background
   * refresh), else undefined and the caller must `wait()`. This is the request hot path.
   */
  peek(key: TokenKey): OAuthToken | undefined {
    const entry = this.#cache.get(key);
    if (entry === undefined) return undefined;
    const record = entry.record;
    if (record === undefined) return undefined;
    const now = this.#o.now();
    if (now < record.staleAtMs) {
      this.#o.counters.cacheHits++;
      return record.token;
    }
    if (now < record.expiresAtMs) {
      this.#o.counters.cacheHits++;
      if (!entry.flight && now >= entry.nextRefreshAt && !this.#closed) this.#startBackground(entry);
      return record.token;
    }
    return undefined;
  }

  /** A usable token, waiting on the shared fetch when there is none. `signal` abandons the wait, not the fetch. */
  async get(key: TokenKey, signal?: AbortSignal): Promise<OAuthToken> {
    const token = this.peek(key);
    if (token) return token;
    return this.wait(key, signal);
  }

  /** Waits on the shared fetch of `key`, starting it when none runs. `signal` abandons the wait, not the fetch. */
  wait(key: TokenKey, signal?: AbortSignal): Promise<OAuthToken> {
    if (this.#closed) return Promise.reject(new AbortError('The Client is closed: it fetches no more tokens'));
    if (signal?.aborted) return Promise.reject(new AbortError('The request was aborted before a token was available', { cause: signal.reason }));
    const entry = this.#cache.entry(key);
    const insisted = entry.flight ? undefined : this.#insisted(entry);
    if (insisted) return Promise.resolve(insisted);
    this.#o.counters.waits++;
    if (this.#o.events.has('tokenWait')) this.#o.events.emit('tokenWait', { key: key.hash });
    const flight = entry.flight ?? this.#startFlight(entry, false);
    if (!flight.background) return this.#join(flight, signal);
    return this.#joinBackground(entry, flight, signal);
  }

  /**
   * A caller with no usable token finds a background refresh running. That refresh is one attempt: the caller joins it,
   * but is never held behind it: when it has not answered within the hedge delay (or fails), a fetch of the caller's
   * own kind (retries, hedges, the circuit breaker) goes out beside it, shared with the other callers; the first
   * answer wins and the other flight is dropped without installing anything.
   */
  #joinBackground(entry: Entry, background: Flight, signal: AbortSignal | undefined): Promise<OAuthToken> {
    return new Promise<OAuthToken>((resolve, reject) => {
      let done = false;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const ok = (token: OAuthToken) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve(token);
      };
      const fail = (error: unknown) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        reject(error);
      };
      const foreground = () => {
        clearTimeout(timer);
        if (done) return;
        if (this.#closed) return fail(new AbortError('The Client is closed: it fetches no more tokens'));
        const usable = this.peek(entry.key);
        if (usable) return ok(usable);
        let flight = entry.flight;
        if (!flight || flight.background) {
          const rival = flight;
          flight = this.#startFlight(entry, false);
          if (rival && !rival.settled) {
            flight.rival = rival;
            rival.rival = flight;
          }
        }
        this.#join(flight, signal).then(ok, fail);
      };
      this.#join(background, signal).then(ok, (error: unknown) => {
        if (error instanceof AbortError && signal?.aborted) return fail(error);
        foreground();
      });
      const hedgeIn = Math.max(background.startedAt + (this.#o.hedgeDelay?.() ?? MAX_HEDGE_DELAY) - this.#o.monotonic(), 0);
      timer = setTimeout(foreground, hedgeIn);
      timer.unref();
    });
  }

  /** The cached token of `key` regardless of state, for inspection. */
  current(key: TokenKey): OAuthToken | undefined {
    return this.#cache.find(key)?.record?.token;
  }

  /**
   * Drops the token of `key` (only when it is still `accessToken`, if given) and never takes it back from a store or
   * provider. A fetch already running is adopted: callers join it. Returns whether a token was dropped.
   */
  invalidate(key: TokenKey, accessToken: string | undefined, reason: 'unauthorized' | 'manual'): boolean {
    const entry = this.#cache.find(key);
    if (entry && reason === 'manual') entry.insisted = undefined; // asked for a new token: ask the endpoint again
    if (!entry?.record || (accessToken !== undefined && entry.record.token.accessToken !== accessToken)) return false;
    this.#drop(entry, reason);
    return true;
  }

  /**
   * The API answered 401 to `accessToken`: drop it for good, unless it was already replaced (`'replaced'`: retry with
   * the current token) or asking again is known to be useless (`'throttled'`: the 401 reaches the caller without
   * another token request), because this key's previous token was refused moments ago and this one is still fresh
   * (the route refuses every token, so the token is kept), or because the token endpoint handed this refused token
   * back moments ago (a caching identity provider: it would hand it back again).
   */
  refuse(key: TokenKey, accessToken: string): RefuseOutcome {
    const entry = this.#cache.get(key);
    if (!entry?.record || entry.record.token.accessToken !== accessToken) {
      if (entry && this.#insisted(entry)?.accessToken === accessToken) return 'throttled';
      this.#remember(accessToken);
      return 'replaced';
    }
    const now = this.#o.monotonic();
    // Throttled only for a fresh token: one near its expiry may well be refused by an API whose clock is ahead, and
    // is replaced as usual however recent the last refusal was.
    if (now - entry.lastRefusalAt < REFUSAL_REFETCH_INTERVAL && this.#o.now() < entry.record.staleAtMs) return 'throttled';
    entry.lastRefusalAt = now;
    this.#drop(entry, 'unauthorized');
    return 'refused';
  }

  /** Installs a token by hand (`updateToken(token)`, a preset `oAuthToken`). */
  set(key: TokenKey, token: OAuthTokenInput, source: 'preset' | 'manual'): OAuthToken {
    const record = recordFromInput(token, this.#o.now(), this.#o.policy, source, source === 'preset' ? 'oAuthToken' : 'token');
    const entry = this.#cache.entry(key);
    entry.generation++;
    entry.flight = undefined;
    this.#install(entry, record, false);
    this.#cache.trim();
    return record.token;
  }

  /**
   * Stops all token work, for `client.close()`: every fetch running is cancelled (background and detached ones
   * included, so no retry runs and no timer is left), nothing is installed afterwards and no callback fires, and a
   * caller that would have to wait for a token is rejected with {@link AbortError}. Cached tokens are still served.
   */
  close(): void {
    this.#closed = true;
    this.#life.abort(new AbortError('The Client was closed'));
    for (const entry of this.#cache.values()) entry.flight = undefined;
    for (const flight of this.#flights) {
      const error = new AbortError('The Client was closed while a token was being fetched');
      flight.controller.abort(error);
      // Its waiters are rejected now, not when the acquisition notices: a store call that hangs (a paused Redis) would
      // hold them, and the process, for a store timeout or two.
      this.#settle(undefined, flight, undefined, error);
    }
  }

  /** Remembers a refused access token (by value, for every key; the oldest refusal is forgotten first). */
  #remember(accessToken: string): void {
    this.#refusals.delete(accessToken);
    this.#refusals.add(accessToken);
    if (this.#refusals.size > REFUSED_KEPT) this.#refusals.delete(this.#refusals.values().next().value!);
  }

  /** The refused token the endpoint insisted on for `entry`, while it still stands (recent and unexpired). */
  #insisted(entry: Entry): OAuthToken | undefined {
    const insisted = entry.insisted;
    if (insisted === undefined) return undefined;
    if (this.#o.monotonic() - insisted.at < REFUSAL_REFETCH_INTERVAL && this.#o.now() < insisted.record.expiresAtMs) return insisted.record.token;
    entry.insisted = undefined;
    return undefined;
  }

  #drop(entry: Entry, reason: 'unauthorized' | 'manual'): void {
    const dropped = entry.record!.token.accessToken;
    this.#remember(dropped);
    entry.record = undefined;
    entry.refreshFailures = 0;
    entry.nextRefreshAt = 0;
    this.#o.counters.invalidations++;
    this.#o.events.emit('tokenInvalidated', { key: entry.key.hash, reason });
    void this.#o.store?.delete(entry.key.hash, dropped);
  }

  #join(flight: Flight, signal: AbortSignal | undefined): Promise<OAuthToken> {
    this.#enter(flight);
    if (!signal) return flight.promise.finally(() => this.#leave(flight));
    return new Promise<OAuthToken>((resolve, reject) => {
      const onAbort = () => {
        this.#leave(flight);
        reject(new AbortError('The request was aborted while waiting for a token', { cause: signal.reason }));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      flight.promise.then(
        (token) => {
          signal.removeEventListener('abort', onAbort);
          this.#leave(flight);
          resolve(token);
        },
        (error: unknown) => {
          signal.removeEventListener('abort', onAbort);
          this.#leave(flight);
          reject(error);
        },
      );
    });
  }

  #enter(flight: Flight): void {
    if (flight.waiters++ === 0 && this.#flights.has(flight)) flight.hold = setInterval(noop, 1 << 30);
  }

  /** A waiter left (its token arrived, or it gave up): the fetch goes on regardless; only the keep-alive ends. */
  #leave(flight: Flight): void {
    if (--flight.waiters === 0 && flight.hold) {
      clearInterval(flight.hold);
      flight.hold = undefined;
    }
  }

  #startBackground(entry: Entry): void {
    this.#o.counters.backgroundRefreshes++;
    entry.lastAttemptAt = this.#o.now();
    const flight = this.#startFlight(entry, true);
    flight.promise.catch(noop);
    // Bounded by the time the token has left (and by an adaptive multiple of the latency, growing with each failure so
    // that a slow endpoint gets to answer): a request that is never answered neither blocks the key nor keeps the
    // process alive; it counts as a failure and is paced like one.
    const left = (entry.record?.expiresAtMs ?? this.#o.now()) - this.#o.now();
    const ms = backgroundAttemptBound(this.#o.hedgeDelay?.() ?? MAX_HEDGE_DELAY, left, Number.POSITIVE_INFINITY, entry.refreshFailures, this.#o.attemptTimeout);
    flight.bound = setTimeout(() => {
      flight.boundHit = true;
      flight.controller.abort(new TimeoutError(`The background token refresh did not answer within ${Math.round(ms)} ms`, ms));
    }, ms);
    flight.bound.unref();
  }

  #startFlight(entry: Entry, background: boolean): Flight {
    let resolve!: (token: OAuthToken) => void;
    let reject!: (error: unknown) => void;
    const promise = new Promise<OAuthToken>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const flight: Flight = {
      promise, resolve, reject, settled: false, startedAt: this.#o.monotonic(), rival: undefined, superseded: false, boundHit: false, bound: undefined,
      background, controller: new AbortController(), waiters: 0, hold: undefined,
    };
    entry.flight = flight;
    this.#flights.add(flight);
    this.#run(entry, flight, background)
      .then((token) => this.#settle(entry, flight, token, undefined), (error: unknown) => this.#settle(entry, flight, undefined, error))
      .finally(() => {
        this.#flights.delete(flight);
        clearTimeout(flight.bound);
        this.#cache.trim();
      });
    return flight;
  }

  /** Settles `flight` once (its own answer, or a rival's token), and ends its keep-alive. */
  #settle(entry: Entry | undefined, flight: Flight, token: OAuthToken | undefined, error: unknown): void {
    if (flight.settled) return;
    flight.settled = true;
    if (flight.hold) clearInterval(flight.hold);
    flight.hold = undefined;
    if (entry?.flight === flight) entry.flight = undefined;
    if (token) flight.resolve(token);
    else flight.reject(error);
  }

  /** `flight` answered first: its rival is abandoned (its socket closed) and its waiters get this token. */
  #win(entry: Entry, flight: Flight, token: OAuthToken): void {
    const rival = flight.rival;
    if (!rival || rival.settled) return;
    rival.superseded = true;
    rival.controller.abort(new AbortError('A token request of the same key answered first'));
    this.#settle(entry, rival, token, undefined);
  }

  async #run(entry: Entry, flight: Flight, background: boolean): Promise<OAuthToken> {
    const generation = entry.generation;
    const signal = flight.controller.signal;
    const refused = (accessToken: string) => this.#refusals.has(accessToken);
    try {
      for (let round = 0; ; round++) {
        const current = entry.record;
        // A store outage postpones a background refresh in the first three quarters of the stale window only.
        const postpone = background && current !== undefined && this.#o.now() < current.expiresAtMs - (current.expiresAtMs - current.staleAtMs) / 4;
        const record = await this.#o.source.acquire({ key: entry.key, signal, background, current: current?.token, refused, postpone });
        if (this.#closed) throw new AbortError('The Client was closed while a token was being fetched');
        // Late: a rival answered first. Dropped, never installed. (A token that came back although the background bound
        // passed meanwhile, in a slow store write after a timely fetch, is as good as any: it is installed.)
        if (flight.superseded || (signal.aborted && !flight.boundHit)) throw new AbortError('The token arrived after another answer; it is dropped');
        // Detached before anything is announced, so a listener that reacts to the event sees no fetch running.
        if (entry.flight === flight && !refused(record.token.accessToken)) entry.flight = undefined;
        if (entry.generation !== generation) return record.token; // replaced by hand meanwhile: for this fetch's waiters only
        // Refused while it was being acquired: acquire again (the refusal now steers it to the endpoint). An endpoint
        // that answers with the refused token again gets it handed to the waiters, never installed.
        if (refused(record.token.accessToken)) {
          if (round === 0) continue;
          entry.insisted = { record, at: this.#o.monotonic() };
          return record.token;
        }
        if (background && record.token.accessToken === entry.record?.token.accessToken) {
          // The provider or store had nothing newer; try again later rather than on every call.
          this.#scheduleRetry(entry);
          return record.token;
        }
        this.#install(entry, record, background);
        this.#win(entry, flight, record.token);
        return record.token;
      }
    } catch (error) {
      if (entry.flight === flight) entry.flight = undefined;
      const aborted = this.#closed || flight.superseded || ((error instanceof AbortError || signal.aborted) && !flight.boundHit);
      if (!aborted) this.#o.counters.failures++;
      if (background && !aborted && entry.generation === generation) {
        const attempt = this.#scheduleRetry(entry, error);
        this.#o.events.emit('refreshFailed', { key: entry.key.hash, error: error as Error, attempt, nextAttemptInMs: entry.nextRefreshAt - this.#o.now() });
      }
      throw error;
    }
  }

  /**
   * Paces background refreshes of a token still being served ({@link nextBackgroundAttempt}): full jitter over a
   * ceiling that doubles from 1 s to 30 s, never more than a quarter of the time left, never sooner than a second after
   * the last attempt started (about one token request per second per key), and never before the server's
   * `Retry-After` (0 or a past date: no extra wait).
   */
  #scheduleRetry(entry: Entry, error?: unknown): number {
    const failures = ++entry.refreshFailures;
    const now = this.#o.now();
    const left = (entry.record?.expiresAtMs ?? now) - now;
    const retryAfter = retryAfterOf(error, now);
    entry.nextRefreshAt = nextBackgroundAttempt(now, failures, left, entry.lastAttemptAt, retryAfter === undefined ? undefined : Math.min(retryAfter, DEFAULT_RETRY.maxRetryAfter), this.#o.random ?? Math.random);
    return failures;
  }

  #install(entry: Entry, record: TokenRecord, background: boolean): void {
    if (this.#closed) return;
    this.#o.learn?.(record.token);
    entry.record = record;
    entry.insisted = undefined;
    entry.refreshFailures = 0;
    entry.nextRefreshAt = 0;
    this.#o.counters.tokensObtained++;
    const name = background ? 'tokenRefreshed' : 'tokenFetched';
    const source = record.source;
    if (this.#o.events.has(name)) this.#o.events.emit(name, { key: entry.key.hash, scope: record.token.scope, expiresAtMs: record.expiryMs, source });
    if (source !== 'preset' && this.#o.onTokenUpdate) {
      try {
        const result: unknown = this.#o.onTokenUpdate({ ...record.token });
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
    else process.emitWarning(`oauth-client-credentials: oAuthOnTokenUpdate threw (${(error as Error)?.name ?? 'error'}); the request went on`);
  }
}

function noop(): void {}
