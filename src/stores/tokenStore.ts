/**
 * The `TokenStore` interface: where tokens are shared beyond one Client (between Clients, processes or machines),
 * plus the guard the Client puts around any store so that a slow or broken store never fails a request.
 */
import { InvalidOptionError } from '../errors.js';
import type { OAuthToken } from '../token.js';

/** A lease held on a key: while it is held, other processes wait for this one's token fetch. */
export interface TokenLease {
  /** Releases the lease, only if it is still this holder's (a slow holder never releases someone else's). */
  release(): Promise<void>;
}

/**
 * Stores tokens by key. Keys are already hashed by the Client (no secret ever appears in one); values are
 * {@link OAuthToken}s with an absolute `expiry` (unix seconds). Implementations: `MemoryTokenStore`,
 * `FileTokenStore`, and `RedisTokenStore` from `client-credentials/redis`.
 */
export interface TokenStore {
  /** The token stored under `key`, or undefined. A corrupt entry reads as undefined. */
  get(key: string): Promise<OAuthToken | undefined>;
  /** Stores `token` under `key` for `ttlMs` milliseconds. */
  set(key: string, token: OAuthToken, ttlMs: number): Promise<void>;
  /**
   * Deletes the token under `key`. With `accessToken`, deletes only when the stored token is that one
   * (so a revoked token is dropped without dropping a newer one).
   */
  delete(key: string, accessToken?: string): Promise<void>;
  /**
   * Optional single flight across processes: takes the lease on `key` for `ttlMs` if nobody holds it.
   * Resolves to the lease, or undefined when another holder has it.
   */
  acquireLease?(key: string, ttlMs: number): Promise<TokenLease | undefined>;
  /**
   * Optional: resolves when a token is stored under `key` or `timeoutMs` passes (pub/sub); without it,
   * the Client polls with jitter.
   */
  waitForToken?(key: string, timeoutMs: number): Promise<void>;
}

const REQUIRED = ['get', 'set', 'delete'] as const;

/** Checks by shape that `store` is a {@link TokenStore}, naming the first missing method. */
export function assertTokenStore(store: unknown, path: string): asserts store is TokenStore {
  if (typeof store !== 'object' || store === null) throw new InvalidOptionError(path, 'must be a TokenStore object with get, set and delete methods');
  for (const method of REQUIRED) {
    if (typeof (store as Record<string, unknown>)[method] !== 'function') throw new InvalidOptionError(path, `must have a \`${method}\` method (TokenStore)`);
  }
  for (const method of ['acquireLease', 'waitForToken']) {
    const value = (store as Record<string, unknown>)[method];
    if (value !== undefined && typeof value !== 'function') throw new InvalidOptionError(path, `has a \`${method}\` that is not a function`);
  }
}
