/**
 * Wraps a {@link TokenStore} so that it can only help: every operation has a timeout, a failure is reported
 * as a `storeError` event and answered as "nothing there", and after a failure the store is skipped for a
 * short back-off, then tried again (so a restarted Redis is used again without a restart of ours).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { TokenStoreError } from '../errors.js';
import type { EventHub } from '../events.js';
import type { OAuthToken } from '../token.js';
import { isStoredToken, type TokenLease, type TokenStore } from './tokenStore.js';

/** Counters the guard reports into. */
export interface StoreCounters {
  storeErrors: number;
}

/** A {@link TokenStore} behind timeouts and a short circuit; never rejects. */
export class GuardedStore {
  #downUntil = 0;

  constructor(
    readonly store: TokenStore,
    private readonly timeoutMs: number,
    private readonly events: EventHub,
    private readonly counters: StoreCounters,
    private readonly backoffMs = 1_000,
  ) {}

  /** Whether the store is considered up (not inside a back-off after a failure). */
  get available(): boolean {
    return Date.now() >= this.#downUntil;
  }

  /** Whether the store offers leases (distributed single flight). */
  get hasLease(): boolean {
    return typeof this.store.acquireLease === 'function';
  }

  async #run<T>(operation: string, fallback: T, action: () => Promise<T>, timeoutMs = this.timeoutMs, force = false): Promise<T> {
    if (!force && !this.available) return fallback;
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        action(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new TokenStoreError(operation, `token store ${operation} timed out after ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } catch (error) {
      this.#downUntil = Date.now() + this.backoffMs;
      this.counters.storeErrors++;
      const safe = error instanceof TokenStoreError ? error : new TokenStoreError(operation, `token store ${operation} failed: ${(error as Error)?.message ?? String(error)}`, { cause: error });
      this.events.emit('storeError', { operation, error: safe });
      return fallback;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The stored token, or undefined when absent, corrupt (no access token or no numeric expiry) or the store failed. */
  async get(key: string): Promise<OAuthToken | undefined> {
    const value = await this.#run('get', undefined, () => this.store.get(key));
    return isStoredToken(value) ? value : undefined;
  }

  /**
   * Stores a token that has time left; failures are reported, not thrown. `force` tries even inside the back-off:
   * a lease holder's token is what the other processes are waiting for.
   */
  async set(key: string, token: OAuthToken, ttlMs: number, force = false): Promise<void> {
    if (!(ttlMs >= 1)) return;
    await this.#run('set', undefined, () => this.store.set(key, token, Math.ceil(ttlMs)), this.timeoutMs, force);
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
    const result = await this.#run<TokenLease | undefined | null>('acquireLease', null, () => this.store.acquireLease!(key, ttlMs));
    if (result === null) return { state: 'unavailable' };
    return result ? { state: 'held', lease: result } : { state: 'busy' };
  }

  /**
   * Releases a lease, even inside the back-off (a lease left behind makes the others wait for its expiry);
   * failures are reported, not thrown (the lease then expires by itself).
   */
  async release(lease: TokenLease): Promise<void> {
    await this.#run('release', undefined, () => lease.release(), this.timeoutMs, true);
  }

  /** Renews a lease when the store can; resolves false when it is no longer ours or the store failed. */
  async extend(lease: TokenLease, ttlMs: number): Promise<boolean> {
    if (typeof lease.extend !== 'function') return true;
    return this.#run('extendLease', false, () => lease.extend!(ttlMs));
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
