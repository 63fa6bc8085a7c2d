/**
 * Wraps a {@link TokenStore} so that it can only help: every operation has a timeout, a failure is reported
 * as a `storeError` event and answered as "nothing there", and after a failure the store is skipped for a
 * short back-off, then tried again (so a restarted Redis is used again without a restart of ours).
 *
 * It also keeps the fleet's single flight sound when the store misbehaves:
 * - lease renewals run even inside the back-off (like `release`), and a renewal that finds the lease gone marks it
 *   lost and reports it (`storeError`, operation `extendLease`);
 * - every `set` is a compare-and-set: it never replaces a stored token that expires later (a holder that lost its
 *   lease, or a `set` that lands after the wrapper gave up on it, cannot overwrite a newer token);
 * - a lease that the store grants after the wrapper gave up on `acquireLease` (timeout) is adopted: renewed until
 *   this process stores its token (that `set` then runs even inside the back-off, since others wait for it) and
 *   released right after, or released at once when the token was already stored;
 * - inside the back-off, one `acquireLease` at a time still reaches the store as a probe, and ends the back-off when
 *   the store answers;
 * - with an {@link EntryAuth}, every entry is signed on `set` and checked on `get`: an entry that fails the check is
 *   ignored, reported and removed.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { MAX_TIMER_MS } from '../defaults.js';
import { TokenStoreError } from '../errors.js';
import type { EventHub } from '../events.js';
import type { OAuthToken } from '../token.js';
import { stripMac, type EntryAuth } from './entryAuth.js';
import { isNewerEntry, isStoredToken, type TokenLease, type TokenStore } from './tokenStore.js';

/** Counters the guard reports into. */
export interface StoreCounters {
  storeErrors: number;
}

/** Options of {@link GuardedStore} beyond the positional ones. */
export interface GuardedStoreOptions {
  /** Signs and checks entries (authenticated entries); without it, entries are taken as they are. */
  entryAuth?: EntryAuth | undefined;
  /**
   * The monotonic clock of the back-off, in ms (the Client's `clock.monotonic`). Default `performance.now()`: a step
   * of the wall clock neither stretches the back-off (back) nor cuts it short (forward).
   */
  monotonic?: (() => number) | undefined;
}

/** A lease as the guard hands it out: the store's lease plus what the guard learnt about it. */
class GuardedLease implements TokenLease {
  /** Set when a renewal found the lease gone: another process may hold it now. */
  lost = false;
  released = false;
  extending: Promise<boolean> | undefined;
  constructor(
    readonly key: string,
    readonly inner: TokenLease,
  ) {}
  release(): Promise<void> {
    return this.inner.release();
  }
  extend(ttlMs: number): Promise<boolean> {
    return this.inner.extend ? this.inner.extend(ttlMs) : Promise.resolve(true);
  }
}

/** A lease the store granted after the guard had given up waiting for it. */
interface Adopted {
  lease: GuardedLease;
  renew: NodeJS.Timeout;
  cap: NodeJS.Timeout;
}

/** A {@link TokenStore} behind timeouts and a short circuit; never rejects. */
export class GuardedStore {
  /** End of the back-off, on {@link GuardedStoreOptions.monotonic}; -Infinity: not in a back-off. */
  #downUntil = -Infinity;
  readonly #monotonic: () => number;
  #probing = false;
  readonly #auth: EntryAuth | undefined;
  /** Leases this process holds, by key. */
  readonly #held = new Map<string, GuardedLease>();
  /** Orphan leases adopted until this process's token for the key is stored. */
  readonly #adopted = new Map<string, Adopted>();
  /** Lease requests the guard gave up on that have not settled yet, by key (this process's set then runs anyway). */
  readonly #pendingLeases = new Map<string, number>();
  /** How many sets of each key started, so a late lease knows whether its token was already stored. */
  readonly #sets = new Map<string, number>();

  constructor(
    readonly store: TokenStore,
    private readonly timeoutMs: number,
    private readonly events: EventHub,
    private readonly counters: StoreCounters,
    private readonly backoffMs = 1_000,
    options: GuardedStoreOptions = {},
  ) {
    this.#auth = options.entryAuth;
    this.#monotonic = options.monotonic ?? (() => performance.now());
  }

  /** Whether the store is considered up (not inside a back-off after a failure). */
  get available(): boolean {
    return this.#monotonic() >= this.#downUntil;
  }

  /** Whether the store offers leases (distributed single flight). */
  get hasLease(): boolean {
    return typeof this.store.acquireLease === 'function';
  }

  /** Whether entries are signed and checked. */
  get authenticated(): boolean {
    return this.#auth !== undefined;
  }

  #report(operation: string, error: unknown, backoff = true): void {
    if (backoff) this.#downUntil = this.#monotonic() + this.backoffMs;
    this.counters.storeErrors++;
    const safe = error instanceof TokenStoreError ? error : new TokenStoreError(operation, `token store ${operation} failed: ${(error as Error)?.message ?? String(error)}`, { cause: error });
    this.events.emit('storeError', { operation, error: safe });
  }

  async #run<T>(operation: string, fallback: T, action: () => Promise<T>, timeoutMs = this.timeoutMs, force = false): Promise<T> {
    if (!force && !this.available) return fallback;
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        action(),
        new Promise<never>((_, reject) => {
          // A sum of two bounded options may pass Node's timer limit (a longer delay would fire at once).
          timer = setTimeout(() => reject(new TokenStoreError(operation, `token store ${operation} timed out after ${timeoutMs} ms`)), Math.min(timeoutMs, MAX_TIMER_MS));
          // A caller waiting for a token keeps the process alive (the lifecycle's hold), not a store call left hanging
          // after close().
          timer.unref();
        }),
      ]);
    } catch (error) {
      this.#report(operation, error);
      return fallback;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The stored token, or undefined when absent, corrupt (no access token or no numeric expiry), not authentic
   * (reported as `storeError` and removed) or the store failed.
   */
  async get(key: string): Promise<OAuthToken | undefined> {
    const value = await this.#run('get', undefined, () => this.store.get(key));
    if (!isStoredToken(value)) return undefined;
    if (!this.#auth) return stripMac(value);
    const check = await this.#auth.verify(key, value);
    if (check.ok) return check.token;
    this.#report('get', new TokenStoreError('get', `token store entry ignored: ${check.reason === 'missing' ? 'it carries no MAC' : 'its MAC does not match'} (written without this client's credentials, or before they were rotated)`), false);
    // Out of the way, so that it cannot block this process's compare-and-set (only that very entry is removed).
    void this.#run('delete', undefined, () => this.store.delete(key, value.accessToken));
    return undefined;
  }

  /**
   * Stores a token that has time left, unless the store holds one that expires later; failures are reported, not
   * thrown. `force` tries even inside the back-off: a lease holder's token is what the other processes wait for
   * (a held or adopted lease on `key` forces it too).
   */
  async set(key: string, token: OAuthToken, ttlMs: number, force = false): Promise<void> {
    if (!(ttlMs >= 1)) return;
    this.#sets.set(key, (this.#sets.get(key) ?? 0) + 1);
    if (this.#sets.size > 10_000) this.#sets.clear();
    const adopted = this.#adopted.get(key);
    const held = this.#held.get(key);
    const forced = force || adopted !== undefined || this.#pendingLeases.has(key) || (held !== undefined && !held.lost);
    const entry = this.#auth ? await this.#auth.sign(key, token) : token;
    const ttl = Math.ceil(ttlMs);
    try {
      await this.#run('set', undefined, () => this.#compareAndSet(key, entry, ttl), this.timeoutMs, forced);
    } finally {
      if (adopted) this.#dropAdopted(key, adopted);
    }
  }

  async #compareAndSet(key: string, entry: OAuthToken, ttl: number): Promise<void> {
    if (typeof this.store.setIfNotNewer === 'function') {
      await this.store.setIfNotNewer(key, entry, ttl);
      return;
    }
    // A store without compare-and-set: read, then write (a race window, but never over an entry known to be newer).
    const current = await this.store.get(key);
    if (isStoredToken(current) && isNewerEntry(current, entry) && (!this.#auth || (await this.#auth.verify(key, current)).ok)) return;
    await this.store.set(key, entry, ttl);
  }

  /** Deletes a token (only that access token, when given); failures are reported, not thrown. */
  async delete(key: string, accessToken?: string): Promise<void> {
    await this.#run('delete', undefined, () => this.store.delete(key, accessToken));
  }

  /**
   * Takes the lease. Resolves `'held'` with the lease, `'busy'` when another holder has it,
   * or `'unavailable'` when the store failed (then the caller fetches on its own).
   */
  async acquireLease(key: string, ttlMs: number): Promise<{ state: 'held'; lease: TokenLease } | { state: 'busy' } | { state: 'unavailable' }> {
    if (!this.store.acquireLease) return { state: 'unavailable' };
    const adopted = this.#adopted.get(key);
    if (adopted) {
      // This process already holds the key's lease (granted late): hand it over rather than wait behind it.
      clearInterval(adopted.renew);
      clearTimeout(adopted.cap);
      this.#adopted.delete(key);
      this.#held.set(key, adopted.lease);
      return { state: 'held', lease: adopted.lease };
    }
    const setsBefore = this.#sets.get(key) ?? 0;
    // Inside the back-off one lease request at a time still goes through, as a probe: a store that is back (a
    // restarted Redis) ends the back-off, so a refresh due right after a blip stays single-flight instead of every
    // process fetching on its own.
    let probe = false;
    if (!this.available) {
      if (this.#probing) return { state: 'unavailable' };
      probe = this.#probing = true;
    }
    let call: Promise<TokenLease | undefined> | undefined;
    let result: TokenLease | undefined | null;
    try {
      result = await this.#run<TokenLease | undefined | null>('acquireLease', null, () => (call = Promise.resolve().then(() => this.store.acquireLease!(key, ttlMs))), this.timeoutMs, probe);
    } finally {
      if (probe) this.#probing = false;
    }
    if (probe && result !== null) this.#downUntil = -Infinity;
    if (result === null) {
      // Gave up (timeout or failure): if the store grants the lease later anyway, it must not be left behind. Until
      // the call settles, the others may be waiting on that lease, so this process's set of the key runs anyway.
      if (call) {
        this.#pendingLeases.set(key, (this.#pendingLeases.get(key) ?? 0) + 1);
        const settled = (): void => {
          const left = (this.#pendingLeases.get(key) ?? 1) - 1;
          if (left > 0) this.#pendingLeases.set(key, left);
          else this.#pendingLeases.delete(key);
        };
        call.then(
          (late) => {
            settled();
            if (late) this.#adopt(key, new GuardedLease(key, late), ttlMs, setsBefore);
          },
          settled,
        );
      }
      return { state: 'unavailable' };
    }
    if (!result) return { state: 'busy' };
    const lease = new GuardedLease(key, result);
    this.#held.set(key, lease);
    return { state: 'held', lease };
  }

  /**
   * Releases a lease, even inside the back-off (a lease left behind makes the others wait for its expiry);
   * failures are reported, not thrown (the lease then expires by itself).
   */
  async release(lease: TokenLease): Promise<void> {
    if (lease instanceof GuardedLease) {
      if (lease.released) return;
      lease.released = true;
      if (this.#held.get(lease.key) === lease) this.#held.delete(lease.key);
      if (lease.lost) return; // someone else's now
    }
    await this.#run('release', undefined, () => lease.release(), this.timeoutMs, true);
  }

  /**
   * Gives a lease up without releasing it: it lapses by itself `ms` from now (the fleet's pace after a failed token
   * request: the next holder takes it no sooner), and this process no longer counts it as held.
   */
  async lapse(lease: TokenLease, ms: number): Promise<void> {
    if (lease instanceof GuardedLease) {
      if (lease.released) return;
      if (this.#held.get(lease.key) === lease) this.#held.delete(lease.key);
      await this.extend(lease, ms);
      lease.released = true;
      return;
    }
    await this.extend(lease, ms);
  }

  /**
   * Renews a lease, even inside the back-off (a lapsed lease lets a second process fetch). Resolves false when the
   * lease is no longer ours (then it is marked lost, reported as `storeError` and never renewed again) or the store
   * failed; a renewal still running is shared rather than doubled.
   */
  async extend(lease: TokenLease, ttlMs: number): Promise<boolean> {
    if (typeof lease.extend !== 'function') return true;
    if (!(lease instanceof GuardedLease)) return this.#run('extendLease', false, () => lease.extend!(ttlMs), this.timeoutMs, true);
    if (lease.lost || lease.released) return false;
    if (lease.extending) return lease.extending;
    const attempt = (async () => {
      const ours = await this.#run<boolean | null>('extendLease', null, () => lease.extend(ttlMs), this.timeoutMs, true);
      if (ours === false && !lease.released) {
        lease.lost = true;
        this.#report('extendLease', new TokenStoreError('extendLease', 'the lease on a token lapsed and another process may hold it: this process keeps its token request but will not overwrite a newer token'), false);
      }
      return ours === true;
    })();
    lease.extending = attempt;
    try {
      return await attempt;
    } finally {
      lease.extending = undefined;
    }
  }

  /** Whether this process holds a lease on `key` that it knows it lost. */
  leaseLost(lease: TokenLease): boolean {
    return lease instanceof GuardedLease && lease.lost;
  }

  /** A lease granted after the wrapper gave up: release it now if our token is already stored, else hold it until it is. */
  #adopt(key: string, lease: GuardedLease, ttlMs: number, setsBefore: number): void {
    if ((this.#sets.get(key) ?? 0) !== setsBefore || this.#adopted.has(key) || this.#held.has(key)) {
      void this.release(lease);
      return;
    }
    const renew = setInterval(() => {
      void this.extend(lease, ttlMs).then((ours) => {
        if (!ours && this.#adopted.get(key)?.lease === lease) this.#dropAdopted(key, this.#adopted.get(key)!);
      });
    }, Math.max(Math.floor(ttlMs / 3), 1));
    // Bounded like a slow holder: if this process's own fetch failed, the others take over after a few lease times.
    const cap = setTimeout(() => {
      const adopted = this.#adopted.get(key);
      if (adopted?.lease === lease) this.#dropAdopted(key, adopted);
    }, Math.min(ttlMs * 3, MAX_TIMER_MS));
    renew.unref();
    cap.unref();
    this.#adopted.set(key, { lease, renew, cap });
  }

  #dropAdopted(key: string, adopted: Adopted): void {
    clearInterval(adopted.renew);
    clearTimeout(adopted.cap);
    if (this.#adopted.get(key) === adopted) this.#adopted.delete(key);
    void this.release(adopted.lease);
  }

  /** Waits up to `timeoutMs` for a token to be stored under `key` (pub/sub when the store offers it, else a jittered sleep). */
  async waitForToken(key: string, timeoutMs: number): Promise<void> {
    if (this.store.waitForToken && this.available) {
      // The wait itself may take `timeoutMs`; only time beyond that counts as the store hanging.
      await this.#run('waitForToken', undefined, () => this.store.waitForToken!(key, timeoutMs), timeoutMs + this.timeoutMs);
      return;
    }
    await sleep(Math.max(1, Math.floor(timeoutMs * (0.5 + Math.random()))));
  }
}
