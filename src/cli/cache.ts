/**
 * The CLI's token cache between invocations: a `TokenStore` (the library's `FileTokenStore`) behind a thin policy layer
 * that decides which cached token may be handed out by a command-line tool, and where the cache file lives by default.
 */
import { createHash } from 'node:crypto';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { defaultTokenFilePath, type OAuthToken, type TokenStore } from '../index.js';

/**
 * The default cache file: the library's {@link defaultTokenFilePath} (`$XDG_CACHE_HOME/client-credentials/tokens.json`,
 * else `~/.cache/client-credentials/tokens.json`); on macOS and Windows without `XDG_CACHE_HOME`, the platform's user
 * cache folder instead.
 */
export function defaultCachePath(env: NodeJS.ProcessEnv, platform: NodeJS.Platform = process.platform): string {
  const home = env['HOME'] || env['USERPROFILE'] || homedir();
  if (!env['XDG_CACHE_HOME']) {
    if (platform === 'darwin') return join(home, 'Library', 'Caches', 'client-credentials', 'tokens.json');
    if (platform === 'win32') return join(env['LOCALAPPDATA'] || join(home, 'AppData', 'Local'), 'client-credentials', 'Cache', 'tokens.json');
  }
  return defaultTokenFilePath(env, home);
}

/** Options of {@link cliTokenCache}. */
export interface CliCacheOptions {
  /** Whether cached tokens may be reused (`--no-cache`: false; new tokens are still written). */
  reuse: boolean;
  /** The client secret (or private key), mixed into the key so that a changed secret never reuses an old token. */
  credential: string | undefined;
  /** Seconds of clock skew configured; a token with less life left is not reused. */
  clockSkew: number;
  /** The current time in ms. */
  now: () => number;
  /** Called with the outcome of each read, for `--verbose`. */
  onRead?: (outcome: 'hit' | 'miss' | 'too-old' | 'skipped', token: OAuthToken | undefined) => void;
}

/**
 * Whether a cached token is worth handing out: it must have more than a quarter of its lifetime left (plus most of the
 * clock skew), so that a token printed by `token` is never one that dies a moment later in the caller's script.
 */
export function reusable(token: OAuthToken, nowMs: number, clockSkew: number): boolean {
  if (token.expiry === undefined) return true;
  const left = token.expiry * 1000 - nowMs;
  const lifetime = token.expiresIn !== undefined && token.expiresIn > 0 ? token.expiresIn * 1000 : left;
  // The library's own fresh window (75 % of the usable lifetime, the skew clamped to half the lifetime), so a reused
  // token is fresh to the Client too and starts no background refresh.
  const skew = Math.min(clockSkew * 1000, lifetime / 2);
  return left > lifetime / 4 + skew * 0.75;
}

/**
 * Wraps `inner` with the CLI's policy: keys are namespaced by a hash of the credential, reads can be switched off
 * (`--no-cache`) and tokens past three quarters of their life are not reused. Writes, deletes (the library's revocation
 * recovery), leases and waits pass through.
 */
export function cliTokenCache(inner: TokenStore, options: CliCacheOptions): TokenStore {
  const mapKey = (key: string): string => `cli.${createHash('sha256').update(`${key}\n${options.credential ?? ''}`).digest('base64url')}`;
  const store: { -readonly [K in keyof TokenStore]: TokenStore[K] } = {
    async get(key) {
      if (!options.reuse) {
        options.onRead?.('skipped', undefined);
        return undefined;
      }
      const token = await inner.get(mapKey(key));
      if (!token) {
        options.onRead?.('miss', undefined);
        return undefined;
      }
      if (!reusable(token, options.now(), options.clockSkew)) {
        options.onRead?.('too-old', token);
        return undefined;
      }
      options.onRead?.('hit', token);
      return token;
    },
    set: (key, token, ttlMs) => inner.set(mapKey(key), token, ttlMs),
    delete: (key, accessToken) => inner.delete(mapKey(key), accessToken),
  };
  if (inner.acquireLease) store.acquireLease = (key, ttlMs) => inner.acquireLease!(mapKey(key), ttlMs);
  if (inner.waitForToken) store.waitForToken = (key, timeoutMs) => inner.waitForToken!(mapKey(key), timeoutMs);
  if (inner.leaseTtl !== undefined) store.leaseTtl = inner.leaseTtl;
  if (inner.leaseWait !== undefined) store.leaseWait = inner.leaseWait;
  return store;
}
