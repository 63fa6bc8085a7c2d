/**
 * The OAuthToken model: parsing a token response and normalising user-supplied tokens. When a token turns stale and
 * expires is decided in one place, `auth/tokenRecord.ts`. Nothing here does I/O; the clock is always passed in.
 */
import { DEFAULTS } from './defaults.js';
import { CallbackError, InvalidTokenError, MalformedTokenResponseError } from './errors.js';
import { decodeJwtPayload } from './jwt.js';
import { tokenFieldsProblem } from './tokenValidation.js';

export type { OAuthToken, OAuthTokenInput, TokenResponseWire, LifetimePolicy, JsonValue } from './types/token.js';
import type { OAuthToken, TokenResponseWire, LifetimePolicy, JsonValue } from './types/token.js';

/** Most bytes of JSON kept in {@link OAuthToken.extra}; members that would pass it are dropped. */
export const MAX_EXTRA_BYTES = 16_384;

/** The RFC 6749 §5.1 (and `refresh_in`) members a token response is read into; every other member goes to `extra`. */
const MODELLED_MEMBERS = new Set(['access_token', 'token_type', 'expires_in', 'scope', 'refresh_token', 'refresh_in']);

/** Defaults for {@link LifetimePolicy}: 5 minutes when unknown, at most 1 year. */
export const DEFAULT_LIFETIME_POLICY: LifetimePolicy = { defaultLifetime: DEFAULTS.defaultTokenLifetime, maxLifetime: DEFAULTS.maxTokenLifetime };

/** A decimal number as JSON writes it, with an optional exponent (`"3600"`, `"1.5"`, `"1e3"`, `"3.6E+3"`). */
const NUMERIC_STRING = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * Reads a number of seconds from a wire or user value: numbers, bigints and numeric strings (exponents included:
 * `"1e3"` is 1000). Returns undefined for anything else, and for NaN or infinities (`"1e400"`).
 */
export function toSeconds(value: unknown): number | undefined {
  let n: number;
  if (typeof value === 'number') n = value;
  else if (typeof value === 'bigint') n = Number(value);
  else if (typeof value === 'string' && NUMERIC_STRING.test(value.trim())) n = Number(value.trim());
  else return undefined;
  return Number.isFinite(n) ? n : undefined;
}

/**
 * The JSON-safe, bounded copy of a token response's other members (or an application's `extra`): members that are
 * not JSON (functions, bigints, cycles), `__proto__`, and members that would take the total past
 * {@link MAX_EXTRA_BYTES} are dropped. `skip` names members that are not extra (the modelled ones, for a wire
 * response). Undefined when nothing is left.
 */
export function extraMembers(source: unknown, skip?: ReadonlySet<string>): Record<string, JsonValue> | undefined {
  if (typeof source !== 'object' || source === null || Array.isArray(source)) return undefined;
  const out: Record<string, JsonValue> = {};
  let bytes = 2;
  let kept = 0;
  for (const name of Object.keys(source)) {
    if (name === '__proto__' || skip?.has(name)) continue;
    let text: string | undefined;
    try {
      text = JSON.stringify((source as Record<string, unknown>)[name]);
    } catch {
      continue;
    }
    if (text === undefined) continue;
    const size = Buffer.byteLength(text) + Buffer.byteLength(JSON.stringify(name)) + 2;
    if (bytes + size > MAX_EXTRA_BYTES) continue;
    bytes += size;
    out[name] = JSON.parse(text) as JsonValue;
    kept++;
  }
  return kept > 0 ? out : undefined;
}

/** A member name that says it holds a credential (`id_token`, `issued_token`, `signature`, `secret`…). */
const CREDENTIAL_NAME = /(?:token|secret|signature|assertion|password|key)$/i;
/** A string shaped like a JWS or JWE compact serialization. */
const JWT_SHAPE = /^[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*)?$/;

/**
 * The string values of a token's `extra` that are credentials and must be redacted like the access token: members
 * named like one (`id_token`, `*_token`, `signature`, `*secret`) and any string shaped like a JWT, at any depth.
 */
export function extraSecrets(token: Pick<OAuthToken, 'extra'>): string[] {
  const found: string[] = [];
  const visit = (value: unknown, name: string, depth: number): void => {
    if (typeof value === 'string') {
      if (value !== '' && (CREDENTIAL_NAME.test(name) || JWT_SHAPE.test(value))) found.push(value);
    } else if (typeof value === 'object' && value !== null && depth < 8) {
      for (const [key, inner] of Object.entries(value)) visit(inner, Array.isArray(value) ? name : key, depth + 1);
    }
  };
  if (token.extra) visit(token.extra, '', 0);
  return found;
}

/**
 * The lifetime in seconds to use for a token: a positive `expires_in` (clamped to `maxLifetime`), else the JWT's
 * `exp` relative to `nowSeconds`, else `defaultLifetime`. Zero, negative and non-numeric `expires_in` are
 * treated as absent.
 */
export function effectiveLifetime(expiresIn: unknown, accessToken: string, nowSeconds: number, policy: LifetimePolicy): number {
  const seconds = toSeconds(expiresIn);
  if (seconds !== undefined && seconds > 0) return Math.min(seconds, policy.maxLifetime);
  const exp = jwtExpiry(accessToken);
  if (exp !== undefined) return Math.min(Math.max(exp - nowSeconds, 0), policy.maxLifetime);
  return policy.defaultLifetime;
}

/** The `exp` claim of a JWT access token, in unix seconds, or undefined for opaque tokens. */
export function jwtExpiry(accessToken: string): number | undefined {
  const payload = decodeJwtPayload(accessToken);
  const exp = payload ? toSeconds(payload['exp']) : undefined;
  return exp !== undefined && exp > 0 ? exp : undefined;
}

/**
 * Turns a token endpoint's JSON into an {@link OAuthToken}, with `expiry` anchored at `sentAtMs`,
 * the moment the request was sent (so network latency never extends a token's life).
 *
 * @throws MalformedTokenResponseError when `access_token` is missing or not a string.
 */
export function tokenFromResponse(wire: TokenResponseWire, sentAtMs: number, policy: LifetimePolicy, statusCode = 200): OAuthToken {
  if (typeof wire !== 'object' || wire === null || Array.isArray(wire)) {
    throw new MalformedTokenResponseError('Token response is not a JSON object', statusCode);
  }
  const accessToken = wire.access_token;
  if (typeof accessToken !== 'string' || accessToken === '') {
    throw new MalformedTokenResponseError('Token response has no `access_token`', statusCode);
  }
  const nowSeconds = Math.floor(sentAtMs / 1000);
  const lifetime = effectiveLifetime(wire.expires_in, accessToken, nowSeconds, policy);
  const token: OAuthToken = {
    accessToken,
    tokenType: typeof wire.token_type === 'string' && wire.token_type ? wire.token_type : 'Bearer',
    expiresIn: lifetime,
    expiry: Math.floor(sentAtMs / 1000 + lifetime),
  };
  if (typeof wire.scope === 'string') token.scope = wire.scope;
  if (typeof wire.refresh_token === 'string') token.refreshToken = wire.refresh_token;
  const refreshIn = toSeconds(wire.refresh_in);
  if (refreshIn !== undefined && refreshIn > 0 && refreshIn < lifetime) token.refreshIn = refreshIn;
  const extra = extraMembers(wire, MODELLED_MEMBERS);
  if (extra) token.extra = extra;
  assertUsableFields(token, (field, problem) => new MalformedTokenResponseError(`Token response has an unusable \`${field === 'accessToken' ? 'access_token' : 'token_type'}\`: ${problem}`, statusCode));
  return token;
}

/** Throws `fail(field, problem)` when the token's `accessToken` or `tokenType` cannot be sent (see tokenValidation.ts). */
function assertUsableFields(token: OAuthToken, fail: (field: string, problem: string) => Error): void {
  const bad = tokenFieldsProblem(token);
  if (bad) throw fail(bad.field, bad.problem);
}

/** True when `value` has the shape of an OAuthToken (a non-empty `accessToken` string). */
export function isOAuthToken(value: unknown): value is OAuthToken {
  return typeof value === 'object' && value !== null && typeof (value as OAuthToken).accessToken === 'string' && (value as OAuthToken).accessToken !== '';
}

/**
 * Normalises a token a user handed us (preset `oAuthToken`, `oAuthTokenProvider` result, a stored token):
 * bigint and numeric-string numbers become numbers, a missing `expiry` is derived from `expiresIn`, the JWT `exp`,
 * or the default lifetime from `nowMs`. The result is a fresh JSON-safe object.
 *
 * @throws CallbackError when the value is not a token.
 */
export function normalizeToken(value: unknown, nowMs: number, policy: LifetimePolicy, source = 'token'): OAuthToken {
  if (!isOAuthToken(value)) throw new CallbackError(`The ${source} is not an OAuthToken (it needs a non-empty \`accessToken\` string)`);
  const raw = value as OAuthToken & Record<string, unknown>;
  const token: OAuthToken = { accessToken: raw.accessToken, tokenType: typeof raw.tokenType === 'string' && raw.tokenType ? raw.tokenType : 'Bearer' };
  const expiresIn = toSeconds(raw.expiresIn);
  if (expiresIn !== undefined) token.expiresIn = expiresIn;
  if (typeof raw.scope === 'string') token.scope = raw.scope;
  if (typeof raw.refreshToken === 'string') token.refreshToken = raw.refreshToken;
  const refreshIn = toSeconds(raw.refreshIn);
  if (refreshIn !== undefined && refreshIn > 0) token.refreshIn = refreshIn;
  const extra = extraMembers(raw.extra);
  if (extra) token.extra = extra;
  assertUsableFields(token, (field, problem) => new InvalidTokenError(field, source, problem));
  const expiry = toSeconds(raw.expiry);
  if (expiry !== undefined) token.expiry = expiry;
  else {
    const nowSeconds = Math.floor(nowMs / 1000);
    token.expiry = nowSeconds + effectiveLifetime(raw.expiresIn, raw.accessToken, nowSeconds, policy);
  }
  return token;
}
