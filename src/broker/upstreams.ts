/**
 * The broker's upstream connections: one undici keep-alive `Pool` per upstream origin, made on first use. This is what
 * undici's `Agent` keeps, without its layer on every request (the origin turned into a key, the per-origin
 * bookkeeping): the proxy asks for a route's pool directly.
 */
import { Pool, type Dispatcher } from 'undici';

/** The upstream connection pools of one broker. */
export class UpstreamPools {
  readonly #pools = new Map<string, Pool>();
  readonly #options: Pool.Options;
  #closing: Promise<void> | undefined;

  /** `options` apply to every pool (keep-alive, connect timeout). */
  constructor(options: Pool.Options) {
    this.#options = options;
  }

  /** The pool of `origin` (`http://host:port`, as `URL.origin` gives it). Once closed, every pool refuses requests. */
  pool(origin: string): Dispatcher {
    let pool = this.#pools.get(origin);
    if (pool === undefined) {
      this.#pools.set(origin, (pool = new Pool(origin, this.#options)));
      if (this.#closing !== undefined) void pool.close().catch(() => undefined);
    }
    return pool;
  }

  /** Closes every pool once its requests finished (once: later calls get the same promise). */
  close(): Promise<void> {
    return (this.#closing ??= Promise.all([...this.#pools.values()].map((pool) => pool.close())).then(() => undefined));
  }
}
