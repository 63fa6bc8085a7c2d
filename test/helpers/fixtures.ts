/**
 * Small fixtures shared by the tests: a manual clock, the usual server stack (oidc-provider → fault proxy,
 * protected API), a token request counter, the next event of a Client, and a direct token request that bypasses
 * the library.
 */
import type { Client, ClientEventName, ClientEvents } from '../../src/index.js';
import { startOidcProvider, type OidcProviderHandle, type OidcProviderOptions } from './oidc.js';
import { startProtectedApi, type ProtectedApiHandle } from './api.js';
import { startFaultProxy, type FaultProxyHandle } from './faultProxy.js';

/** The default `svc` client of oidc-provider (see `DEFAULT_OIDC_CLIENTS`), asking for `api:read`. */
export const SVC_CREDENTIALS = { oAuthClientId: 'svc', oAuthClientSecret: 'svc-secret', oAuthScopes: 'api:read' };

/** A clock the test moves by hand; starts on a whole second so expiry arithmetic is exact. */
export interface ManualClock {
  now(): number;
  /** Moves the clock forward by `ms`. */
  advance(ms: number): void;
  /** Sets the clock to `ms`. */
  set(ms: number): void;
}

/** A {@link ManualClock} starting at `start` (default: the current second). */
export function manualClock(start = Math.floor(Date.now() / 1000) * 1000): ManualClock {
  let t = start;
  return {
    now: () => t,
    advance: (ms) => {
      t += ms;
    },
    set: (ms) => {
      t = ms;
    },
  };
}

/** oidc-provider, a fault proxy in front of it, and the protected API that verifies its tokens. */
export interface Stack {
  op: OidcProviderHandle;
  api: ProtectedApiHandle;
  proxy: FaultProxyHandle;
  /** The token URL through the fault proxy. */
  proxiedTokenUrl: string;
  close(): Promise<void>;
}

/** Starts a {@link Stack}. Close it in `after`. */
export async function startStack(options: OidcProviderOptions = {}): Promise<Stack> {
  const op = await startOidcProvider(options);
  const api = await startProtectedApi({ issuer: op.issuer, jwksUrl: op.jwksUrl, audience: op.resource });
  const proxy = await startFaultProxy(op.issuer);
  return {
    op,
    api,
    proxy,
    proxiedTokenUrl: `${proxy.url}/token`,
    close: async () => {
      await proxy.close();
      await api.close();
      await op.close();
    },
  };
}

/** A counter of the token requests `server` receives from now on. */
export function tokenRequestCounter(server: { readonly tokenRequests: readonly unknown[] }): () => number {
  const start = server.tokenRequests.length;
  return () => server.tokenRequests.length - start;
}

/** Resolves with the next `name` event `client` emits (the listener is removed once it fired). */
export function nextEvent<K extends ClientEventName>(client: Client, name: K): Promise<ClientEvents[K]> {
  return new Promise((resolve) => {
    const off = client.on(name, (event) => {
      off();
      resolve(event);
    });
  });
}

/** RFC 6749 §2.3.1 Basic credentials, computed independently of the library. */
export function basicCredentials(id: string, secret: string): string {
  const encode = (s: string): string => encodeURIComponent(s).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${encode(id)}:${encode(secret)}`).toString('base64')}`;
}

/** A token response fetched straight from the token endpoint, without the library. */
export async function directToken(tokenUrl: string, id = 'svc', secret = 'svc-secret', scope?: string): Promise<{ access_token: string; token_type: string; expires_in: number; scope?: string }> {
  const form = new URLSearchParams({ grant_type: 'client_credentials', ...(scope ? { scope } : {}) });
  const res = await fetch(tokenUrl, { method: 'POST', headers: { authorization: basicCredentials(id, secret) }, body: form });
  if (res.status !== 200) throw new Error(`direct token request failed with ${res.status}: ${await res.text()}`);
  return (await res.json()) as { access_token: string; token_type: string; expires_in: number; scope?: string };
}

/** Bearer tokens the API received, in order (undefined for unauthenticated requests). */
export function bearerTokens(api: ProtectedApiHandle): (string | undefined)[] {
  return api.requests.map((r) => /^Bearer (.+)$/.exec(r.headers.authorization ?? '')?.[1]);
}

/** Resolves once `predicate()` is true, polling every 5 ms; rejects after `timeoutMs`. */
export async function waitUntil(predicate: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('waitUntil: condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
