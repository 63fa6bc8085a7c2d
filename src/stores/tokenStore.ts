/**
 * The `TokenStore` interface: where tokens are shared beyond one Client (between Clients, processes or machines),
 * and the shape check the Client runs on a store at construction.
 */
import { InvalidOptionError } from '../errors.js';
import { MAX_TIMER_MS } from '../defaults.js';
import type { OAuthToken } from '../token.js';
import { tokenFieldsProblem } from '../tokenValidation.js';

export type { TokenStore, TokenLease } from '../types/tokenStore.js';
import type { TokenStore } from '../types/tokenStore.js';

const REQUIRED = ['get', 'set', 'delete'] as const;

/** Checks by shape that `store` is a {@link TokenStore}, naming the first missing method. */
export function assertTokenStore(store: unknown, path: string): asserts store is TokenStore {
  if (typeof store !== 'object' || store === null) throw new InvalidOptionError(path, 'must be a TokenStore object with get, set and delete methods');
  for (const method of REQUIRED) {
    if (typeof (store as Record<string, unknown>)[method] !== 'function') throw new InvalidOptionError(path, `must have a \`${method}\` method (TokenStore)`);
  }
  for (const method of ['acquireLease', 'waitForToken', 'setIfNotNewer']) {
    const value = (store as Record<string, unknown>)[method];
    if (value !== undefined && typeof value !== 'function') throw new InvalidOptionError(path, `has a \`${method}\` that is not a function`);
  }
  for (const name of ['leaseTtl', 'leaseWait']) {
    const value = (store as Record<string, unknown>)[name];
    if (value !== undefined && !isTimerMs(value)) throw new InvalidOptionError(`${path}.${name}`, LEASE_PROBLEM);
  }
}

/** What a lease option must be: it ends up in a timer, so at most Node's timer limit. */
const LEASE_PROBLEM = `must be a positive number of milliseconds, at most ${MAX_TIMER_MS} (Node's timer limit)`;

/** Whether `value` is a number of milliseconds a timer keeps: 1 to {@link MAX_TIMER_MS}. */
function isTimerMs(value: unknown): value is number {
  return typeof value === 'number' && value >= 1 && value <= MAX_TIMER_MS;
}

/** Checks a lease option of a store constructor: 1 to 2^31−1 milliseconds (Node's timer limit), or undefined. */
export function checkLeaseOption(path: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (!isTimerMs(value)) throw new InvalidOptionError(path, LEASE_PROBLEM);
  return value;
}

/**
 * Whether `stored` (a stored entry, possibly corrupt) is a token that expires later than `token`: then `token` must not
 * replace it. A corrupt entry (not a token) is never newer, whatever expiry it carries: the next token overwrites it.
 */
export function isNewerEntry(stored: unknown, token: OAuthToken): boolean {
  return isStoredToken(stored) && stored.expiry! > (token.expiry ?? -Infinity);
}

/**
 * Whether a stored value is a token the Client may consider: a usable `accessToken` (and `tokenType`, RFC 6750/6749)
 * and a finite absolute `expiry`. A token without an expiry is rejected, since its lifetime would otherwise restart on every read.
 */
export function isStoredToken(value: unknown): value is OAuthToken {
  if (typeof value !== 'object' || value === null) return false;
  const token = value as Partial<OAuthToken>;
  return typeof token.accessToken === 'string' && token.accessToken !== '' && typeof token.expiry === 'number' && Number.isFinite(token.expiry) && tokenFieldsProblem(token) === undefined;
}

/**
 * The callers of a store's `waitForToken`, by key: each is released when a token is stored under its key
 * ({@link wake}) or when its time runs out, whichever comes first.
 */
export class TokenWaiters {
  readonly #waiters = new Map<string, Set<() => void>>();

  /** Resolves on the next {@link wake} of `key`, or after `timeoutMs`. */
  wait(key: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      let set = this.#waiters.get(key);
      if (!set) this.#waiters.set(key, (set = new Set()));
      const done = (): void => {
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0 && this.#waiters.get(key) === set) this.#waiters.delete(key);
        resolve();
      };
      const timer = setTimeout(done, Math.max(timeoutMs, 0));
      set.add(done);
    });
  }

  /** Releases every caller waiting for `key`. */
  wake(key: string): void {
    const set = this.#waiters.get(key);
    if (set) for (const done of [...set]) done();
  }

  /** Releases every caller. */
  wakeAll(): void {
    for (const set of [...this.#waiters.values()]) for (const done of [...set]) done();
  }
}
