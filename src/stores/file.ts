/**
 * `FileTokenStore`: tokens in one JSON file, shared by the processes of one machine (a CLI run from several shells,
 * workers of one host), with a lock file per key so that they make one token request between them.
 */
import { createHash, randomUUID } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { realpathSync, statSync } from 'node:fs';
import { link, lstat, mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { hostname, homedir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { InvalidOptionError, TokenStoreError, UnsafeTokenStoreFolderError } from '../errors.js';
import type { OAuthToken } from '../token.js';
import { checkLeaseOption, isNewerEntry, isStoredToken, type TokenLease, type TokenStore } from './tokenStore.js';

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
  /**
   * How long a write waits for the file's write lock before it gives up (and the Client goes on without the store).
   * Default 750 ms: below the Client's default `tokenStoreTimeout` (1 s), so a write the Client gave up on does not
   * land much later (and a late one never replaces a newer token: writes are compare-and-set).
   */
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
 * Every change to an existing lock or lease file (renewal, release, breaking a stale one) runs under a short guard
 * file `<file>.cas`, held for a few file operations: a guard older than this is left by a dead process and broken.
 */
const GUARD_STALE = 2_000;
/** How far a lock's recorded expiry may be ahead of the lock time before it is distrusted (clock steps, plants). */
const EXPIRY_SLACK = 1_000;
/**
 * A temporary file of this store's naming pattern older than this (by its mtime) is a leftover of a writer that died
 * between creating and renaming it (SIGKILL, power loss), and is removed. A write lives a few milliseconds, and a
 * writer this late has lost the write lock (WRITE_LOCK_TTL) and every guard long before. The age is all that counts:
 * the pid in the name may be another host's or another container's (a shared volume), so it proves nothing here.
 */
const TEMP_STALE = 5 * 60_000;
/** How often (on the store's clock) a long-lived store looks for leftover temporary files again. */
const TEMP_SWEEP_EVERY = 60_000;

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
 * - Leases are lock files (`<path>.<key>.lease`) created atomically with their owner, pid, host and expiry. A lease
 *   or write lock whose holder is a dead pid on this host is broken at once; one that expired is taken over; an
 *   expiry further ahead than the lease time (a clock step, a planted file) is not believed: the file's age counts.
 *   Renewal, release and takeover are compare-and-swap under a short guard file (`<file>.cas`), so a renewal never
 *   overwrites another holder's lease and a release never drops one.
 * - Writes are compare-and-set (`setIfNotNewer`): a token never replaces a stored one that expires later.
 * - The folder must belong to this process's user and be writable by nobody else, and every folder above it must
 *   belong to this user or root and be writable by others only with the sticky bit (checked by the constructor when
 *   it exists and before first use; once all are safe, only this user or root can change them): else
 *   {@link UnsafeTokenStoreFolderError}.
 * - A corrupt file reads as empty and is overwritten by the next write.
 * - Temporary files left by a writer that died mid-write (`<path>.<pid>.<uuid>.tmp`, `<path>.lock.<pid>.<uuid>.tmp`,
 *   `<path>.<key>.lease.<pid>.<uuid>.tmp`) are removed at first use and then at most once a minute, once their mtime
 *   is 5 minutes old; fresher ones may be another process's write in progress and are left alone. Nothing else in
 *   the folder is touched (symbolic links and folders included).
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
  #lastSweep: number | undefined;

  constructor(options: FileTokenStoreOptions = {}) {
    if (options.path !== undefined && (typeof options.path !== 'string' || options.path === '')) throw new InvalidOptionError('FileTokenStore.path', 'must be a non-empty string');
    const max = options.maxEntries ?? 1_000;
    if (!Number.isInteger(max) || max < 1) throw new InvalidOptionError('FileTokenStore.maxEntries', 'must be a positive integer');
    if (options.now !== undefined && typeof options.now !== 'function') throw new InvalidOptionError('FileTokenStore.now', 'must be a function');
    this.path = path.resolve(options.path ?? defaultTokenFilePath());
    this.#maxEntries = max;
    this.#lockTimeout = checkLeaseOption('FileTokenStore.lockTimeout', options.lockTimeout) ?? 750;
    this.#now = options.now ?? Date.now;
    this.leaseTtl = checkLeaseOption('FileTokenStore.leaseTtl', options.leaseTtl);
    this.leaseWait = checkLeaseOption('FileTokenStore.leaseWait', options.leaseWait);
    // Refused at once when the folder already exists and is unsafe (checked again before first use).
    const info = statSync(path.dirname(this.path), { throwIfNoEntry: false });
    if (info) checkFolderChain(path.dirname(this.path));
  }

  async get(key: string): Promise<OAuthToken | undefined> {
    await this.#ensureDir();
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

  /** Stores `token` unless the entry under `key` expires later, under the write lock; see {@link TokenStore.setIfNotNewer}. */
  async setIfNotNewer(key: string, token: OAuthToken, ttlMs: number): Promise<boolean> {
    if (!(ttlMs > 0)) return false;
    let stored = false;
    await this.#update('set', (data) => {
      const current = data.entries[key];
      if (current && current.expiresAt > this.#now() && isNewerEntry(current.token, token)) return false;
      data.entries[key] = { token: JSON.parse(JSON.stringify(token)) as OAuthToken, expiresAt: this.#now() + ttlMs };
      stored = true;
    });
    return stored;
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
        await this.#guarded(file, async () => {
          const raw = await readText(file);
          if (raw !== undefined && parseLock(raw)?.owner === owner) await unlinkIfExists(file);
        });
      },
      extend: async (ms: number) =>
        this.#guarded(file, async () => {
          const raw = await readText(file);
          const current = raw === undefined ? undefined : parseLock(raw);
          if (current?.owner !== owner) return false;
          await this.#writeAtomic(file, JSON.stringify({ ...current, expiresAt: this.#now() + ms } satisfies LockRecord));
          return true;
        }),
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
    // Writers of one process take turns here first, so only one of them polls the file lock at a time.
    const done = await localTurn(this.path, deadline, operation, this.#lockTimeout);
    try {
      await this.#locked(operation, lock, deadline, change);
    } finally {
      done();
    }
  }

  async #locked(operation: string, lock: string, deadline: number, change: (data: FileData) => boolean | void): Promise<void> {
    const record = JSON.stringify({ owner: `${this.#id}:${randomUUID()}`, pid: process.pid, host: hostname(), expiresAt: this.#now() + WRITE_LOCK_TTL } satisfies LockRecord);
    while (!(await this.#createExclusive(lock, record))) {
      if (await this.#removeIfStale(lock, WRITE_LOCK_TTL)) continue;
      if (Date.now() >= deadline) throw new TokenStoreError(operation, `FileTokenStore: the write lock ${lock} stayed busy for ${this.#lockTimeout} ms`);
      await sleep(2 + Math.floor(Math.random() * 8));
    }
    try {
      const data = await this.#read();
      if (change(data) === false) return;
      this.#prune(data);
      await this.#writeAtomic(this.path, JSON.stringify(data));
    } finally {
      await this.#guarded(lock, async () => {
        if ((await readText(lock)) === record) await unlinkIfExists(lock);
      });
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

  /**
   * Removes the lock file `file` when its holder is gone: its time ran out, its pid is dead on this host, or its
   * expiry lies further ahead than `ttlMs` (a clock step or a planted file: it then counts from the file's mtime).
   * An unreadable one counts from its mtime too. Runs under the file's guard, so a live lock is never dropped.
   */
  async #removeIfStale(file: string, ttlMs: number): Promise<boolean> {
    // A first look without the guard, so that waiters polling a live lock do not contend with its holder.
    const seen = await readText(file);
    if (seen === undefined) return true;
    if (!(await this.#isStale(file, seen, ttlMs))) return false;
    return this.#guarded(file, async () => {
      const raw = await readText(file);
      if (raw === undefined) return true;
      if (!(await this.#isStale(file, raw, ttlMs))) return false;
      await unlinkIfExists(file);
      return true;
    });
  }

  async #isStale(file: string, raw: string, ttlMs: number): Promise<boolean> {
    const record = parseLock(raw);
    if (record && record.host === hostname() && typeof record.pid === 'number' && record.pid !== process.pid && !pidAlive(record.pid)) return true;
    const now = this.#now();
    if (record && record.expiresAt <= now) return true;
    if (record && record.expiresAt <= now + ttlMs + EXPIRY_SLACK) return false;
    // No record, or an expiry further ahead than any holder could have written: judged by the file's age.
    const info = await stat(file).catch(() => undefined);
    if (!info) return true;
    const age = Date.now() - info.mtimeMs;
    return age >= ttlMs || age < -EXPIRY_SLACK;
  }

  /**
   * Runs `action` while holding `<file>.cas`: every change to an existing lock or lease file goes through it, so a
   * renewal, a release and a takeover never interleave (compare-and-swap). Waits at most the lock timeout.
   */
  async #guarded<T>(file: string, action: () => Promise<T>): Promise<T> {
    const guard = `${file}.cas`;
    // A guard is held for a few file operations and broken once older than GUARD_STALE, so this wait always ends.
    const deadline = Date.now() + Math.max(this.#lockTimeout, GUARD_STALE + 500);
    const mark = JSON.stringify({ pid: process.pid, host: hostname() });
    for (;;) {
      try {
        const handle = await open(guard, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
        try {
          await handle.writeFile(mark, 'utf8');
        } finally {
          await handle.close();
        }
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const info = await stat(guard).catch(() => undefined);
      const holder = parseMark(await readText(guard).catch(() => undefined));
      const dead = holder !== undefined && holder.host === hostname() && holder.pid !== process.pid && !pidAlive(holder.pid);
      if (!info || dead || Date.now() - info.mtimeMs > GUARD_STALE) {
        await unlinkIfExists(guard);
        continue;
      }
      if (Date.now() >= deadline) throw new TokenStoreError('lock', `FileTokenStore: ${guard} stayed busy for ${this.#lockTimeout} ms`);
      await sleep(2 + Math.floor(Math.random() * 5));
    }
    try {
      return await action();
    } finally {
      await unlinkIfExists(guard);
    }
  }

  async #ensureDir(): Promise<void> {
    if (!this.#dirReady) {
      const folder = path.dirname(this.path);
      await mkdir(folder, { recursive: true, mode: 0o700 });
      checkFolderChain(folder);
      this.#dirReady = true;
    }
    const now = this.#now();
    if (this.#lastSweep === undefined || !(now - this.#lastSweep < TEMP_SWEEP_EVERY && now >= this.#lastSweep)) {
      this.#lastSweep = now;
      await removeLeftoverTemps(this.path).catch(() => undefined); // best effort: a failed sweep never fails a read or write
    }
  }
}

/**
 * Whether `name` (in the folder of the token file `base`) is a temporary file this store writes: `base`, `base.lock`
 * or `base.<key>.lease` ({@link fileSafe} keys), then `.<pid>.<uuid>.tmp` with a lowercase UUID as randomUUID makes.
 */
function isOwnTempName(base: string, name: string): boolean {
  if (!name.startsWith(`${base}.`)) return false;
  return /^(?:lock\.|[A-Za-z0-9_-]{1,100}\.lease\.)?\d{1,10}\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.tmp$/.test(name.slice(base.length + 1));
}

/** Removes the regular files of {@link isOwnTempName}'s pattern beside `file` whose mtime is {@link TEMP_STALE} old. */
async function removeLeftoverTemps(file: string): Promise<void> {
  const folder = path.dirname(file);
  const base = path.basename(file);
  for (const name of await readdir(folder)) {
    if (!isOwnTempName(base, name)) continue;
    const leftover = path.join(folder, name);
    const info = await lstat(leftover).catch(() => undefined);
    if (!info?.isFile() || Date.now() - info.mtimeMs < TEMP_STALE) continue;
    await unlinkIfExists(leftover).catch(() => undefined);
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

const turns = new Map<string, Promise<void>>();

/** Waits for this process's earlier writers of `file` (until `deadline`); resolves the function that ends this turn. */
async function localTurn(file: string, deadline: number, operation: string, lockTimeout: number): Promise<() => void> {
  const previous = turns.get(file) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((resolve) => (release = resolve));
  const chained = previous.then(() => mine);
  turns.set(file, chained);
  const done = (): void => {
    release();
    if (turns.get(file) === chained) turns.delete(file);
  };
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    previous.then(() => false),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), Math.max(deadline - Date.now(), 0)))),
  ]);
  clearTimeout(timer);
  if (timedOut) {
    done();
    throw new TokenStoreError(operation, `FileTokenStore: the write lock of ${file} stayed busy for ${lockTimeout} ms`);
  }
  return done;
}

async function unlinkIfExists(file: string): Promise<void> {
  try {
    await unlink(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/** Whether a process with this pid runs on this host (EPERM: it runs, as another user). */
function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function parseMark(raw: string | undefined): { pid: number; host: string } | undefined {
  if (!raw) return undefined;
  try {
    const value = JSON.parse(raw) as { pid: number; host: string };
    return typeof value?.pid === 'number' && typeof value.host === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Refuses a folder that another user owns or that group or others may write to: either could plant tokens or
 * leases. (Skipped where the platform has no uids, i.e. Windows.)
 */
function checkFolder(folder: string, info: { uid: number; mode: number }): void {
  const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
  if (uid === undefined) return;
  if (info.uid !== uid) throw new UnsafeTokenStoreFolderError(folder, 'owner', `it is owned by uid ${info.uid}, not by this process's user (uid ${uid})`);
  if ((info.mode & 0o022) !== 0) throw new UnsafeTokenStoreFolderError(folder, 'mode', `group or others can write to it (mode ${(info.mode & 0o777).toString(8).padStart(4, '0')}); chmod it to 0700`);
}

/**
 * Checks the folder (as {@link checkFolder}) and every folder above it, symbolic links resolved: another user who
 * can write to an ancestor could rename the cache folder away and put one of their own in its place. An ancestor
 * must belong to this user or to root, and be writable by group or others only with the sticky bit (`/tmp`), where
 * nobody else may rename what is ours.
 */
function checkFolderChain(folder: string): void {
  const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
  if (uid === undefined) return;
  const real = realpathSync(folder);
  checkFolder(real, statSync(real));
  for (let current = path.dirname(real); ; current = path.dirname(current)) {
    const info = statSync(current);
    if (info.uid !== uid && info.uid !== 0) throw new UnsafeTokenStoreFolderError(current, 'owner', `a folder above the token file is owned by uid ${info.uid}, neither this process's user (uid ${uid}) nor root`);
    if ((info.mode & 0o022) !== 0 && (info.mode & 0o1000) === 0) {
      throw new UnsafeTokenStoreFolderError(current, 'mode', `group or others can write to a folder above the token file (mode ${(info.mode & 0o7777).toString(8).padStart(4, '0')}) and it has no sticky bit`);
    }
    if (path.dirname(current) === current) break;
  }
}
