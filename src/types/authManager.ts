/**
 * The public shape of `ClientCredentialsAuthManager`, so that the option types (`OAuthTokenProvider`) can name it from
 * the ground floor. The class in `auth/authManager.ts` implements it. Ground floor: imports only other ground-floor types.
 */
import type { TokenSelector } from './selector.js';
import type { OAuthToken, OAuthTokenInput } from './token.js';

/**
 * Manages the OAuth 2.0 Client Credentials token of one Client. Handed to `oAuthTokenProvider` as `authManager`,
 * and available as `client.clientCredentialsAuthManager`.
 */
export interface ClientCredentialsAuthManager {
  /**
   * Fetches a new token from the token endpoint (with retries), for this manager's selection (the configured scopes,
   * resource and audience, or, inside `oAuthTokenProvider`, the selection the Client asked for), or those of `options`.
   * It does not replace the Client's cached token: return it from `oAuthTokenProvider`, or pass it to `updateToken`.
   */
  fetchToken(additionalParams?: Record<string, string>, options?: TokenSelector & { signal?: AbortSignal }): Promise<OAuthToken>;
  /** True when `token` has the shape of an OAuthToken (a non-empty `accessToken`). */
  isValid(token: OAuthTokenInput | OAuthToken | undefined | null): token is OAuthToken;
  /** True when `token` is past its expiry minus the clock skew. */
  isExpired(token: OAuthTokenInput | OAuthToken): boolean;
  /**
   * With a token: installs it as the Client's current token (and fires `oAuthOnTokenUpdate`).
   * Without: drops the cached token and gets a new one (through `oAuthTokenProvider` when set).
   */
  updateToken(token?: OAuthTokenInput, options?: TokenSelector & { signal?: AbortSignal }): Promise<OAuthToken>;
  /** The Client's usable token for the configured scopes, resource and audience, or those of `options`, fetching one only when needed. */
  getToken(options?: TokenSelector & { signal?: AbortSignal }): Promise<OAuthToken>;
  /** Drops the cached token (for the configured scopes, resource and audience, or those of `options`); the next call fetches a new one. */
  invalidate(options?: TokenSelector): boolean;
}
