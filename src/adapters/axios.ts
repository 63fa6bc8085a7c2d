/**
 * `oauth-client-credentials/axios`: `attachClientCredentials(instance, client)` gives an axios instance the Client's
 * token. A request interceptor adds `Authorization` for the Client's allowed origins only; a response interceptor
 * drops a token a resource answered 401 to (generation-guarded) and sends the request once more with a new one,
 * when its body can be replayed. axios is an optional peer dependency: this module only uses the instance it is given.
 *
 * @example
 * ```ts
 * import axios from 'axios';
 * import { attachClientCredentials } from 'oauth-client-credentials/axios';
 * const api = axios.create({ baseURL: 'https://api.example.com' });
 * const detach = attachClientCredentials(api, client);
 * await api.get('/things');
 * ```
 */
import type { AxiosInstance, AxiosResponse, InternalAxiosRequestConfig } from 'axios';
import type { TokenSelector } from '../configuration.js';
import type { OAuthToken } from '../token.js';
import { requireAllowedOrigins, retryOption, type AccessKey, type TokenAccess, type TokenAccessSource } from './tokenAccess.js';
import { assertSelectorKeys, SELECTOR_OPTION_KEYS } from '../optionKeys.js';
import { concealTokens } from './axiosErrors.js';

/** Per-request token options, as `config.oauth` of an axios request. */
export interface AxiosOAuthOptions extends TokenSelector {
  /** On a 401, drop the token, fetch a new one and retry once (when the body can be replayed). Default: the adapter's. */
  retryOnUnauthorized?: boolean;
}

declare module 'axios' {
  interface AxiosRequestConfig {
    /** oauth-client-credentials: which token this request uses, and whether a 401 is retried. */
    oauth?: AxiosOAuthOptions;
  }
}

/** Options of {@link attachClientCredentials}. */
export interface AttachOptions extends AxiosOAuthOptions {}

// The keys checked at run time are every key of these options (a type error here when one is added to them alone).
SELECTOR_OPTION_KEYS satisfies Record<keyof AttachOptions, true>;

/** What an authenticated request was sent with, to recover from its 401. */
interface Sent {
  key: AccessKey;
  accessToken: string;
  retry: boolean;
  /** A DPoP-bound token: the token, and the URL its proof was for (to learn the API's nonce and retry once with it). */
  dpop?: { token: OAuthToken; url: string; proof: string | undefined; nonceRetry: boolean } | undefined;
}

/** Node's `util.inspect.custom`, spelled without Node's types. */
const INSPECT: unique symbol = Symbol.for('nodejs.util.inspect.custom');

/**
 * What a request gets, decided once when axios starts it, before any interceptor runs (`config.oauth` is read then):
 * the token's key, and the token cached at that moment. A request with a cached token takes the synchronous
 * interceptor, any other the asynchronous one. It sits on the request's config, which callers log: `util.inspect`
 * shows it without the token.
 */
class Plan {
  /** What the request was sent with, once it was (undefined again once a retry is under way). */
  sent: Sent | undefined = undefined;
  /** A bad `config.oauth`: the request rejects with it. */
  error: unknown = undefined;

  constructor(
    readonly key: AccessKey,
    /** Undefined: the request waits for a token. */
    readonly token: OAuthToken | undefined,
    readonly retry: boolean,
  ) {}

  [INSPECT](): string {
    return 'Plan [oauth-client-credentials]';
  }
}

/**
 * The plan of a request that did not want a token when it started (another origin, no `baseURL` yet, or an
 * `Authorization` of its own): the asynchronous interceptor decides again when it runs.
 */
const LATER = Symbol('later');

/** Whether a plan takes the synchronous interceptor. */
function isCached(plan: Plan | typeof LATER): boolean {
  return plan !== LATER && plan.token !== undefined;
}

/** Where a request keeps its plan (a symbol: axios's mergeConfig never copies it to a retry, which plans again). */
const PLAN = Symbol('oauth-client-credentials.plan');

type Tracked = InternalAxiosRequestConfig & { [PLAN]?: Plan | typeof LATER };

/** What the request of `config` was sent with, if it went out with this adapter's token. */
function sentWith(config: InternalAxiosRequestConfig | undefined): Sent | undefined {
  const plan = config === undefined ? undefined : (config as Tracked)[PLAN];
  return plan === undefined || plan === LATER ? undefined : plan.sent;
}

const ABSOLUTE = /^([a-z][a-z\d+\-.]*:)?\/\//i;

/**
 * A URL with the origin axios will call for `config`: `url` when it is absolute (and absolute URLs are allowed),
 * else `baseURL`, which a relative `url` is appended to.
 */
function targetUrl(config: InternalAxiosRequestConfig): string {
  // String(): axios also takes a URL object as `url`.
  const url = config.url === undefined ? '' : String(config.url);
  const base = config.baseURL;
  if (base && (config.allowAbsoluteUrls === false || !ABSOLUTE.test(url))) return base;
  return url;
}

/** The URL axios will call for `config`, as axios joins `baseURL` and `url` (the query aside: a proof's `htu` has none). */
function fullUrl(config: InternalAxiosRequestConfig): string {
  const url = config.url === undefined ? '' : String(config.url);
  const base = config.baseURL;
  if (!base || (config.allowAbsoluteUrls !== false && ABSOLUTE.test(url))) return url;
  return url ? `${base.replace(/\/?\/$/, '')}/${url.replace(/^\/+/, '')}` : base;
}

/** A header of an axios response, as a string. */
function header(response: AxiosResponse, name: string): string | undefined {
  const value = (response.headers as Record<string, unknown>)[name];
  return value === undefined || value === null ? undefined : String(value);
}

/**
 * Whether `response` came from another origin than its request after a redirect: follow-redirects sends no
 * `Authorization` to another host, so such a 401 says nothing about the token.
 */
function landedElsewhere(response: AxiosResponse): boolean {
  const landed = (response.request as { res?: { responseUrl?: unknown } } | undefined)?.res?.responseUrl;
  if (typeof landed !== 'string') return false;
  try {
    return new URL(landed).origin !== new URL(fullUrl(response.config)).origin;
  } catch {
    return true;
  }
}

/** The options follow-redirects hands a `beforeRedirect` hook (the next hop's). */
interface RedirectOptions {
  href?: string;
  method?: string;
  headers?: Record<string, unknown>;
}

/**
 * Lets go of the body of a response that is answered by sending the request again: with `responseType: 'stream'` it
 * is unread, and holds its connection (a Node stream, or the fetch adapter's web stream) until it is consumed.
 */
function discard(response: AxiosResponse): void {
  const data = response.data as { destroy?: unknown; cancel?: unknown } | null | undefined;
  if (typeof data !== 'object' || data === null) return;
  if (typeof data.destroy === 'function') (data as { destroy(): void }).destroy();
  else if (data instanceof ReadableStream) void data.cancel().catch(() => undefined);
}

/** Whether axios request data can be sent twice: everything but streams and async iterables. */
function replayable(data: unknown): boolean {
  if (data === undefined || data === null || typeof data !== 'object') return true;
  if (typeof (data as { pipe?: unknown }).pipe === 'function' || data instanceof ReadableStream) return false;
  return typeof (data as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] !== 'function';
}

/**
 * Adds the Client's token to `instance`'s requests to the Client's allowed origins, and recovers once from a 401.
 *
 * @returns a function that removes both interceptors.
 * @throws InvalidOptionError when the Client allows no origin, or for a bad `scopes`/`resource`/`audience`.
 */
export function attachClientCredentials(instance: AxiosInstance, client: TokenAccessSource, options: AttachOptions = {}): () => void {
  const access: TokenAccess = client.tokenAccess();
  requireAllowedOrigins(access, 'attachClientCredentials()');
  assertSelectorKeys(options, '', 'of attachClientCredentials()');
  options ??= {}; // a JavaScript caller's null selects nothing, like undefined
  const defaultKey = access.key(options);
  const defaultRetry = retryOption(options.retryOnUnauthorized, 'retryOnUnauthorized') ?? access.retryOnUnauthorized;

  /**
   * Whether `config` gets the Client's token: it names no `Authorization` of its own, no `auth` (axios's Basic
   * credentials, which replace any `Authorization`), and goes to an allowed origin.
   */
  const wantsToken = (config: InternalAxiosRequestConfig): boolean => config.auth == null && !config.headers.has('authorization') && access.allowsUrl(targetUrl(config));

  /** The plan of a request that wants a token now. */
  const planFor = (config: InternalAxiosRequestConfig): Plan => {
    const selection = config.oauth;
    try {
      if (selection !== undefined) assertSelectorKeys(selection, 'oauth', 'of `config.oauth` (axios)');
      const key = selection ? access.key(selection) : defaultKey;
      const retry = (selection ? retryOption(selection.retryOnUnauthorized, 'oauth.retryOnUnauthorized') : undefined) ?? defaultRetry;
      return new Plan(key, access.peek(key), retry);
    } catch (error) {
      const refused = new Plan(defaultKey, undefined, false);
      refused.error = error;
      return refused;
    }
  };

  /** The plan of a request, made once when axios starts it (in the interceptors' `runWhen`). */
  const planOf = (config: Tracked): Plan | typeof LATER => (config[PLAN] ??= wantsToken(config) ? planFor(config) : LATER);

  /** Sets the token on `config` and remembers it for a 401. */
  const authorize = (config: Tracked, plan: Plan, token: OAuthToken): InternalAxiosRequestConfig => {
    // A plain assignment, as axios's own docs do: AxiosHeaders#set normalises and validates, which costs more per call.
    config.headers.Authorization = access.authorization(token);
    const again = replayable(config.data);
    if (access.dpop && access.dpopBound(token)) {
      const url = fullUrl(config);
      const proof = access.proof(token, config.method ?? 'get', url);
      config.headers.DPoP = proof;
      config.beforeRedirect = dpopRedirects(config.beforeRedirect, token);
      plan.sent = { key: plan.key, accessToken: token.accessToken, retry: plan.retry && again, dpop: { token, url, proof, nonceRetry: again } };
    } else {
      config.beforeRedirect = guarded(config.beforeRedirect);
      if (plan.retry && again) plan.sent = { key: plan.key, accessToken: token.accessToken, retry: true };
    }
    return config;
  };

  type BeforeRedirect = NonNullable<InternalAxiosRequestConfig['beforeRedirect']>;
  /**
   * follow-redirects' hook of a request sent with the token: a hop to an origin that may not receive it goes without
   * `Authorization`. axios strips it on a cross-origin hop only from 1.18; before, follow-redirects alone decides, and
   * it keeps the header for a subdomain and on a switch from http to https.
   */
  const keepHome: BeforeRedirect = (options) => {
    const next = options as RedirectOptions;
    if (next.href !== undefined && access.allowsUrl(next.href)) return;
    const headers = next.headers ?? {};
    for (const name of Object.keys(headers)) if (name.toLowerCase() === 'authorization') delete headers[name];
  };
  /** The caller's own `beforeRedirect` hooks, each run after {@link keepHome} (one wrapper per hook, made once). */
  const chained = new WeakMap<BeforeRedirect, BeforeRedirect>();
  const wrappers = new WeakSet<BeforeRedirect>();
  /** `keepHome`, or `keepHome` then the caller's hook (a request retried comes back with the hook it was given). */
  const guarded = (theirs: InternalAxiosRequestConfig['beforeRedirect']): BeforeRedirect => {
    if (theirs === undefined || theirs === keepHome || wrappers.has(theirs)) return theirs ?? keepHome;
    let wrapper = chained.get(theirs);
    if (wrapper === undefined) {
      wrapper = (options, responseDetails, requestDetails) => {
        keepHome(options, responseDetails, requestDetails);
        theirs(options, responseDetails, requestDetails);
      };
      chained.set(theirs, wrapper);
      wrappers.add(wrapper);
    }
    return wrapper;
  };

  /**
   * A DPoP-bound request's redirects (followed by follow-redirects, which drops `Authorization` at each hop): the
   * `DPoP` header never goes on, and a hop to an allowed origin gets the token again with a proof of its own.
   */
  const dpopRedirects = (theirs: InternalAxiosRequestConfig['beforeRedirect'], token: OAuthToken): NonNullable<InternalAxiosRequestConfig['beforeRedirect']> =>
    (options, responseDetails, requestDetails) => {
      const next = options as RedirectOptions;
      const headers = next.headers ?? {};
      for (const name of Object.keys(headers)) {
        const lower = name.toLowerCase();
        if (lower === 'dpop' || lower === 'authorization') delete headers[name];
      }
      if (next.href !== undefined && access.allowsUrl(next.href)) {
        headers.authorization = access.authorization(token);
        headers.dpop = access.proof(token, next.method ?? 'GET', next.href);
      }
      theirs?.(options, responseDetails, requestDetails as never);
    };

  // A request whose token is cached when it starts goes through a synchronous interceptor: axios runs its request
  // interceptors without a promise hop only when every one that applies is synchronous. A request that must wait for
  // a token goes through the asynchronous one. Both check the target again when they run (an interceptor that ran
  // before them may have changed it, or set its own Authorization).
  const onCached = (config: Tracked): InternalAxiosRequestConfig => {
    const plan = config[PLAN] as Plan;
    return wantsToken(config) ? authorize(config, plan, plan.token!) : config;
  };
  const onWait = async (config: Tracked): Promise<InternalAxiosRequestConfig> => {
    if (!wantsToken(config)) return config;
    const planned = config[PLAN];
    const plan = planned === undefined || planned === LATER ? (config[PLAN] = planFor(config)) : planned;
    if (plan.error !== undefined) throw plan.error;
    const token = access.peek(plan.key) ?? (await access.token(plan.key, config.signal as AbortSignal | undefined));
    return authorize(config, plan, token);
  };

  /** A 401 to a token this adapter sent (already refused): send the request again with a new one (the header marks the retry). */
  const recover = async (config: InternalAxiosRequestConfig, state: Sent, response: AxiosResponse): Promise<AxiosResponse> => {
    discard(response);
    delete (config as Tracked)[PLAN];
    const fresh = await access.token(state.key, config.signal as AbortSignal | undefined);
    access.retried(state.key);
    config.headers.set('Authorization', access.authorization(fresh));
    if (state.dpop !== undefined) config.headers.set('DPoP', access.proof(fresh, config.method ?? 'get', state.dpop.url) ?? null);
    return instance.request(config);
  };

  /** A DPoP-bound request's answer: its nonce learned; when the API asks for a new one, the request sent once more with it. */
  const nonceRetry = (response: AxiosResponse, state: Sent): Promise<AxiosResponse> | undefined => {
    const dpop = state.dpop!;
    if (!access.nonceRetry(dpop.url, response.status, header(response, 'dpop-nonce'), header(response, 'www-authenticate'), dpop.proof) || !dpop.nonceRetry) return undefined;
    const config = response.config;
    discard(response);
    delete (config as Tracked)[PLAN];
    config.headers.set('DPoP', access.proof(dpop.token, config.method ?? 'get', dpop.url));
    return instance.request(config);
  };

  const cachedId = instance.interceptors.request.use(onCached, null, { synchronous: true, runWhen: (config) => isCached(planOf(config)) });
  const waitId = instance.interceptors.request.use(onWait, null, { synchronous: false, runWhen: (config) => !isCached(planOf(config)) });
  const responseId = instance.interceptors.response.use(
    (response) => {
      const sent = sentWith(response.config);
      if (sent?.dpop !== undefined) {
        const again = nonceRetry(response, sent);
        if (again !== undefined) return again;
      }
      const state = response.status === 401 && sent?.retry && !landedElsewhere(response) ? sent : undefined;
      return state && access.unauthorized(state.key, state.accessToken) ? recover(response.config, state, response) : response;
    },
    (error: { response?: AxiosResponse; config?: InternalAxiosRequestConfig }) => {
      const config = error?.config;
      const sent = sentWith(config);
      if (sent?.dpop !== undefined && error.response) {
        const again = nonceRetry(error.response, sent);
        if (again !== undefined) return again;
      }
      const state = error?.response?.status === 401 && sent?.retry && !landedElsewhere(error.response) ? sent : undefined;
      if (state && access.unauthorized(state.key, state.accessToken)) return recover(config!, state, error.response!);
      // The request is over and the caller gets the error: without the token it was sent with (a caller logs errors).
      if (config !== undefined && (config as Tracked)[PLAN] instanceof Plan) concealTokens(error, access.scrub);
      return Promise.reject(error);
    },
  );
  return () => {
    instance.interceptors.request.eject(cachedId);
    instance.interceptors.request.eject(waitId);
    instance.interceptors.response.eject(responseId);
  };
}
