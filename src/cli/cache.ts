/**
 * The CLI's token cache between invocations: a `TokenStore` (the library's `FileTokenStore`) behind a thin policy layer
 * that decides which cached token may be handed out by a command-line tool, and where the cache file lives by default.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, unlink } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
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
  /**
   * The per-user random key ({@link cacheKey}) the entry names are an HMAC of: a reader of the cache file cannot test
   * guesses of the secret against them without it.
   */
  nameKey: Uint8Array;
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
  const mapKey = (key: string): string => `cli.${createHmac('sha256', options.nameKey).update(`${key}\n${options.credential ?? ''}`).digest('base64url')}`;
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

/** Bytes of the per-user cache key. */
const CACHE_KEY_BYTES = 32;

/** The file of the per-user cache key: beside the cache file, `<cache file>.key`. */
export function cacheKeyPath(cachePath: string): string {
  return `${cachePath}.key`;
}

/**
 * The per-user random key of the token cache at `cachePath`, created on first use (32 random bytes, mode 0600,
 * created exclusively so two runs agree on one key). It keys the entry names and authenticates the entries (the
 * Client's `tokenStoreKey`), so neither can be computed from the secret alone. A key file of the wrong size is
 * replaced: the cache then starts empty.
 */
export async function cacheKey(cachePath: string): Promise<Buffer> {
  const file = cacheKeyPath(cachePath);
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  for (let attempt = 0; attempt < 3; attempt++) {
    const existing = await readFile(file).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    if (existing?.length === CACHE_KEY_BYTES) return existing;
    if (existing) await unlink(file).catch(() => undefined);
    // Written whole to a file of our own, then linked into place: another run never sees a half-written key (it
    // once read an empty file, took it for a bad one and replaced it, and the two runs then used two keys).
    const key = randomBytes(CACHE_KEY_BYTES);
    const draft = `${file}.${process.pid}.${randomBytes(6).toString('hex')}`;
    try {
      const handle = await open(draft, 'wx', 0o600);
      try {
        await handle.writeFile(key);
      } finally {
        await handle.close();
      }
      await link(draft, file);
      return key;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      // another run created it first: read theirs
    } finally {
      await unlink(draft).catch(() => undefined);
    }
  }
  throw new Error(`cannot create the token cache key ${file}`);
}

/** The `tokenStoreKey` the CLI's Client uses with the cache: derived from the per-user cache key. */
export function cacheStoreKey(nameKey: Uint8Array): Buffer {
  return createHmac('sha256', nameKey).update('oauth-client-credentials/cli/token-store-key').digest();
}
