/**
 * Authenticated store entries: every token a Client writes to a shared store carries an HMAC over its content,
 * keyed by a key derived (HKDF-SHA-256) from the client's credentials and the entry's cache key. A process that can
 * write the store (Redis, the cache folder) but does not hold the credentials cannot write an entry the Clients
 * accept, so it cannot make them send a token of its choosing to the API. Rotating the secret changes the key, so old
 * entries stop verifying by construction.
 */
import { createHmac, createPrivateKey, hkdfSync, timingSafeEqual, type KeyObject } from 'node:crypto';
import type { KeyObjectLike } from '../auth/clientAuthentication.js';
import type { OAuthToken } from '../token.js';

/** The field of a stored token that carries its MAC (`v1.<base64url HMAC-SHA-256>`). */
export const ENTRY_MAC_FIELD = 'mac';

const SALT = 'oauth-client-credentials/token-store-entry/v1';
const PREFIX = 'v1.';

/** What a store entry turned out to be. */
export type EntryCheck =
  | { ok: true; token: OAuthToken }
  | { ok: false; reason: 'missing' | 'mismatch' };

/** The credentials an entry key can be derived from (a client secret, or a private key for `private_key_jwt`). */
export interface EntryKeyCredentials {
  clientSecret?: string | undefined;
  privateKey?: string | Record<string, unknown> | KeyObjectLike | undefined;
}

/**
 * Signs and verifies store entries with keys derived from one client's credentials. The secret itself is kept only
 * as HKDF input key material inside this object (never in a message, `inspect` or JSON).
 */
export class EntryAuth {
  readonly #ikm: Buffer;
  readonly #keys = new Map<string, Buffer>();

  /** `material`: the secret bytes (the client secret, or the private key's PKCS#8 DER). */
  constructor(material: Uint8Array) {
    if (material.length === 0) throw new TypeError('EntryAuth needs non-empty key material');
    this.#ikm = Buffer.from(material);
  }

  /**
   * An EntryAuth for a Client's credentials: from the client secret when there is one, else from the private key;
   * undefined when the Client holds neither (then entries are neither signed nor checked).
   */
  static fromCredentials(credentials: EntryKeyCredentials | undefined): EntryAuth | undefined {
    if (!credentials) return undefined;
    if (typeof credentials.clientSecret === 'string' && credentials.clientSecret !== '') return new EntryAuth(Buffer.from(credentials.clientSecret, 'utf8'));
    const key = credentials.privateKey;
    if (!key) return undefined;
    try {
      const object = typeof key === 'object' && 'type' in key && typeof (key as KeyObject).export === 'function'
        ? (key as unknown as KeyObject)
        : createPrivateKey(typeof key === 'string' ? key : { key: key as never, format: 'jwk' });
      const material = object.type === 'secret' ? object.export() : object.export({ format: 'der', type: 'pkcs8' });
      return new EntryAuth(material);
    } catch {
      return undefined; // an unusable key is reported where it is used (client authentication), not here
    }
  }

  /** The token with its MAC for `key` added (a copy). */
  sign(key: string, token: OAuthToken): OAuthToken {
    const copy = stripMac(token);
    return { ...copy, [ENTRY_MAC_FIELD]: PREFIX + this.#mac(key, copy).toString('base64url') } as OAuthToken;
  }

  /** Checks an entry read under `key`: its MAC must be present and match; resolves the token without the MAC. */
  verify(key: string, value: OAuthToken): EntryCheck {
    const mac = (value as unknown as Record<string, unknown>)[ENTRY_MAC_FIELD];
    if (typeof mac !== 'string' || !mac.startsWith(PREFIX)) return { ok: false, reason: 'missing' };
    const token = stripMac(value);
    const expected = this.#mac(key, token);
    const given = Buffer.from(mac.slice(PREFIX.length), 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'mismatch' };
    return { ok: true, token };
  }

  #mac(key: string, token: OAuthToken): Buffer {
    return createHmac('sha256', this.#key(key)).update(canonical(token)).digest();
  }

  #key(key: string): Buffer {
    let derived = this.#keys.get(key);
    if (!derived) {
      if (this.#keys.size >= 1_000) this.#keys.clear();
      derived = Buffer.from(hkdfSync('sha256', this.#ikm, SALT, `entry:${key}`, 32));
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
  return JSON.stringify(Object.keys(record).filter((k) => record[k] !== undefined).sort().map((k) => [k, record[k]]));
}
