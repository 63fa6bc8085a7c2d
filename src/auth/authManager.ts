/**
 * `ClientCredentialsAuthManager`: the seed's handle on a Client's token. It fetches tokens, checks them, and updates
 * the Client's cached token.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { AbortError, CallbackError, MissingCredentialsError } from '../errors.js';
import { isOAuthToken, type OAuthToken, type OAuthTokenInput } from '../token.js';
import type { TokenSelector } from '../types/selector.js';
import { assertCallKeys } from '../optionKeys.js';
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

/**
 * The cache keys (ids) whose `oAuthTokenProvider` call is on the current async stack: inside it, the manager never
 * waits for that key's fetch, which is waiting for the provider (a deadlock until the provider's timeout).
 */
const providing = new AsyncLocalStorage<ReadonlySet<string>>();

/** Whether the current async stack is inside the provider call for `key`. */
function inProviderOf(key: TokenKey): boolean {
  return providing.getStore()?.has(key.id) === true;
}

/**
 * Runs `call` (the Client's call of `oAuthTokenProvider` for `manager`'s selection) so that the manager knows, inside
 * it, not to wait for the fetch that is waiting for the provider.
 */
export function runAsProvider<T>(manager: ClientCredentialsAuthManager, call: () => T): T {
  return providing.run(new Set(providing.getStore()).add(stateOf(manager).key.id), call);
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

/** Every key of the manager's `options`: a selection, and a `signal`. */
const MANAGER_OPTION_KEYS = { scopes: true, resource: true, audience: true, signal: true } as const satisfies Record<keyof (TokenSelector & { signal?: AbortSignal }), true>;

function keyFor(state: ManagerState, options: TokenSelector | undefined): TokenKey {
  // A JavaScript caller's `scope` would otherwise select the configured token in silence.
  if (options !== undefined && options !== null) assertCallKeys(options, MANAGER_OPTION_KEYS, 'of the token manager (`getToken`, `fetchToken`, `updateToken`, `invalidate`)');
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
   * `client.close()` cancels it (on any dispatcher, the application's own included), and after `close()` it rejects
   * at once.
   *
   * @param additionalParams extra form parameters for this token request.
   * @throws MissingCredentialsError when the Client has no token endpoint credentials.
   * @throws AbortError after `client.close()`, or when `options.signal` aborts.
   */
  async fetchToken(additionalParams?: Record<string, string>, options?: TokenSelector & { signal?: AbortSignal }): Promise<OAuthToken> {
    const state = stateOf(this);
    const fetcher = state.context.fetcher;
    if (!fetcher) throw new MissingCredentialsError('fetchToken() needs oAuthClientId, a client secret (or key) and tokenUrl');
    const key = keyFor(state, options);
    const life = state.context.lifecycle.signal;
    if (life.aborted) throw new AbortError('The Client is closed: fetchToken() fetches no more tokens');
    const signal = options?.signal ? AbortSignal.any([options.signal, life]) : life;
    return fetcher.fetch(key.parameters, { signal, extraFields: additionalParams });
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
    if (inProviderOf(key)) {
      throw new CallbackError('authManager.updateToken() without a token was called inside oAuthTokenProvider for the token the provider is asked for: it would wait for the provider itself. Return authManager.fetchToken() instead');
    }
    state.context.lifecycle.invalidate(key, undefined, 'manual');
    return state.context.lifecycle.wait(key, options?.signal);
  }

  /**
   * The Client's usable token for the configured scopes, resource and audience, or those of `options`, fetching one
   * only when needed.
   *
   * Inside `oAuthTokenProvider`, for the selection the provider is asked for, it never waits for the provider itself:
   * it returns the usable token when there is one (in the stale window, the token being refreshed), else a new token
   * from the token endpoint, as {@link ClientCredentialsAuthManager.fetchToken} does.
   *
   * @throws CallbackError inside `oAuthTokenProvider`, at once, when there is no usable token and the Client cannot
   *   fetch one (no token endpoint credentials).
   */
  async getToken(options?: TokenSelector & { signal?: AbortSignal }): Promise<OAuthToken> {
    const state = stateOf(this);
    const key = keyFor(state, options);
    if (!inProviderOf(key)) return state.context.lifecycle.get(key, options?.signal);
    const usable = state.context.lifecycle.peek(key);
    if (usable) return usable;
    if (!state.context.fetcher) {
      throw new CallbackError('authManager.getToken() was called inside oAuthTokenProvider for the token the provider is asked for, and there is none to return: the Client has no usable token and cannot fetch one (return a token of your own, or set `tokenUrl` and a client secret)');
    }
    return this.fetchToken(undefined, options);
  }

  /** Drops the cached token (for the configured scopes, resource and audience, or those of `options`); the next call fetches a new one. */
  invalidate(options?: TokenSelector): boolean {
    const state = stateOf(this);
    return state.context.lifecycle.invalidate(keyFor(state, options), undefined, 'manual');
  }
}
