/**
 * The one time model. Every token, whatever its source (token endpoint, `oAuthTokenProvider`, a preset `oAuthToken`,
 * a token store, `updateToken`), is normalised here, once, into a {@link TokenRecord}: the public {@link OAuthToken}
 * plus its issue, stale and expiry moments in milliseconds on the Client's clock. `OAuthToken.expiry` stays whole
 * seconds for the seed's API, but no decision is ever taken on that rounded value.
 *
 * Rules, in one place:
 * - Lifetimes (`expiresIn`) and expiries are clamped together to `maxLifetime`; an `expiry` that can only be
 *   milliseconds (after the year 5138 read as seconds) is read as milliseconds.
 * - Clock skew applies to every token. Where the lifetime is known (`expiresIn`, or our own issue time) the skew is
 *   clamped to half of it, so a long skew never makes every token expired at birth; where only `expiry` is known the
 *   skew applies as configured.
 * - The stale point (when one background refresh starts) is by default the middle of the usable lifetime; that is
 *   what makes a token-endpoint outage shorter than half a token's lifetime cost no failed request. A server's
 *   `refresh_in` can only make it earlier, down to a floor ({@link refreshInFloorMs}); an explicit `refreshAhead` can only make it later (never earlier than the
 *   middle), to trade that guarantee for fewer token requests.
 *
 * Pure: the clock is passed in.
 */
import { TokenLifetimeError } from '../errors.js';
import { effectiveLifetime, normalizeToken, toSeconds, type LifetimePolicy, type OAuthToken } from '../token.js';

/** Where a token came from. */
export type TokenOrigin = 'endpoint' | 'provider' | 'store' | 'preset' | 'manual';

/** A token with its moments in milliseconds of the Client's clock. Immutable. */
export interface TokenRecord {
  /** The public token (JSON-safe, `expiry` in whole seconds). */
  readonly token: OAuthToken;
  /** When the token was issued, or when this Client first saw it if that is unknown. */
  readonly issuedAtMs: number;
  /** From here the token is stale: still sent, and one background refresh starts. */
  readonly staleAtMs: number;
  /** From here the token is never sent: its exact expiry minus the effective clock skew. */
  readonly expiresAtMs: number;
  /** The exact expiry, before the skew. */
  readonly expiryMs: number;
  /** Where it came from. */
  readonly source: TokenOrigin;
}

/** How a Client turns tokens into records. */
export interface TimePolicy extends LifetimePolicy {
  /** Seconds subtracted from every expiry; clamped to half the lifetime where the lifetime is known. */
  clockSkew: number;
  /** Seconds before the expiry at which a token turns stale; undefined: the middle of its usable lifetime. */
  refreshAhead: number | undefined;
}

/** An `expiry` above this many seconds (year 5138) can only be milliseconds given by mistake. */
const MILLISECOND_EXPIRY = 1e11;

/**
 * Exact issue and expiry moments of the tokens this library parsed from a token endpoint, by object identity: a token
 * that comes back through `oAuthTokenProvider` (`return authManager.fetchToken()`) keeps its millisecond times.
 */
const exactTimes = new WeakMap<OAuthToken, { issuedAtMs: number; expiryMs: number }>();

/** Remembers the exact moments of a token parsed from a token response sent at `sentAtMs`. */
export function rememberExactTimes(token: OAuthToken, sentAtMs: number): void {
  if (token.expiresIn !== undefined) exactTimes.set(token, { issuedAtMs: sentAtMs, expiryMs: sentAtMs + token.expiresIn * 1000 });
}

/** The record of a token just parsed from the token endpoint, the request having been sent at `sentAtMs`. */
export function recordFromEndpoint(token: OAuthToken, sentAtMs: number, policy: TimePolicy): TokenRecord {
  const lifetimeMs = (token.expiresIn ?? policy.defaultLifetime) * 1000;
  return buildRecord(token, sentAtMs, sentAtMs + lifetimeMs, true, policy, 'endpoint');
}

/**
 * The record of a token handed in by the application or read from a store: normalised (numbers as numbers, the JWT's
 * `exp` or the default lifetime when neither `expiry` nor `expiresIn` says), clamped, and timed.
 *
 * @throws CallbackError when `value` is not a token.
 */
export function recordFromInput(value: unknown, nowMs: number, policy: TimePolicy, source: TokenOrigin, label: string): TokenRecord {
  const exact = typeof value === 'object' && value !== null ? exactTimes.get(value as OAuthToken) : undefined;
  const token = normalizeToken(value, nowMs, policy, label);
  if (exact) return buildRecord(token, exact.issuedAtMs, exact.expiryMs, true, policy, source);
  const raw = value as Record<string, unknown>;
  const maxMs = policy.maxLifetime * 1000;
  let expirySeconds = toSeconds(raw['expiry']);
  if (expirySeconds !== undefined && expirySeconds > MILLISECOND_EXPIRY) expirySeconds /= 1000;
  const expiresIn = toSeconds(raw['expiresIn']);
  const lifetimeMs = expiresIn !== undefined && expiresIn > 0 ? Math.min(expiresIn * 1000, maxMs) : undefined;
  let expiryMs: number;
  let issuedAtMs: number | undefined;
  if (expirySeconds !== undefined) {
    expiryMs = Math.min(expirySeconds * 1000, nowMs + maxMs);
    // A lifetime longer than the time left means an issue time in the past: known. A shorter one is inconsistent
    // (issued in the future); then only the expiry is trusted.
    issuedAtMs = lifetimeMs !== undefined && expiryMs - lifetimeMs <= nowMs ? expiryMs - lifetimeMs : undefined;
  } else {
    const lifetime = lifetimeMs ?? effectiveLifetime(undefined, token.accessToken, Math.floor(nowMs / 1000), policy) * 1000;
    expiryMs = nowMs + Math.min(lifetime, maxMs);
    issuedAtMs = nowMs;
  }
  const clamped: OAuthToken = { ...token, expiry: Math.floor(expiryMs / 1000) };
  if (lifetimeMs !== undefined) clamped.expiresIn = lifetimeMs / 1000;
  else if (issuedAtMs !== undefined) clamped.expiresIn = Math.round((expiryMs - issuedAtMs) / 1000);
  return buildRecord(clamped, issuedAtMs ?? nowMs, expiryMs, issuedAtMs !== undefined, policy, source);
}

/** The shortest `refresh_in` honoured, in ms. */
export const MIN_REFRESH_IN_MS = 1_000;

/**
 * The earliest a server's `refresh_in` may make a token stale, in ms after its issue: a tenth of its usable lifetime,
 * and never less than {@link MIN_REFRESH_IN_MS}. A tiny `refresh_in` (`0.001`) would otherwise make every token stale
 * at birth and refresh on every call; with the floor it costs at most ten token requests per token lifetime.
 */
export function refreshInFloorMs(usableMs: number): number {
  return Math.max(MIN_REFRESH_IN_MS, usableMs / 10);
}

/** Applies skew and the stale-point rule; see the module comment. */
function buildRecord(token: OAuthToken, issuedAtMs: number, expiryMs: number, lifetimeKnown: boolean, policy: TimePolicy, source: TokenOrigin): TokenRecord {
  const configuredSkewMs = Math.max(policy.clockSkew, 0) * 1000;
  const skewMs = lifetimeKnown ? Math.min(configuredSkewMs, Math.max(expiryMs - issuedAtMs, 0) / 2) : configuredSkewMs;
  const expiresAtMs = expiryMs - skewMs;
  const middle = issuedAtMs + Math.max(expiresAtMs - issuedAtMs, 0) / 2;
  let staleAtMs = middle;
  if (policy.refreshAhead !== undefined) staleAtMs = Math.max(expiryMs - policy.refreshAhead * 1000, middle);
  else if (token.refreshIn !== undefined && token.refreshIn > 0) staleAtMs = Math.min(issuedAtMs + Math.max(token.refreshIn * 1000, refreshInFloorMs(expiresAtMs - issuedAtMs)), middle);
  return { token, issuedAtMs, staleAtMs: Math.min(staleAtMs, expiresAtMs), expiresAtMs, expiryMs, source };
}

/** The three states of a token at a moment. */
export type TokenState = 'fresh' | 'stale' | 'expired';

/** The state of `record` at `nowMs`. */
export function recordState(record: TokenRecord, nowMs: number): TokenState {
  if (nowMs < record.staleAtMs) return 'fresh';
  if (nowMs < record.expiresAtMs) return 'stale';
  return 'expired';
}

/** Milliseconds of usable life a token must have when obtained; less would mean a token request per call. */
export const MIN_USABLE_LIFETIME_MS = 1_000;

/** Throws when `record` has less than {@link MIN_USABLE_LIFETIME_MS} of usable life left at `nowMs`. */
export function assertUsableLifetime(record: TokenRecord, nowMs: number, describe: string): void {
  const left = record.expiresAtMs - nowMs;
  if (left < MIN_USABLE_LIFETIME_MS) {
    const what = left <= 0 ? 'is expired on arrival' : `has only ${Math.round(left)} ms of usable life`;
    throw new TokenLifetimeError(`${describe} ${what}; at least ${MIN_USABLE_LIFETIME_MS} ms after clockSkew is needed (check the server's clock and token lifetime, and clockSkew)`, left);
  }
}
