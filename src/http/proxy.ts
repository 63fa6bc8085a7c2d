/**
 * The `proxy` option: an HTTP(S) proxy for every request of a Client, given as a URL or as `'env'` for the
 * `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` environment variables (as curl reads them), on undici's `ProxyAgent` and
 * `EnvHttpProxyAgent`. Requests to `https:` URLs are tunnelled with CONNECT; the proxy never sees the token then.
 */
import { EnvHttpProxyAgent, ProxyAgent } from 'undici';
import { InvalidOptionError } from '../errors.js';
import type { DispatcherLike } from '../types/dispatcher.js';

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

/**
 * A keep-alive dispatcher that sends every request through `proxy`. `tls` (client certificate, CA) applies to the
 * connection to the destination, through the tunnel.
 */
export function createProxyDispatcher(proxy: ProxyOption, tls?: Record<string, unknown>): DispatcherLike & { close(): Promise<void> } {
  const common = { keepAliveTimeout: 10_000, connections: 128, ...(tls ? { requestTls: tls } : {}) };
  if (proxy === 'env') return new EnvHttpProxyAgent({ ...common, ...(tls ? { connect: tls } : {}) });
  return new ProxyAgent({ ...common, uri: proxy });
}
