/**
 * The broker's upstream connections: one undici keep-alive `Pool` per upstream origin, made on first use. This is what
 * undici's `Agent` keeps, without its layer on every request (the origin turned into a key, the per-origin
 * bookkeeping): the proxy asks for a route's pool directly. A client with a certificate (or CAs of its own) has pools
 * of its own, whose connections present its certificate: a certificate-bound token is only accepted with it.
 *
 * @see https://www.rfc-editor.org/rfc/rfc8705#section-3
 */
import { Pool, type Dispatcher } from 'undici';

/** The TLS settings of a client's upstream connections (PEM): its certificate and key, and the CAs it trusts. */
export interface UpstreamTls {
  readonly cert?: string;
  readonly key?: string;
  readonly ca?: string;
}

/** The upstream connection pools of one broker. */
export class UpstreamPools {
  readonly #pools = new Map<string, Pool>();
  /** Pools of the clients with TLS settings, by the settings' object (one per opened client). */
  readonly #tlsPools = new Map<UpstreamTls, Map<string, Pool>>();
  readonly #options: Pool.Options;
  #closing: Promise<void> | undefined;

  /** `options` apply to every pool (keep-alive, connect timeout). */
  constructor(options: Pool.Options) {
    this.#options = options;
  }

  /**
   * The pool of `origin` (`http://host:port`, as `URL.origin` gives it), for connections made with `tls` (a client's
   * certificate and CAs) when given. Once closed, every pool refuses requests.
   */
  pool(origin: string, tls?: UpstreamTls): Dispatcher {
    let pools = this.#pools;
    if (tls !== undefined) {
      let own = this.#tlsPools.get(tls);
      if (own === undefined) this.#tlsPools.set(tls, (own = new Map()));
      pools = own;
    }
    let pool = pools.get(origin);
    if (pool === undefined) {
      const options = tls === undefined ? this.#options : { ...this.#options, connect: { ...(this.#options.connect as object | undefined), ...tls } };
      pools.set(origin, (pool = new Pool(origin, options)));
      if (this.#closing !== undefined) void pool.close().catch(() => undefined);
    }
    return pool;
  }

  /** Closes the pools made for `tls` (a client was replaced), once their requests finished. */
  release(tls: UpstreamTls | undefined): Promise<void> {
    const own = tls === undefined ? undefined : this.#tlsPools.get(tls);
    if (own === undefined) return Promise.resolve();
    this.#tlsPools.delete(tls!);
    return Promise.all([...own.values()].map((pool) => pool.close().catch(() => undefined))).then(() => undefined);
  }

  /** Closes every pool once its requests finished (once: later calls get the same promise). */
  close(): Promise<void> {
    const all = [...this.#pools.values(), ...[...this.#tlsPools.values()].flatMap((own) => [...own.values()])];
    return (this.#closing ??= Promise.all(all.map((pool) => pool.close())).then(() => undefined));
  }
}
