/** The `TokenStore` and `TokenLease` shapes: where tokens are shared beyond one Client. Ground floor. */
import type { OAuthToken } from './token.js';

/** A lease held on a key: while it is held, other processes wait for this one's token fetch. */
export interface TokenLease {
  /** Releases the lease, only if it is still this holder's (a slow holder never releases someone else's). */
  release(): Promise<void>;
  /**
   * Optional: pushes the lease's expiry to `ttlMs` from now, only if it is still this holder's. Resolves whether
   * it still was. The Client renews its lease every third of the lease time while its token request runs, so a
   * slow but live holder keeps the lease and a dead one loses it within one lease time.
   */
  extend?(ttlMs: number): Promise<boolean>;
}

/**
 * Stores tokens by key, so that several Clients, processes or machines share one token and fetch it once.
 *
 * Keys are already hashed by the Client (SHA-256 of the cache key, base64url: no secret ever appears in one).
 * Values are {@link OAuthToken}s with an absolute `expiry` (unix seconds), so every reader applies its own
 * `clockSkew` to it. A store only has to keep what it is given for `ttlMs`; the Client decides what is usable.
 * A Client with a secret or private key adds a `mac` field (an HMAC over the entry, see docs/fleet.md) and ignores
 * entries whose MAC does not verify: a store must keep every field it is given (field order does not matter).
 *
 * Implementations: `MemoryTokenStore` (several Clients in one process), `FileTokenStore` (several processes on one
 * machine) and `RedisTokenStore` from `oauth-client-credentials/redis` (a fleet). The Client checks a store by shape at
 * construction and puts timeouts around every call: a store that fails or hangs never fails a request.
 *
 * @example
 * ```ts
 * const store: TokenStore = {
 *   async get(key) { return cache.get(key); },
 *   async set(key, token, ttlMs) { cache.set(key, token, ttlMs); },
 *   async delete(key, accessToken) { if (!accessToken || cache.get(key)?.accessToken === accessToken) cache.delete(key); },
 * };
 * ```
 */
export interface TokenStore {
  /** The token stored under `key`, or undefined. A corrupt entry reads as undefined (it is overwritten by the next `set`). */
  get(key: string): Promise<OAuthToken | undefined>;
  /** Stores `token` under `key` for `ttlMs` milliseconds, and wakes the processes waiting in `waitForToken`. */
  set(key: string, token: OAuthToken, ttlMs: number): Promise<void>;
  /**
   * Deletes the token under `key`. With `accessToken`, deletes only when the stored token is that one
   * (so a revoked token is dropped without dropping a newer one).
   */
  delete(key: string, accessToken?: string): Promise<void>;
  /**
   * Optional compare-and-set, atomic in the store: stores `token` like {@link set} unless the entry stored under `key`
   * is a token that expires later than `token` (a newer token, e.g. from a process that took over a lapsed lease); a
   * corrupt entry is replaced, whatever expiry it carries. Resolves whether it stored it. Without it, the Client reads
   * the entry first and then sets (not atomic).
   */
  setIfNotNewer?(key: string, token: OAuthToken, ttlMs: number): Promise<boolean>;
  /**
   * Optional single flight across processes: takes the lease on `key` for `ttlMs` if nobody holds it.
   * Resolves to the lease, or undefined when another holder has it. Without it, each process fetches for itself.
   */
  acquireLease?(key: string, ttlMs: number): Promise<TokenLease | undefined>;
  /**
   * Optional: resolves when a token is stored under `key` or `timeoutMs` passes (pub/sub, file watch…); without it,
   * the Client polls with jitter.
   */
  waitForToken?(key: string, timeoutMs: number): Promise<void>;
  /**
   * Optional, milliseconds: how long a lease lives without renewal, i.e. how long a holder that died blocks the
   * others before one of them takes over. Default 5,000.
   */
  readonly leaseTtl?: number | undefined;
  /**
   * Optional, milliseconds: how long a process waits for the lease holder's token before it fetches one itself.
   * Default: the Client's `tokenRequestTimeout` + 2 s, at most 35 s.
   */
  readonly leaseWait?: number | undefined;
}
