/**
 * The `proxy` option: an HTTP(S) proxy for every request of a Client, given as a URL or as `'env'` for the
 * `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` environment variables (as curl reads them), on undici's `ProxyAgent` and
 * `EnvHttpProxyAgent`. Requests to `https:` URLs are tunnelled with CONNECT; the proxy never sees the token then.
 *
 * Requests to loopback (`localhost`, 127.0.0.0/8, `[::1]`) never go through the proxy, whatever `NO_PROXY` says (as
 * Go's `net/http` does): plain http to loopback is allowed because it does not leave the machine, and through a
 * proxy it would (the proxy would read the client secret and the token in clear, and reach its own loopback, not
 * this machine's).
 */
import { Agent, Dispatcher, EnvHttpProxyAgent, ProxyAgent } from 'undici';
import { InvalidOptionError } from '../errors.js';
import type { DispatcherLike } from '../types/dispatcher.js';
import { isLoopbackHost } from './requestGuard.js';

/** The `proxy` option: a proxy URL (`http://proxy.internal:3128`, credentials allowed), or `'env'`. */
export type ProxyOption = string;

/** Checks the `proxy` option: `'env'`, or an absolute `http:`/`https:` URL. The message never repeats the URL (it may hold a password). */
export function checkProxy(value: unknown): ProxyOption | undefined {
  if (value === undefined) return undefined;
  if (value === 'env') return value;
  if (typeof value === 'string') {
    try {
      const url = new URL(value);
      if (url.protocol === 'http:' || url.protocol === 'https:') return value;
    } catch {
      // reported below
    }
  }
  throw new InvalidOptionError('proxy', "must be 'env' or an http(s) URL such as http://proxy.internal:3128");
}

/** Whether a request origin (`http://127.0.0.1:8080`) is this machine. */
export function isLoopbackOrigin(origin: string | URL | undefined): boolean {
  if (origin === undefined) return false;
  try {
    return isLoopbackHost((typeof origin === 'string' ? new URL(origin) : origin).hostname);
  } catch {
    return false;
  }
}

/**
 * The class of a dispatcher that sends requests to loopback on a direct Agent and every other request through the
 * proxy agent; made on first use, as Bun's `undici` stub may have no `Dispatcher` to extend.
 */
let LoopbackBypass: ReturnType<typeof loopbackBypassClass> | undefined;

function loopbackBypassClass() {
  return class LoopbackBypass extends Dispatcher {
    constructor(
      readonly proxied: Dispatcher,
      readonly direct: Dispatcher,
    ) {
      super();
    }

    override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
      return (isLoopbackOrigin(options.origin) ? this.direct : this.proxied).dispatch(options, handler);
    }

    override close(): Promise<void>;
    override close(callback: () => void): void;
    override close(callback?: () => void): Promise<void> | void {
      const done = Promise.all([this.proxied.close(), this.direct.close()]).then(() => undefined);
      if (!callback) return done;
      void done.then(callback, callback);
    }

    override destroy(): Promise<void>;
    override destroy(error: Error | null): Promise<void>;
    override destroy(callback: () => void): void;
    override destroy(error: Error | null, callback: () => void): void;
    override destroy(a?: Error | null | (() => void), b?: () => void): Promise<void> | void {
      const error = typeof a === 'function' ? null : (a ?? null);
      const callback = typeof a === 'function' ? a : b;
      const done = Promise.all([this.proxied.destroy(error), this.direct.destroy(error)]).then(() => undefined);
      if (!callback) return done;
      void done.then(callback, callback);
    }
  };
}

/**
 * A keep-alive dispatcher that sends every request through `proxy`, except requests to loopback, which go direct.
 * `tls` (client certificate, CA) applies to the connection to the destination, through the tunnel.
 */
export function createProxyDispatcher(proxy: ProxyOption, tls?: Record<string, unknown>): DispatcherLike & { close(): Promise<void> } {
  const common = { keepAliveTimeout: 10_000, connections: 128, ...(tls ? { requestTls: tls } : {}) };
  const proxied = proxy === 'env' ? new EnvHttpProxyAgent({ ...common, ...(tls ? { connect: tls } : {}) }) : new ProxyAgent({ ...common, uri: proxy });
  const direct = new Agent({ keepAliveTimeout: 10_000, connections: 128, ...(tls ? { connect: tls } : {}) });
  LoopbackBypass ??= loopbackBypassClass();
  return new LoopbackBypass(proxied, direct) as unknown as DispatcherLike & { close(): Promise<void> };
}
