/**
 * `MemoryTokenStore`: a bounded in-process token store with TTLs, leases and wake-ups, for sharing one token
 * (and one token request) between several Clients of one process.
 */
import { randomUUID } from 'node:crypto';
import { InvalidOptionError } from '../errors.js';
import type { OAuthToken } from '../token.js';
import { TokenWaiters, checkLeaseOption, isNewerEntry, isStoredToken, type TokenLease, type TokenStore } from './tokenStore.js';

/** Options of {@link MemoryTokenStore}. */
export interface MemoryTokenStoreOptions {
  /** Most tokens kept; the least recently used go first. Default 1,000. */
  maxEntries?: number;
  /** Lease time in ms; see {@link TokenStore.leaseTtl}. Default 5,000. */
  leaseTtl?: number;
  /** Wait bound in ms; see {@link TokenStore.leaseWait}. */
  leaseWait?: number;
  /** The clock the TTLs run on, in milliseconds. Default `Date.now`. */
  now?: () => number;
}

interface Stored {
  json: string;
  expiresAt: number;
}

interface Lease {
  owner: string;
  expiresAt: number;
}

/**
 * Keeps tokens in this process's memory. Without a `tokenStore` option a Client already keeps its tokens like this
 * (a bounded in-process cache, one token request at a time): that is the default. Pass one `MemoryTokenStore` to
 * several Clients to make them share it: Clients with the same token URL, client id and token parameters then share
 * one token and make one token request between them, however many call at once.
 *
 * Entries are copies (JSON), so a caller cannot change a stored token by mutating what it got. Expired entries are
 * dropped on read; at most `maxEntries` are kept.
 *
 * @example
 * ```ts
 * import { Client, MemoryTokenStore } from 'oauth-client-credentials';
 * const tokenStore = new MemoryTokenStore();
 * const orders = new Client({ baseUrl: 'https://orders.example.com', tokenUrl, clientCredentialsAuthCredentials, tokenStore });
 * const billing = new Client({ baseUrl: 'https://billing.example.com', tokenUrl, clientCredentialsAuthCredentials, tokenStore });
 * ```
 */
export class MemoryTokenStore implements TokenStore {
  readonly leaseTtl: number | undefined;
  readonly leaseWait: number | undefined;
  readonly #entries = new Map<string, Stored>();
  readonly #leases = new Map<string, Lease>();
  readonly #waiters = new TokenWaiters();
  readonly #maxEntries: number;
  readonly #now: () => number;

  constructor(options: MemoryTokenStoreOptions = {}) {
    const max = options.maxEntries ?? 1_000;
    if (!Number.isInteger(max) || max < 1) throw new InvalidOptionError('MemoryTokenStore.maxEntries', 'must be a positive integer');
    if (options.now !== undefined && typeof options.now !== 'function') throw new InvalidOptionError('MemoryTokenStore.now', 'must be a function');
    this.#maxEntries = max;
    this.#now = options.now ?? Date.now;
    this.leaseTtl = checkLeaseOption('MemoryTokenStore.leaseTtl', options.leaseTtl);
    this.leaseWait = checkLeaseOption('MemoryTokenStore.leaseWait', options.leaseWait);
  }

  /** Number of entries held (expired ones included until they are read or pushed out). */
  get size(): number {
    return this.#entries.size;
  }

  async get(key: string): Promise<OAuthToken | undefined> {
    const stored = this.#entries.get(key);
    if (!stored) return undefined;
    if (this.#now() >= stored.expiresAt) {
      this.#entries.delete(key);
      return undefined;
    }
    this.#entries.delete(key);
    this.#entries.set(key, stored);
    const value: unknown = JSON.parse(stored.json);
    return isStoredToken(value) ? value : undefined;
  }

  async set(key: string, token: OAuthToken, ttlMs: number): Promise<void> {
    if (!(ttlMs > 0)) return;
    this.#entries.delete(key);
    if (this.#entries.size >= this.#maxEntries) this.#evict();
    this.#entries.set(key, { json: JSON.stringify(token), expiresAt: this.#now() + ttlMs });
    this.#waiters.wake(key);
  }

  /** Stores `token` unless the entry under `key` expires later; see {@link TokenStore.setIfNotNewer}. */
  async setIfNotNewer(key: string, token: OAuthToken, ttlMs: number): Promise<boolean> {
    const stored = this.#entries.get(key);
    if (stored && this.#now() < stored.expiresAt && isNewerEntry(JSON.parse(stored.json), token)) return false;
    await this.set(key, token, ttlMs);
    return true;
  }

  async delete(key: string, accessToken?: string): Promise<void> {
    const stored = this.#entries.get(key);
    if (!stored) return;
    if (accessToken !== undefined) {
      const value: unknown = JSON.parse(stored.json);
      if (isStoredToken(value) && value.accessToken !== accessToken) return;
    }
    this.#entries.delete(key);
  }

  async acquireLease(key: string, ttlMs: number): Promise<TokenLease | undefined> {
    const now = this.#now();
    const current = this.#leases.get(key);
    if (current && current.expiresAt > now) return undefined;
    const owner = randomUUID();
    this.#leases.set(key, { owner, expiresAt: now + ttlMs });
    if (this.#leases.size > this.#maxEntries) this.#pruneLeases(now);
    return {
      release: async () => {
        if (this.#leases.get(key)?.owner === owner) this.#leases.delete(key);
      },
      extend: async (ms: number) => {
        const lease = this.#leases.get(key);
        if (lease?.owner !== owner) return false;
        lease.expiresAt = this.#now() + ms;
        return true;
      },
    };
  }

  waitForToken(key: string, timeoutMs: number): Promise<void> {
    return this.#waiters.wait(key, timeoutMs);
  }

  /** Drops every entry and lease. */
  clear(): void {
    this.#entries.clear();
    this.#leases.clear();
  }

  #evict(): void {
    const now = this.#now();
    for (const [key, stored] of this.#entries) if (stored.expiresAt <= now) this.#entries.delete(key);
    while (this.#entries.size >= this.#maxEntries) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
    }
  }

  #pruneLeases(now: number): void {
    for (const [key, lease] of this.#leases) if (lease.expiresAt <= now) this.#leases.delete(key);
  }
}
