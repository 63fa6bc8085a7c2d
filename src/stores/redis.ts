/**
 * `RedisTokenStore` (`oauth-client-credentials/redis`): tokens in Redis, shared by a fleet of processes on many machines,
 * with a lease so that the fleet makes one token request per expiry window. Works with a node-redis client
 * (`createClient`, `createCluster`, `createSentinel`) or an ioredis client (`new Redis` — also with `sentinels` and
 * `name` —, `new Cluster`) that the caller owns, over `redis://` or `rediss://` (TLS).
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { InvalidOptionError, TokenStoreError } from '../errors.js';
import type { OAuthToken } from '../token.js';
import { TokenWaiters, checkLeaseOption, isStoredToken, type TokenLease, type TokenStore } from './tokenStore.js';

export type { TokenStore, TokenLease } from './tokenStore.js';

/**
 * A Redis client the store can use: a node-redis v5+ client or cluster (has `sendCommand`), or an ioredis v5+
 * client or cluster (has `call`). Connect it before the first request, and give it an `error` listener (node-redis
 * throws unhandled `error` events while Redis is down).
 */
export type RedisClientLike = { sendCommand(...args: never[]): unknown } | { call(...args: never[]): unknown };

/** Options of {@link RedisTokenStore}. */
export interface RedisTokenStoreOptions {
  /** A connected node-redis or ioredis client; the store never closes it. */
  client: RedisClientLike;
  /** Prefix of every key and of the pub/sub channel; must not contain `{` or `}`. Default `client-credentials:`. */
  prefix?: string;
  /** Lease time in ms; see {@link TokenStore.leaseTtl}. Default 5,000. */
  leaseTtl?: number;
  /** Wait bound in ms; see {@link TokenStore.leaseWait}. */
  leaseWait?: number;
  /**
   * Wake waiting processes through pub/sub as soon as the token is stored (the store opens one subscriber
   * connection with `client.duplicate()` on first use, closed by `close()` or when the client ends).
   * `false`: waiting processes poll with jitter. Default true.
   */
  pubsub?: boolean;
}

/** The few operations the store needs, whatever the client library. */
interface RedisAdapter {
  readonly library: 'node-redis' | 'ioredis';
  /** Sends one command; `key` routes it in a cluster. */
  command(args: string[], key?: string): Promise<unknown>;
  /** False while the client is known to be reconnecting (then commands fail fast instead of queueing). */
  usable(): boolean;
  /** Opens a subscriber connection on `channel`; resolves its closer. */
  subscribe(channel: string, onMessage: (message: string) => void): Promise<() => Promise<void>>;
  /** Calls `listener` when the caller's client is closed for good; returns the unsubscriber. */
  onEnd(listener: () => void): () => void;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the two client libraries are reached by shape
type Loose = Record<string, any>;

/** Compare-and-delete of a lease: only its owner releases it. */
const RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";
/** Compare-and-renew of a lease. */
const EXTEND = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";
/** Compare-and-delete of a token: deletes it when it is the given access token (or unreadable). */
const DELETE_IF = `local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local ok, t = pcall(cjson.decode, v)
if ok and type(t) == 'table' and t.accessToken ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])`;

/**
 * Compare-and-set of a token: stores ARGV[1] for ARGV[2] ms unless the stored token expires later than ARGV[3]
 * (unix seconds). Returns 1 when it stored it. A stored value without an access token is corrupt, never newer.
 */
const SET_IF_NOT_NEWER = `local v = redis.call('GET', KEYS[1])
if v then
  local ok, t = pcall(cjson.decode, v)
  if ok and type(t) == 'table' and type(t.accessToken) == 'string' and t.accessToken ~= '' and type(t.expiry) == 'number' and t.expiry > tonumber(ARGV[3]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`;

/**
 * Keeps tokens in Redis so that a fleet shares one token per cache key and fetches it once per expiry window.
 *
 * - Keys: `<prefix>{<hash>}` for the token and `<prefix>{<hash>}:lease` for its lease, where `<hash>` is the
 *   Client's SHA-256 of the cache key: no secret ever appears in a key, and the `{…}` hash tag puts both keys of one
 *   token in one Redis Cluster slot.
 * - Values: the token as JSON with its absolute `expiry`; `SET … PX <ttl>` so Redis drops it when it expires.
 * - Lease: `SET <lease> <owner> NX PX <leaseTtl>` with a unique owner; renewed and released through Lua
 *   compare-and-set scripts, so a slow holder never renews or releases someone else's lease.
 * - Waiting: a `PUBLISH` on `<prefix>token-set` wakes the waiting processes (one subscriber connection per store),
 *   or they poll with jitter.
 * - Outage: while the client reconnects, operations fail fast; the Client falls back to its in-process cache and
 *   uses Redis again once it is back.
 *
 * @example
 * ```ts
 * import { createClient } from 'redis';
 * import { Client } from 'oauth-client-credentials';
 * import { RedisTokenStore } from 'oauth-client-credentials/redis';
 *
 * const redis = createClient({ url: process.env.REDIS_URL });
 * redis.on('error', (error) => log.warn({ error }, 'redis'));
 * await redis.connect();
 * const client = new Client({ baseUrl, tokenUrl, clientCredentialsAuthCredentials, tokenStore: new RedisTokenStore({ client: redis }) });
 * ```
 */
export class RedisTokenStore implements TokenStore {
  /** The key prefix. */
  readonly prefix: string;
  readonly leaseTtl: number | undefined;
  readonly leaseWait: number | undefined;
  readonly #redis: RedisAdapter;
  readonly #pubsub: boolean;
  readonly #owner = `${hostname()}:${process.pid}`;
  readonly #waiters = new TokenWaiters();
  #subscription: Promise<(() => Promise<void>) | undefined> | undefined;
  #subscribed = false;
  #retrySubscribeAt = 0;
  #closed = false;
  #offEnd: (() => void) | undefined;

  constructor(options: RedisTokenStoreOptions) {
    if (typeof options !== 'object' || options === null) throw new InvalidOptionError('RedisTokenStore options', 'must be an object with a `client`');
    this.#redis = adapt(options.client);
    const prefix = options.prefix ?? 'client-credentials:';
    if (typeof prefix !== 'string' || /[{}]/.test(prefix)) throw new InvalidOptionError('RedisTokenStore.prefix', 'must be a string without `{` or `}` (they would break the hash tag)');
    this.prefix = prefix;
    this.leaseTtl = checkLeaseOption('RedisTokenStore.leaseTtl', options.leaseTtl);
    this.leaseWait = checkLeaseOption('RedisTokenStore.leaseWait', options.leaseWait);
    this.#pubsub = options.pubsub ?? true;
  }

  /** Which client library the store detected. */
  get library(): 'node-redis' | 'ioredis' {
    return this.#redis.library;
  }

  /** The Redis key of a token (`<prefix>{<key>}`). */
  tokenKey(key: string): string {
    return `${this.prefix}{${key}}`;
  }

  /** The Redis key of a token's lease, in the token key's hash slot. */
  leaseKey(key: string): string {
    return `${this.tokenKey(key)}:lease`;
  }

  /** The pub/sub channel on which stored keys are announced. */
  get channel(): string {
    return `${this.prefix}token-set`;
  }

  async get(key: string): Promise<OAuthToken | undefined> {
    const redisKey = this.tokenKey(key);
    const raw = await this.#run('get', ['GET', redisKey], redisKey);
    if (raw === null || raw === undefined) return undefined;
    try {
      const value: unknown = JSON.parse(String(raw));
      return isStoredToken(value) ? value : undefined;
    } catch {
      return undefined; // corrupt: ignored, and overwritten by the next set
    }
  }

  async set(key: string, token: OAuthToken, ttlMs: number): Promise<void> {
    const ttl = Math.ceil(ttlMs);
    if (!(ttl > 0)) return;
    const redisKey = this.tokenKey(key);
    await this.#run('set', ['SET', redisKey, JSON.stringify(token), 'PX', String(ttl)], redisKey);
    if (this.#pubsub) await this.#run('publish', ['PUBLISH', this.channel, key]);
  }

  /** Stores `token` unless the stored one expires later, atomically (a Lua script); see {@link TokenStore.setIfNotNewer}. */
  async setIfNotNewer(key: string, token: OAuthToken, ttlMs: number): Promise<boolean> {
    const ttl = Math.ceil(ttlMs);
    if (!(ttl > 0)) return false;
    const redisKey = this.tokenKey(key);
    const expiry = typeof token.expiry === 'number' && Number.isFinite(token.expiry) ? String(token.expiry) : '-1e308';
    const stored = Number(await this.#run('set', ['EVAL', SET_IF_NOT_NEWER, '1', redisKey, JSON.stringify(token), String(ttl), expiry], redisKey)) === 1;
    if (stored && this.#pubsub) await this.#run('publish', ['PUBLISH', this.channel, key]);
    return stored;
  }

  async delete(key: string, accessToken?: string): Promise<void> {
    const redisKey = this.tokenKey(key);
    if (accessToken === undefined) await this.#run('delete', ['DEL', redisKey], redisKey);
    else await this.#run('delete', ['EVAL', DELETE_IF, '1', redisKey, accessToken], redisKey);
  }

  async acquireLease(key: string, ttlMs: number): Promise<TokenLease | undefined> {
    const leaseKey = this.leaseKey(key);
    const owner = `${this.#owner}:${randomUUID()}`;
    const reply = await this.#run('acquireLease', ['SET', leaseKey, owner, 'NX', 'PX', String(Math.ceil(ttlMs))], leaseKey);
    if (reply === null || reply === undefined) return undefined;
    return {
      release: async () => {
        await this.#run('release', ['EVAL', RELEASE, '1', leaseKey, owner], leaseKey);
      },
      extend: async (ms: number) => Number(await this.#run('extendLease', ['EVAL', EXTEND, '1', leaseKey, owner, String(Math.ceil(ms))], leaseKey)) === 1,
    };
  }

  async waitForToken(key: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const subscribed = await this.#subscribe(timeoutMs);
    const left = deadline - Date.now();
    if (left <= 0) return;
    if (!subscribed) {
      await sleep(Math.max(1, Math.floor(left * (0.5 + Math.random() / 2))));
      return;
    }
    await this.#waiters.wait(key, left);
  }

  /** Closes the subscriber connection this store opened (never the client it was given) and wakes every waiter. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#offEnd?.();
    this.#offEnd = undefined;
    this.#waiters.wakeAll();
    const subscription = this.#subscription;
    this.#subscription = undefined;
    this.#subscribed = false;
    const closer = await subscription?.catch(() => undefined);
    await closer?.().catch(() => undefined);
  }

  /**
   * Whether pub/sub can wake this wait: starts the subscription (or retries it, at most every 5 s) and waits for
   * it up to `timeoutMs`.
   */
  async #subscribe(timeoutMs: number): Promise<boolean> {
    if (!this.#pubsub || this.#closed) return false;
    if (this.#subscribed) return true;
    if (!this.#subscription && Date.now() >= this.#retrySubscribeAt) {
      const attempt: Promise<(() => Promise<void>) | undefined> = this.#redis
        .subscribe(this.channel, (message) => this.#waiters.wake(message))
        .then(
          (closer) => {
            if (this.#closed) {
              void closer().catch(() => undefined);
              return undefined;
            }
            this.#subscribed = true;
            // The subscriber must not outlive the caller's client.
            this.#offEnd = this.#redis.onEnd(() => void this.close());
            return closer;
          },
          () => {
            this.#retrySubscribeAt = Date.now() + 5_000;
            if (this.#subscription === attempt) this.#subscription = undefined;
            return undefined;
          },
        );
      this.#subscription = attempt;
    }
    const pending = this.#subscription;
    if (!pending) return false;
    let timer: NodeJS.Timeout | undefined;
    const closer = await Promise.race([pending, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), timeoutMs)))]);
    clearTimeout(timer);
    return closer !== undefined && this.#subscribed;
  }

  async #run(operation: string, args: string[], key?: string): Promise<unknown> {
    if (!this.#redis.usable()) throw new TokenStoreError(operation, `Redis ${operation} skipped: the ${this.#redis.library} client is reconnecting`);
    try {
      return await this.#redis.command(args, key);
    } catch (error) {
      // The library's error may carry the command's arguments (a token): keep only its name and message.
      const name = (error as Error)?.name ?? 'Error';
      const message = String((error as Error)?.message ?? error).slice(0, 200);
      throw new TokenStoreError(operation, `Redis ${operation} failed: ${name}: ${message}`);
    }
  }
}

/** Detects the client library by shape and wraps it. */
function adapt(client: unknown): RedisAdapter {
  if (typeof client !== 'object' || client === null) throw new InvalidOptionError('RedisTokenStore.client', 'must be a node-redis or ioredis client');
  const c = client as Loose;
  if (typeof c.call === 'function' && typeof c.status === 'string') return ioredisAdapter(c);
  if (typeof c.sendCommand === 'function' && typeof c.duplicate === 'function') return nodeRedisAdapter(c);
  throw new InvalidOptionError('RedisTokenStore.client', 'must be a node-redis client (createClient, createCluster, createSentinel) or an ioredis client (new Redis, new Cluster)');
}

function nodeRedisAdapter(c: Loose): RedisAdapter {
  const cluster = typeof c.nodeClient === 'function' || typeof c.getSlotMaster === 'function';
  // A sentinel client (createSentinel) takes `sendCommand(isReadonly, args)`; given `sendCommand(args)` it failed with a TypeError.
  const sentinel = !cluster && (typeof c.getMasterNode === 'function' || typeof c.getSentinelNode === 'function');
  let seenReady = false;
  return {
    library: 'node-redis',
    command: (args, key) => (cluster ? c.sendCommand(key, false, args) : sentinel ? c.sendCommand(false, args) : c.sendCommand(args)),
    usable() {
      if (c.isReady === true) return (seenReady = true);
      return !seenReady || c.isReady === undefined;
    },
    async subscribe(channel, onMessage) {
      const sub = c.duplicate() as Loose;
      sub.on?.('error', () => undefined);
      await sub.connect();
      sub.unref?.();
      try {
        await sub.subscribe(channel, (message: unknown) => onMessage(String(message)));
      } catch (error) {
        if (typeof sub.destroy === 'function') sub.destroy();
        else await sub.disconnect?.();
        throw error;
      }
      return async () => {
        if (typeof sub.destroy === 'function') sub.destroy();
        else await sub.disconnect?.();
      };
    },
    onEnd(listener) {
      c.on?.('end', listener);
      return () => c.off?.('end', listener);
    },
  };
}

function ioredisAdapter(c: Loose): RedisAdapter {
  let seenReady = false;
  return {
    library: 'ioredis',
    command: (args) => c.call(args[0], ...args.slice(1)),
    usable() {
      const status = c.status as string;
      if (status === 'ready') return (seenReady = true);
      if (status === 'end' || status === 'close') return false;
      return !seenReady || (status !== 'reconnecting' && status !== 'connecting');
    },
    async subscribe(channel, onMessage) {
      const sub = c.duplicate() as Loose;
      sub.on('error', () => undefined);
      sub.on('message', (ch: string, message: string) => {
        if (ch === channel) onMessage(String(message));
      });
      try {
        await sub.subscribe(channel);
      } catch (error) {
        sub.disconnect();
        throw error;
      }
      return async () => {
        await sub.quit().catch(() => sub.disconnect());
      };
    },
    onEnd(listener) {
      c.on?.('end', listener);
      return () => c.off?.('end', listener);
    },
  };
}
