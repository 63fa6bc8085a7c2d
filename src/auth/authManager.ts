/**
 * `ClientCredentialsAuthManager`: the seed's handle on a Client's token. It fetches tokens, checks them, and updates
 * the Client's cached token.
 */
import { MissingCredentialsError } from '../errors.js';
import { normalizeToken, tokenState, tokenTimes, isOAuthToken, type ExpiryPolicy, type LifetimePolicy, type OAuthToken, type OAuthTokenInput } from '../token.js';
import type { TokenSelector } from '../configuration.js';
import type { TokenFetcher } from './tokenFetcher.js';
import type { TokenKey, TokenLifecycle } from './tokenLifecycle.js';

/** What the manager works on; built by the Client. */
export interface AuthManagerContext {
  lifecycle: TokenLifecycle;
  fetcher: TokenFetcher | undefined;
  defaultKey: TokenKey;
  keyFor: (selector?: TokenSelector) => TokenKey;
  expiry: ExpiryPolicy;
  lifetime: LifetimePolicy;
  now: () => number;
}

/**
 * Manages the OAuth 2.0 Client Credentials token of one Client. Handed to `oAuthTokenProvider` as `authManager`,
 * and available as `client.clientCredentialsAuthManager`.
 */
export class ClientCredentialsAuthManager {
  readonly #context: AuthManagerContext;

  /** @internal Created by the Client. */
  constructor(context: AuthManagerContext) {
    this.#context = context;
  }

  /**
   * Fetches a new token from the token endpoint (with retries), for the configured scopes, resource and audience, or those of `options`.
   * It does not replace the Client's cached token: return it from `oAuthTokenProvider`, or pass it to `updateToken`.
   *
   * @param additionalParams extra form parameters for this token request.
   * @throws MissingCredentialsError when the Client has no token endpoint credentials.
   */
  async fetchToken(additionalParams?: Record<string, string>, options?: TokenSelector & { signal?: AbortSignal }): Promise<OAuthToken> {
    const fetcher = this.#context.fetcher;
    if (!fetcher) throw new MissingCredentialsError('fetchToken() needs oAuthClientId, a client secret (or key) and tokenUrl');
    const key = this.#context.keyFor(options);
    return fetcher.fetch(key.parameters, options?.signal, additionalParams);
  }

  /** True when `token` has the shape of an OAuthToken (a non-empty `accessToken`). */
  isValid(token: OAuthTokenInput | OAuthToken | undefined | null): token is OAuthToken {
    return isOAuthToken(token);
  }

  /**
   * True when `token` is past its expiry minus the clock skew (clamped to half its lifetime). Numbers given as bigints
   * or numeric strings are read as numbers; a token without `expiry` is judged by `expiresIn`, its JWT `exp` or the
   * default lifetime, counted from now.
   */
  isExpired(token: OAuthTokenInput | OAuthToken): boolean {
    const now = this.#context.now();
    const normalized = normalizeToken(token, now, this.#context.lifetime);
    return tokenState(tokenTimes(normalized, this.#context.expiry, now), now) === 'expired';
  }

  /**
   * With a token: installs it as the Client's current token (and fires `oAuthOnTokenUpdate`).
   * Without: drops the cached token and gets a new one (through `oAuthTokenProvider` when set).
   */
  async updateToken(token?: OAuthTokenInput, options?: TokenSelector & { signal?: AbortSignal }): Promise<OAuthToken> {
    const key = this.#context.keyFor(options);
    if (token !== undefined) return this.#context.lifecycle.set(key, token, 'manual');
    this.#context.lifecycle.invalidate(key, undefined, 'manual');
    return this.#context.lifecycle.wait(key, options?.signal);
  }

  /** The Client's usable token for the configured scopes, resource and audience, or those of `options`, fetching one only when needed. */
  getToken(options?: TokenSelector & { signal?: AbortSignal }): Promise<OAuthToken> {
    return this.#context.lifecycle.get(this.#context.keyFor(options), options?.signal);
  }

  /** Drops the cached token (for the configured scopes, resource and audience, or those of `options`); the next call fetches a new one. */
  invalidate(options?: TokenSelector): boolean {
    return this.#context.lifecycle.invalidate(this.#context.keyFor(options), undefined, 'manual');
  }
}
