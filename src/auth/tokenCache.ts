/**
 * The bounded in-process cache of token entries: least recently used first out, never an entry whose fetch is still
 * running. A burst of fetches for many keys may hold more entries than the bound for a moment; {@link TokenCache.trim}
 * brings it back once they settle.
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
   */
  constructor(
    private readonly maxEntries: number,
    private readonly create: (key: TokenKey) => E,
    private readonly busy: (entry: E) => boolean,
  ) {}

  /** Number of entries. */
  get size(): number {
    return this.#entries.size;
  }

  /** The entry of `key`, created when missing, and marked most recently used. This is on the request hot path. */
  entry(key: TokenKey): E {
    let entry = this.#entries.get(key.id);
    if (entry) {
      if (this.#lastId !== key.id && this.#entries.size > 1) {
        this.#entries.delete(key.id);
        this.#entries.set(key.id, entry);
      }
    } else {
      if (this.#entries.size >= this.maxEntries) this.#evictOne();
      entry = this.create(key);
      this.#entries.set(key.id, entry);
    }
    this.#lastId = key.id;
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

  /** Evicts idle entries, least recently used first, until the cache is within its bound again. */
  trim(): void {
    while (this.#entries.size > this.maxEntries && this.#evictOne());
  }

  #evictOne(): boolean {
    for (const [id, entry] of this.#entries) {
      if (!this.busy(entry)) {
        this.#entries.delete(id);
        if (this.#lastId === id) this.#lastId = undefined;
        return true;
      }
    }
    return false;
  }
}
