/**
 * The OAuthToken model: parsing a token response and normalising user-supplied tokens. When a token turns stale and
 * expires is decided in one place, `auth/tokenRecord.ts`. Nothing here does I/O; the clock is always passed in.
 */
import { DEFAULTS } from './defaults.js';
import { CallbackError, InvalidTokenError, MalformedTokenResponseError } from './errors.js';
import { decodeJwtPayload } from './jwt.js';
import { tokenFieldsProblem } from './tokenValidation.js';

export type { OAuthToken, OAuthTokenInput, TokenResponseWire, LifetimePolicy } from './types/token.js';
import type { OAuthToken, OAuthTokenInput, TokenResponseWire, LifetimePolicy } from './types/token.js';

/** Defaults for {@link LifetimePolicy}: 5 minutes when unknown, at most 1 year. */
export const DEFAULT_LIFETIME_POLICY: LifetimePolicy = { defaultLifetime: DEFAULTS.defaultTokenLifetime, maxLifetime: DEFAULTS.maxTokenLifetime };

/**
 * Reads a number of seconds from a wire or user value: numbers, bigints and numeric strings.
 * Returns undefined for anything else, and for NaN or infinities.
 */
export function toSeconds(value: unknown): number | undefined {
  let n: number;
  if (typeof value === 'number') n = value;
  else if (typeof value === 'bigint') n = Number(value);
  else if (typeof value === 'string' && value.trim() !== '' && /^[+-]?\d+(\.\d+)?$/.test(value.trim())) n = Number(value);
  else return undefined;
  return Number.isFinite(n) ? n : undefined;
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
  assertUsableFields(token, (field, problem) => new InvalidTokenError(field, source, problem));
  const expiry = toSeconds(raw.expiry);
  if (expiry !== undefined) token.expiry = expiry;
  else {
    const nowSeconds = Math.floor(nowMs / 1000);
    token.expiry = nowSeconds + effectiveLifetime(raw.expiresIn, raw.accessToken, nowSeconds, policy);
  }
  return token;
}
