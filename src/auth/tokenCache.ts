/**
 * The bounded in-process cache of token entries: least recently used first out, never an entry whose fetch is still
 * running, and entries that hold nothing (a selection whose fetch failed) before any that holds a token. An entry is
 * created by a fetch, not by a lookup, and the bound is restored when a fetch settles or a token is installed
 * ({@link TokenCache.trim}): a burst of fetches for many keys may hold more entries than the bound for a moment, and
 * selections the token endpoint refuses never push a cached token out.
 */
import type { TokenKey } from './tokenKey.js';

/** A bounded LRU map of entries by cache key; see the module comment. */
export class TokenCache<E extends { readonly key: TokenKey }> {
  readonly #entries = new Map<string, E>();
  #lastId: string | undefined;

  /**
   * @param maxEntries the bound.
   * @param create makes the entry of a key seen for the first time.
   * @param busy whether an entry may not be evicted now (its fetch runs).
   * @param empty whether an entry holds nothing worth keeping (evicted first).
   */
  constructor(
    private readonly maxEntries: number,
    private readonly create: (key: TokenKey) => E,
    private readonly busy: (entry: E) => boolean,
    private readonly empty: (entry: E) => boolean = () => false,
  ) {}

  /** Number of entries. */
  get size(): number {
    return this.#entries.size;
  }

  /** The entry of `key`, created when missing, and marked most recently used. */
  entry(key: TokenKey): E {
    let entry = this.get(key);
    if (!entry) {
      entry = this.create(key);
      this.#entries.set(key.id, entry);
      this.#lastId = key.id;
    }
    return entry;
  }

  /** The entry of `key` when there is one, marked most recently used. This is on the request hot path. */
  get(key: TokenKey): E | undefined {
    const entry = this.#entries.get(key.id);
    if (entry && this.#lastId !== key.id) {
      if (this.#entries.size > 1) {
        this.#entries.delete(key.id);
        this.#entries.set(key.id, entry);
      }
      this.#lastId = key.id;
    }
    return entry;
  }

  /** The entry of `key` when there is one, without touching the LRU order. */
  find(key: TokenKey): E | undefined {
    return this.#entries.get(key.id);
  }

  /** Every entry, least recently used first. */
  values(): IterableIterator<E> {
    return this.#entries.values();
  }

  /** Evicts idle entries, the empty ones first, then the least recently used, until the cache is within its bound again. */
  trim(): void {
    if (this.#entries.size <= this.maxEntries) return;
    for (const [id, entry] of this.#entries) {
      if (this.#entries.size <= this.maxEntries) return;
      if (this.empty(entry) && !this.busy(entry)) this.#delete(id);
    }
    while (this.#entries.size > this.maxEntries && this.#evictOne());
  }

  #evictOne(): boolean {
    for (const [id, entry] of this.#entries) {
      if (!this.busy(entry)) {
        this.#delete(id);
        return true;
      }
    }
    return false;
  }

  #delete(id: string): void {
    this.#entries.delete(id);
    if (this.#lastId === id) this.#lastId = undefined;
  }
}
