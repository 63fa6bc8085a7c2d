/**
 * `FileTokenStore`: tokens in one JSON file, shared by the processes of one machine (a CLI run from several shells,
 * workers of one host), with a lock file per key so that they make one token request between them.
 */
import { createHash, randomUUID } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { link, mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { hostname, homedir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { InvalidOptionError, TokenStoreError } from '../errors.js';
import type { OAuthToken } from '../token.js';
import { checkLeaseOption, isStoredToken, type TokenLease, type TokenStore } from './tokenStore.js';

/** Options of {@link FileTokenStore}. */
export interface FileTokenStoreOptions {
  /** The JSON file. Default {@link defaultTokenFilePath}(): `$XDG_CACHE_HOME/client-credentials/tokens.json` or `~/.cache/client-credentials/tokens.json`. */
  path?: string;
  /** Most tokens kept in the file; expired ones go first, then those expiring soonest. Default 1,000. */
  maxEntries?: number;
  /** Lease time in ms; see {@link TokenStore.leaseTtl}. Default 5,000. */
  leaseTtl?: number;
  /** Wait bound in ms; see {@link TokenStore.leaseWait}. */
  leaseWait?: number;
  /** How long a write waits for the file's write lock before it gives up (and the Client goes on without the store). Default 2,000 ms. */
  lockTimeout?: number;
  /** The clock TTLs and lock expiries run on, in milliseconds. Default `Date.now`. */
  now?: () => number;
}

/** The file's JSON shape. */
interface FileData {
  version: 1;
  entries: Record<string, { token: OAuthToken; expiresAt: number }>;
}

/** What a lock or lease file holds. */
interface LockRecord {
  owner: string;
  pid: number;
  host: string;
  expiresAt: number;
}

/** A write lock is held for one read-modify-write: if its holder died, it is taken over after this long. */
const WRITE_LOCK_TTL = 10_000;

/**
 * The default token file: `$XDG_CACHE_HOME/client-credentials/tokens.json`, else `~/.cache/client-credentials/tokens.json`.
 *
 * @see https://specifications.freedesktop.org/basedir-spec/latest/
 */
export function defaultTokenFilePath(env: Readonly<Record<string, string | undefined>> = process.env, home: string = homedir()): string {
  const xdg = env.XDG_CACHE_HOME;
  const base = xdg && path.isAbsolute(xdg) ? xdg : path.join(home, '.cache');
  return path.join(base, 'client-credentials', 'tokens.json');
}

/**
 * Keeps tokens in one JSON file so the processes of one machine share them and fetch each one once.
 *
 * - Writes are atomic: a temporary file in the same directory, fsync, then rename; the file has mode 0600 and a
 *   directory it creates has mode 0700. Each read-modify-write holds a short write lock (`<path>.lock`).
 * - Leases are lock files (`<path>.<key>.lease`) created atomically with their owner and expiry; a lease whose
 *   holder died is taken over once it expires, and only its owner removes it.
 * - A corrupt file reads as empty and is overwritten by the next write.
 *
 * The file holds access tokens: keep it on a local disk that only this user can read.
 *
 * @example
 * ```ts
 * import { Client, FileTokenStore } from 'oauth-client-credentials';
 * const client = new Client({ tokenUrl, clientCredentialsAuthCredentials, tokenStore: new FileTokenStore() });
 * ```
 */
export class FileTokenStore implements TokenStore {
  /** The JSON file. */
  readonly path: string;
  readonly leaseTtl: number | undefined;
  readonly leaseWait: number | undefined;
  readonly #maxEntries: number;
  readonly #lockTimeout: number;
  readonly #now: () => number;
  readonly #id = `${hostname()}:${process.pid}:${randomUUID()}`;
  #dirReady = false;

  constructor(options: FileTokenStoreOptions = {}) {
    if (options.path !== undefined && (typeof options.path !== 'string' || options.path === '')) throw new InvalidOptionError('FileTokenStore.path', 'must be a non-empty string');
    const max = options.maxEntries ?? 1_000;
    if (!Number.isInteger(max) || max < 1) throw new InvalidOptionError('FileTokenStore.maxEntries', 'must be a positive integer');
    if (options.now !== undefined && typeof options.now !== 'function') throw new InvalidOptionError('FileTokenStore.now', 'must be a function');
    this.path = path.resolve(options.path ?? defaultTokenFilePath());
    this.#maxEntries = max;
    this.#lockTimeout = checkLeaseOption('FileTokenStore.lockTimeout', options.lockTimeout) ?? 2_000;
    this.#now = options.now ?? Date.now;
    this.leaseTtl = checkLeaseOption('FileTokenStore.leaseTtl', options.leaseTtl);
    this.leaseWait = checkLeaseOption('FileTokenStore.leaseWait', options.leaseWait);
  }

  async get(key: string): Promise<OAuthToken | undefined> {
    const entry = (await this.#read()).entries[key];
    if (!entry || !(entry.expiresAt > this.#now()) || !isStoredToken(entry.token)) return undefined;
    return entry.token;
  }

  async set(key: string, token: OAuthToken, ttlMs: number): Promise<void> {
    if (!(ttlMs > 0)) return;
    await this.#update('set', (data) => {
      data.entries[key] = { token: JSON.parse(JSON.stringify(token)) as OAuthToken, expiresAt: this.#now() + ttlMs };
    });
  }

  async delete(key: string, accessToken?: string): Promise<void> {
    await this.#update('delete', (data) => {
      const entry = data.entries[key];
      if (!entry) return false;
      if (accessToken !== undefined && isStoredToken(entry.token) && entry.token.accessToken !== accessToken) return false;
      delete data.entries[key];
    });
  }

  async acquireLease(key: string, ttlMs: number): Promise<TokenLease | undefined> {
    await this.#ensureDir();
    const file = `${this.path}.${fileSafe(key)}.lease`;
    const owner = `${this.#id}:${randomUUID()}`;
    const record = (): string => JSON.stringify({ owner, pid: process.pid, host: hostname(), expiresAt: this.#now() + ttlMs } satisfies LockRecord);
    if (!(await this.#createExclusive(file, record()))) {
      if (!(await this.#removeIfStale(file, ttlMs))) return undefined;
      if (!(await this.#createExclusive(file, record()))) return undefined;
    }
    return {
      release: async () => {
        const raw = await readText(file);
        if (raw !== undefined && parseLock(raw)?.owner === owner) await removeIfUnchanged(file, raw);
      },
      extend: async (ms: number) => {
        const raw = await readText(file);
        if (raw === undefined || parseLock(raw)?.owner !== owner) return false;
        await this.#writeAtomic(file, JSON.stringify({ ...parseLock(raw)!, expiresAt: this.#now() + ms }));
        return true;
      },
    };
  }

  /** The file's contents; a missing file or a corrupt one reads as empty. */
  async #read(): Promise<FileData> {
    const raw = await readText(this.path);
    if (raw === undefined) return { version: 1, entries: {} };
    try {
      const data = JSON.parse(raw) as FileData;
      if (typeof data === 'object' && data !== null && data.version === 1 && typeof data.entries === 'object' && data.entries !== null && !Array.isArray(data.entries)) {
        return data;
      }
    } catch {
      // corrupt: ignored, and overwritten by the next write
    }
    return { version: 1, entries: {} };
  }

  /** One read-modify-write under the write lock; `change` returns false when it changed nothing. */
  async #update(operation: string, change: (data: FileData) => boolean | void): Promise<void> {
    await this.#ensureDir();
    const lock = `${this.path}.lock`;
    const deadline = Date.now() + this.#lockTimeout;
    const record = JSON.stringify({ owner: `${this.#id}:${randomUUID()}`, pid: process.pid, host: hostname(), expiresAt: this.#now() + WRITE_LOCK_TTL } satisfies LockRecord);
    while (!(await this.#createExclusive(lock, record))) {
      if (await this.#removeIfStale(lock, WRITE_LOCK_TTL)) continue;
      if (Date.now() >= deadline) throw new TokenStoreError(operation, `FileTokenStore: the write lock ${lock} stayed busy for ${this.#lockTimeout} ms`);
      await sleep(5 + Math.floor(Math.random() * 15));
    }
    try {
      const data = await this.#read();
      if (change(data) === false) return;
      this.#prune(data);
      await this.#writeAtomic(this.path, JSON.stringify(data));
    } finally {
      await removeIfUnchanged(lock, record);
    }
  }

  #prune(data: FileData): void {
    const now = this.#now();
    const entries = Object.entries(data.entries).filter(([, e]) => typeof e === 'object' && e !== null && e.expiresAt > now && isStoredToken(e.token));
    entries.sort((a, b) => b[1].expiresAt - a[1].expiresAt);
    data.entries = Object.fromEntries(entries.slice(0, this.#maxEntries));
  }

  /** Writes `content` to a temporary file beside `file` (mode 0600), fsyncs it and renames it over `file`. */
  async #writeAtomic(file: string, content: string): Promise<void> {
    const temp = `${file}.${process.pid}.${randomUUID()}.tmp`;
    const handle = await open(temp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
    try {
      await handle.writeFile(content, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await rename(temp, file);
    } catch (error) {
      await unlink(temp).catch(() => undefined);
      throw error;
    }
  }

  /** Creates `file` with `content` atomically, only if it does not exist (link of a complete temporary file). */
  async #createExclusive(file: string, content: string): Promise<boolean> {
    const temp = `${file}.${process.pid}.${randomUUID()}.tmp`;
    const handle = await open(temp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
    try {
      await handle.writeFile(content, 'utf8');
    } finally {
      await handle.close();
    }
    try {
      await link(temp, file);
      return true;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') return false;
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'ENOSYS' && code !== 'EOPNOTSUPP') throw error;
      return createWithOExcl(file, content); // a file system without hard links
    } finally {
      await unlink(temp).catch(() => undefined);
    }
  }

  /** Removes the lock file `file` when its holder's time ran out (or it is unreadable and older than `ttlMs`). */
  async #removeIfStale(file: string, ttlMs: number): Promise<boolean> {
    const raw = await readText(file);
    if (raw === undefined) return true;
    const record = parseLock(raw);
    if (record) {
      if (record.expiresAt > this.#now()) return false;
    } else {
      const info = await stat(file).catch(() => undefined);
      if (info && info.mtimeMs + ttlMs > Date.now()) return false;
    }
    return removeIfUnchanged(file, raw);
  }

  async #ensureDir(): Promise<void> {
    if (this.#dirReady) return;
    await mkdir(path.dirname(this.path), { recursive: true, mode: 0o700 });
    this.#dirReady = true;
  }
}

/** A key as a file name part: the key itself when it is base64url (the Client's hashes are), else its SHA-256. */
function fileSafe(key: string): string {
  return /^[A-Za-z0-9_-]{1,100}$/.test(key) ? key : createHash('sha256').update(key).digest('base64url');
}

/** Creates `file` with O_EXCL and writes `content` (a reader may briefly see it empty: it is then judged by its age). */
async function createWithOExcl(file: string, content: string): Promise<boolean> {
  let handle;
  try {
    handle = await open(file, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
  try {
    await handle.writeFile(content, 'utf8');
  } finally {
    await handle.close();
  }
  return true;
}

function parseLock(raw: string): LockRecord | undefined {
  try {
    const value = JSON.parse(raw) as LockRecord;
    return typeof value === 'object' && value !== null && typeof value.owner === 'string' && typeof value.expiresAt === 'number' ? value : undefined;
  } catch {
    return undefined;
  }
}

async function readText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * Removes `file` only if it still holds `expected`: it is first renamed to a private name (atomic, so two processes
 * never both remove it), then checked; a file that changed meanwhile (someone else's new lock) is put back.
 */
async function removeIfUnchanged(file: string, expected: string): Promise<boolean> {
  const aside = `${file}.${process.pid}.${randomUUID()}.gone`;
  try {
    await rename(file, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  const raw = await readText(aside);
  if (raw === expected) {
    await unlink(aside).catch(() => undefined);
    return true;
  }
  await link(aside, file).catch(() => undefined); // put it back, unless a newer one already took its place
  await unlink(aside).catch(() => undefined);
  return false;
}
