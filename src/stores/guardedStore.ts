/**
 * Wraps a {@link TokenStore} so that it can only help: every operation has a timeout, a failure is reported
 * as a `storeError` event and answered as "nothing there", and after a failure the store is skipped for a
 * short back-off, then tried again (so a restarted Redis is used again without a restart of ours).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { EventHub } from '../events.js';
import { isOAuthToken, type OAuthToken } from '../token.js';
import type { TokenLease, TokenStore } from './tokenStore.js';

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

  async #run<T>(operation: string, fallback: T, action: () => Promise<T>): Promise<T> {
    if (!this.available) return fallback;
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        action(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`token store ${operation} timed out after ${this.timeoutMs} ms`)), this.timeoutMs);
        }),
      ]);
    } catch (error) {
      this.#downUntil = Date.now() + this.backoffMs;
      this.counters.storeErrors++;
      const safe = new Error(`token store ${operation} failed: ${(error as Error)?.message ?? String(error)}`, { cause: error });
      this.events.emit('storeError', { operation, error: safe });
      return fallback;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The stored token, or undefined when absent, corrupt or the store failed. */
  async get(key: string): Promise<OAuthToken | undefined> {
    const value = await this.#run('get', undefined, () => this.store.get(key));
    return isOAuthToken(value) ? value : undefined;
  }

  /** Stores a token; failures are reported, not thrown. */
  async set(key: string, token: OAuthToken, ttlMs: number): Promise<void> {
    await this.#run('set', undefined, () => this.store.set(key, token, Math.max(Math.ceil(ttlMs), 1)));
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

  /** Releases a lease; failures are reported, not thrown (the lease then expires by itself). */
  async release(lease: TokenLease): Promise<void> {
    await this.#run('release', undefined, () => lease.release());
  }

  /** Waits up to `timeoutMs` for a token to be stored under `key` (pub/sub when the store offers it, else a jittered sleep). */
  async waitForToken(key: string, timeoutMs: number): Promise<void> {
    if (this.store.waitForToken && this.available) {
      await this.#run('waitForToken', undefined, () => this.store.waitForToken!(key, timeoutMs));
      return;
    }
    await sleep(Math.max(1, Math.floor(timeoutMs * (0.5 + Math.random()))));
  }
}
