/**
 * Authenticated store entries: every token a Client writes to a shared store carries an HMAC over its content,
 * keyed by a key derived (HKDF-SHA-256) from the Client's integrity key and the entry's cache key. A process that can
 * write the store (Redis, the cache folder) but does not hold that key cannot write an entry the Clients accept, so
 * it cannot make them send a token of its choosing to the API.
 *
 * The integrity key, by precedence: the `tokenStoreKey` option; else the client secret, stretched with scrypt (a
 * reader of the store who sees a token and its MAC must not be able to test guesses of a weak secret at hash speed);
 * else the private key of `private_key_jwt`; else the private key of the TLS client certificate (`tls.key`, for
 * `tls_client_auth` and `self_signed_tls_client_auth`). A Client with none of these cannot use a shared store.
 * Rotating the secret or the key changes the integrity key, so old entries stop verifying by construction.
 */
import { createHash, createHmac, createPrivateKey, hkdfSync, scrypt, timingSafeEqual, type KeyObject } from 'node:crypto';
import type { KeyObjectLike } from '../auth/clientAuthentication.js';
import type { OAuthToken } from '../token.js';

/** The field of a stored token that carries its MAC (`v1.<base64url HMAC-SHA-256>`). */
export const ENTRY_MAC_FIELD = 'mac';

const SALT = 'oauth-client-credentials/token-store-entry/v1';
const PREFIX = 'v1.';

/** scrypt cost of stretching a client secret (N = 2^14, r = 8: 16 MiB, tens of ms, once per secret and process). */
const SCRYPT = { N: 1 << 14, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;

/** Shortest `tokenStoreKey`, in bytes (UTF-8 for a string). */
export const MIN_TOKEN_STORE_KEY_BYTES = 16;

/** What a store entry turned out to be. */
export type EntryCheck =
  | { ok: true; token: OAuthToken }
  | { ok: false; reason: 'missing' | 'mismatch' };

/** The credentials an integrity key can be derived from. */
export interface EntryKeyCredentials {
  clientId?: string | undefined;
  clientSecret?: string | undefined;
  privateKey?: string | Record<string, unknown> | KeyObjectLike | undefined;
}

/** Where else key material may come from: the `tokenStoreKey` option and the TLS client certificate's key. */
export interface EntryKeySources {
  tokenStoreKey?: string | Uint8Array | undefined;
  tls?: { key?: string | Uint8Array | undefined; passphrase?: string | undefined } | undefined;
}

/** Stretched secrets, by a hash of client id and secret: Clients of one process with the same secret stretch it once. */
const stretched = new Map<string, Promise<Buffer>>();

function stretch(clientId: string, secret: string): Promise<Buffer> {
  const id = createHash('sha256').update(`${clientId}\u0000${secret}`).digest('base64url');
  let key = stretched.get(id);
  if (!key) {
    if (stretched.size >= 64) stretched.clear();
    key = new Promise<Buffer>((resolve, reject) => {
      scrypt(secret, `${SALT}\n${clientId}`, 32, SCRYPT, (error, derived) => (error ? reject(error) : resolve(derived)));
    });
    stretched.set(id, key);
  }
  return key;
}

/** The PKCS#8 DER (or secret bytes) of a private key given as PEM, JWK or KeyObject; undefined when unusable. */
function keyMaterial(key: string | Uint8Array | Record<string, unknown> | KeyObjectLike, passphrase?: string): Buffer | undefined {
  try {
    const object = typeof key === 'object' && !(key instanceof Uint8Array) && 'type' in key && typeof (key as KeyObject).export === 'function'
      ? (key as unknown as KeyObject)
      : typeof key === 'string' || key instanceof Uint8Array
        ? createPrivateKey(passphrase === undefined ? { key: Buffer.from(key) } : { key: Buffer.from(key), passphrase })
        : createPrivateKey({ key: key as never, format: 'jwk' });
    const material = object.type === 'secret' ? object.export() : object.export({ format: 'der', type: 'pkcs8' });
    return material.length > 0 ? material : undefined;
  } catch {
    return undefined; // an unusable key is reported where it is used (client authentication, TLS), not here
  }
}

/**
 * Signs and verifies store entries with keys derived from one Client's integrity key. The key material is kept only
 * inside this object (never in a message, `inspect` or JSON).
 */
export class EntryAuth {
  readonly #ikm: Promise<Buffer>;
  readonly #keys = new Map<string, Buffer>();

  /** `material`: high-entropy key bytes (a `tokenStoreKey`, a private key's PKCS#8 DER), or their promise. */
  constructor(material: Uint8Array | Promise<Uint8Array>) {
    if (material instanceof Uint8Array && material.length === 0) throw new TypeError('EntryAuth needs non-empty key material');
    this.#ikm = Promise.resolve(material).then((bytes) => Buffer.from(bytes));
    this.#ikm.catch(() => undefined);
  }

  /**
   * An EntryAuth for a Client: from `tokenStoreKey`, else the client secret (stretched with scrypt), else the
   * `private_key_jwt` key, else the TLS client certificate's key; undefined when there is none of these (then a
   * shared store cannot be used).
   */
  static fromCredentials(credentials: EntryKeyCredentials | undefined, sources: EntryKeySources = {}): EntryAuth | undefined {
    const { tokenStoreKey, tls } = sources;
    if (tokenStoreKey !== undefined) return new EntryAuth(typeof tokenStoreKey === 'string' ? Buffer.from(tokenStoreKey, 'utf8') : tokenStoreKey);
    if (typeof credentials?.clientSecret === 'string' && credentials.clientSecret !== '') return new EntryAuth(stretch(credentials.clientId ?? '', credentials.clientSecret));
    const material = (credentials?.privateKey && keyMaterial(credentials.privateKey)) || (tls?.key !== undefined ? keyMaterial(tls.key, tls.passphrase) : undefined);
    return material ? new EntryAuth(material) : undefined;
  }

  /** The token with its MAC for `key` added (a copy). */
  async sign(key: string, token: OAuthToken): Promise<OAuthToken> {
    const copy = stripMac(token);
    return { ...copy, [ENTRY_MAC_FIELD]: PREFIX + (await this.#mac(key, copy)).toString('base64url') } as OAuthToken;
  }

  /** Checks an entry read under `key`: its MAC must be present and match; resolves the token without the MAC. */
  async verify(key: string, value: OAuthToken): Promise<EntryCheck> {
    const mac = (value as unknown as Record<string, unknown>)[ENTRY_MAC_FIELD];
    if (typeof mac !== 'string' || !mac.startsWith(PREFIX)) return { ok: false, reason: 'missing' };
    const token = stripMac(value);
    const expected = await this.#mac(key, token);
    const given = Buffer.from(mac.slice(PREFIX.length), 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'mismatch' };
    return { ok: true, token };
  }

  async #mac(key: string, token: OAuthToken): Promise<Buffer> {
    return createHmac('sha256', await this.#key(key)).update(canonical(token)).digest();
  }

  async #key(key: string): Promise<Buffer> {
    let derived = this.#keys.get(key);
    if (!derived) {
      const ikm = await this.#ikm;
      if (this.#keys.size >= 1_000) this.#keys.clear();
      derived = Buffer.from(hkdfSync('sha256', ikm, SALT, `entry:${key}`, 32));
      this.#keys.set(key, derived);
    }
    return derived;
  }

  /** Never shows the key material. */
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return 'EntryAuth {}';
  }

  toJSON(): Record<string, never> {
    return {};
  }
}

/** A copy of `token` without its MAC field. */
export function stripMac(token: OAuthToken): OAuthToken {
  if (!(ENTRY_MAC_FIELD in token)) return { ...token };
  const { [ENTRY_MAC_FIELD]: _mac, ...rest } = token as OAuthToken & { mac?: unknown };
  return rest;
}

/** The MAC input: the token's fields sorted by name, as JSON (so a store that reorders fields does not break it). */
function canonical(token: OAuthToken): string {
  const record = token as unknown as Record<string, unknown>;
  return JSON.stringify(Object.keys(record).filter((k) => record[k] !== undefined).sort().map((k) => [k, sortedKeys(record[k])]));
}

/**
 * A copy of a JSON value with the keys of every object in one order, at any depth (`extra` holds the server's nested
 * members): a store that keeps entries as Postgres `jsonb` does, or re-serialises them, may reorder keys, and that
 * must not break the MAC. Objects stay objects (an array of pairs would MAC like the object it lists).
 */
function sortedKeys(value: unknown, depth = 0): unknown {
  // Deeper than any real response nests (extra is at most 16 KiB, so `[[[…` could nest thousands deep): left as it is.
  if (typeof value !== 'object' || value === null || depth >= MAX_SORTED_DEPTH) return value;
  if (Array.isArray(value)) return value.map((item) => sortedKeys(item, depth + 1));
  const record = value as Record<string, unknown>;
  return Object.fromEntries(Object.keys(record).sort().map((k) => [k, sortedKeys(record[k], depth + 1)]));
}

/** How deep {@link sortedKeys} orders keys; the recursion stays far from the stack's limit. */
const MAX_SORTED_DEPTH = 32;
