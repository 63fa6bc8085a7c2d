/**
 * Cache keys: the identity of one cached token (scopes, resources, audience, extra parameters of one client at one
 * token URL), kept small because thousands may be cached.
 */
import { createHash } from 'node:crypto';
import type { TokenRequestParameters } from './tokenEndpoint.js';

/** The identity of one cached token: the parameters that make tokens differ. */
export interface TokenKey {
  /**
   * The in-process cache key: sorted scopes, sorted resources, audience and sorted extra parameters. A Client's cache
   * belongs to one token URL and client id, so they are not repeated in it; no secret.
   */
  readonly id: string;
  /** SHA-256 of the full key (token URL, client id and `id`'s parts), base64url: what stores and events see. */
  readonly hash: string;
  /** The token request parameters of this key (scopes in sorted order). */
  readonly parameters: TokenRequestParameters;
}

/** The token URL and client id a cache key belongs to; shared by every key of a Client. */
/** @internal */
interface KeyOwner {
  readonly tokenUrl: string;
  readonly clientId: string;
}

/**
 * A cache key, kept small because thousands may be cached: one canonical string and a shared owner. The request
 * parameters are read back from the string when a fetch needs them, and the hash is computed on first use (stores
 * and events need it; a Client without either never does).
 */
class CacheKey implements TokenKey {
  #hash: string | undefined;
  constructor(
    readonly id: string,
    readonly owner: KeyOwner,
  ) {}

  get parameters(): TokenRequestParameters {
    const [scopes, resource, audience, extra] = JSON.parse(this.id) as [string, string[], string | null, [string, string][]];
    return { scopes: scopes === '' ? [] : scopes.split(' '), resource, audience: audience ?? undefined, extra: Object.fromEntries(extra) };
  }

  get hash(): string {
    return (this.#hash ??= createHash('sha256').update(JSON.stringify([this.owner.tokenUrl, this.owner.clientId, this.id])).digest('base64url'));
  }
}

/** Owners by token URL and client id, so every key of a Client shares one. */
const owners = new Map<string, KeyOwner>();

/** Builds the cache key of a token from its request parameters. */
export function tokenKey(tokenUrl: string, clientId: string, parameters: TokenRequestParameters): TokenKey {
  const extra = Object.keys(parameters.extra).sort().map((k) => [k, parameters.extra[k]]);
  const scopes = [...new Set(parameters.scopes)].sort().join(' ');
  const id = JSON.stringify([scopes, [...new Set(parameters.resource)].sort(), parameters.audience ?? null, extra]);
  // V8 returns a long JSON.stringify result as a rope of parts; reading a character flattens it, so it is stored once.
  id.charCodeAt(0);
  const ownerId = `${tokenUrl}\u0000${clientId}`;
  let owner = owners.get(ownerId);
  if (!owner) {
    if (owners.size >= 256) owners.clear();
    owners.set(ownerId, (owner = { tokenUrl, clientId }));
  }
  return new CacheKey(id, owner);
}
