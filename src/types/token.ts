/**
 * The token types: the OAuthToken model, what an application may hand in, the wire shape of a token response, and
 * the lifetime policy. Ground floor: imports nothing.
 */
/**
 * An OAuth 2.0 access token, as the client holds it. JSON-safe: every number is a plain `number`,
 * so `JSON.parse(JSON.stringify(token))` gives an equal token back.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.1
 */
export interface OAuthToken {
  /** The access token sent as `Authorization: Bearer …`. */
  accessToken: string;
  /** The token type, normally `Bearer`. */
  tokenType: string;
  /** Lifetime in seconds, as the server sent it. */
  expiresIn?: number;
  /** Space-separated scopes the server granted. */
  scope?: string;
  /** Expiry as unix time in seconds, anchored at the moment the token request was sent. */
  expiry?: number;
  /** A refresh token, when the server sent one (client-credentials servers normally do not). */
  refreshToken?: string;
  /** Seconds after issue at which the server suggests refreshing (`refresh_in`), when it sent one. */
  refreshIn?: number;
  /**
   * The token response's other members, as the server sent them (snake_case, JSON values): Salesforce's
   * `instance_url`, `id`, `issued_at`, `signature`; Entra's `ext_expires_in`; PayPal's `app_id` and `nonce`; an
   * `id_token`. Absent when there were none. Kept through every path (`getToken()`, `oAuthOnTokenUpdate`, the
   * provider, token stores, whose entry MAC covers them) and bounded: at most `MAX_EXTRA_BYTES` (16 KiB) of JSON, larger
   * members dropped. Members that look like credentials (`id_token`, `*_token`, `signature`, JWTs) are redacted as
   * access tokens are.
   *
   * @example
   * ```ts
   * const token = await client.clientCredentialsAuthManager.getToken();
   * const instanceUrl = token.extra?.['instance_url']; // Salesforce: the base URL of every API call
   * ```
   */
  extra?: Record<string, JsonValue>;
}

/** A JSON value, as a token response member may be. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };


/**
 * An {@link OAuthToken} as an application may hand it in (a preset `oAuthToken`, a provider's result, `updateToken`):
 * numbers may also be bigints or numeric strings, as older SDKs stored them. They are normalised to numbers.
 */
export type OAuthTokenInput = Omit<OAuthToken, 'expiresIn' | 'expiry' | 'refreshIn' | 'extra'> & {
  /** The token response's other members; anything that is not JSON is dropped (see {@link OAuthToken.extra}). */
  extra?: Record<string, unknown>;
  expiresIn?: number | bigint | string;
  expiry?: number | bigint | string;
  refreshIn?: number | bigint | string;
};

/** A token response as RFC 6749 §5.1 spells it on the wire. */
export interface TokenResponseWire {
  access_token?: unknown;
  token_type?: unknown;
  expires_in?: unknown;
  scope?: unknown;
  refresh_token?: unknown;
  refresh_in?: unknown;
  [key: string]: unknown;
}

/** How lifetimes are decided when the server is vague. */
export interface LifetimePolicy {
  /** Lifetime in seconds assumed when neither `expires_in` nor a JWT `exp` says. */
  defaultLifetime: number;
  /** Upper bound in seconds for any lifetime; absurd `expires_in` values are clamped to it. */
  maxLifetime: number;
}
