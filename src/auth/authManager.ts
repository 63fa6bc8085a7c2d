/**
 * `ClientCredentialsAuthManager`: the seed's handle on a Client's token. It fetches tokens, checks them, and updates
 * the Client's cached token.
 */
import { MissingCredentialsError } from '../errors.js';
import { isOAuthToken, type OAuthToken, type OAuthTokenInput } from '../token.js';
import type { TokenSelector } from '../types/selector.js';
import type { ClientCredentialsAuthManager as ManagerShape } from '../types/authManager.js';
import type { TokenFetcher } from './tokenFetcher.js';
import type { TokenKey } from './tokenKey.js';
import type { TokenLifecycle } from './tokenLifecycle.js';
import { recordFromInput, recordState, type TimePolicy } from './tokenRecord.js';

/** What the manager works on; built by the Client. */
export interface AuthManagerContext {
  lifecycle: TokenLifecycle;
  fetcher: TokenFetcher | undefined;
  defaultKey: TokenKey;
  keyFor: (selector?: TokenSelector) => TokenKey;
  policy: TimePolicy;
  now: () => number;
}

function hasSelection(options: TokenSelector | undefined): boolean {
  return options !== undefined && (options.scopes !== undefined || options.resource !== undefined || options.audience !== undefined);
}

/** A manager's private state, kept outside the class so that its type is exactly its public shape ({@link ManagerShape}). */
interface ManagerState {
  context: AuthManagerContext;
  /** The selection this manager works on when a call names none: the Client's default, or the key a provider was asked for. */
  key: TokenKey;
  bound: Map<string, ClientCredentialsAuthManager>;
}

const states = new WeakMap<ClientCredentialsAuthManager, ManagerState>();

function stateOf(manager: ClientCredentialsAuthManager): ManagerState {
  return states.get(manager)!;
}

function keyFor(state: ManagerState, options: TokenSelector | undefined): TokenKey {
  return hasSelection(options) ? state.context.keyFor(options) : state.key;
}

/**
 * The manager handed to `oAuthTokenProvider` when the Client wants the token of `key`: its `fetchToken()`,
 * `getToken()`, `updateToken()` and `invalidate()` work on that selection (scopes, resource, audience).
 */
export function managerForKey(manager: ClientCredentialsAuthManager, key: TokenKey): ClientCredentialsAuthManager {
  const state = stateOf(manager);
  if (key.id === state.context.defaultKey.id) return manager;
  let bound = state.bound.get(key.id);
  if (!bound) {
    if (state.bound.size >= 1_000) state.bound.clear();
    state.bound.set(key.id, (bound = new ClientCredentialsAuthManager(state.context, key)));
  }
  return bound;
}

/**
 * Manages the OAuth 2.0 Client Credentials token of one Client. Handed to `oAuthTokenProvider` as `authManager`,
 * and available as `client.clientCredentialsAuthManager`.
 */
export class ClientCredentialsAuthManager implements ManagerShape {
  /** @internal Created by the Client. */
  constructor(context: AuthManagerContext, key: TokenKey = context.defaultKey) {
    states.set(this, { context, key, bound: new Map() });
  }

  /**
   * Fetches a new token from the token endpoint (with retries), for this manager's selection (the configured scopes,
   * resource and audience, or, inside `oAuthTokenProvider`, the selection the Client asked for), or those of `options`.
   * It does not replace the Client's cached token: return it from `oAuthTokenProvider`, or pass it to `updateToken`.
   *
   * @param additionalParams extra form parameters for this token request.
   * @throws MissingCredentialsError when the Client has no token endpoint credentials.
   */
  async fetchToken(additionalParams?: Record<string, string>, options?: TokenSelector & { signal?: AbortSignal }): Promise<OAuthToken> {
    const state = stateOf(this);
    const fetcher = state.context.fetcher;
    if (!fetcher) throw new MissingCredentialsError('fetchToken() needs oAuthClientId, a client secret (or key) and tokenUrl');
    const key = keyFor(state, options);
    return fetcher.fetch(key.parameters, { signal: options?.signal, extraFields: additionalParams });
  }

  /** True when `token` has the shape of an OAuthToken (a non-empty `accessToken`). */
  isValid(token: OAuthTokenInput | OAuthToken | undefined | null): token is OAuthToken {
    return isOAuthToken(token);
  }

  /**
   * True when `token` is past its expiry minus the clock skew. The skew applies as configured when only `expiry` is
   * known, and is clamped to half the lifetime when `expiresIn` says how long the token lives. Numbers given as bigints
   * or numeric strings are read as numbers; an `expiry` in milliseconds by mistake is read as milliseconds; a token
   * without `expiry` is judged by `expiresIn`, its JWT `exp` or the default lifetime, counted from now.
   */
  isExpired(token: OAuthTokenInput | OAuthToken): boolean {
    const { context } = stateOf(this);
    const now = context.now();
    return recordState(recordFromInput(token, now, context.policy, 'manual', 'token'), now) === 'expired';
  }

  /**
   * With a token: installs it as the Client's current token (and fires `oAuthOnTokenUpdate`).
   * Without: drops the cached token and gets a new one (through `oAuthTokenProvider` when set).
   */
  async updateToken(token?: OAuthTokenInput, options?: TokenSelector & { signal?: AbortSignal }): Promise<OAuthToken> {
    const state = stateOf(this);
    const key = keyFor(state, options);
    if (token !== undefined) return state.context.lifecycle.set(key, token, 'manual');
    state.context.lifecycle.invalidate(key, undefined, 'manual');
    return state.context.lifecycle.wait(key, options?.signal);
  }

  /** The Client's usable token for the configured scopes, resource and audience, or those of `options`, fetching one only when needed. */
  getToken(options?: TokenSelector & { signal?: AbortSignal }): Promise<OAuthToken> {
    const state = stateOf(this);
    return state.context.lifecycle.get(keyFor(state, options), options?.signal);
  }

  /** Drops the cached token (for the configured scopes, resource and audience, or those of `options`); the next call fetches a new one. */
  invalidate(options?: TokenSelector): boolean {
    const state = stateOf(this);
    return state.context.lifecycle.invalidate(keyFor(state, options), undefined, 'manual');
  }
}
