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
import type { Client } from '../client.js';
import type { TokenSelector } from '../configuration.js';
import { requireAllowedOrigins, type AccessKey, type TokenAccess } from './tokenAccess.js';

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

/** What an authenticated request was sent with, to recover from its 401. */
interface Sent {
  key: AccessKey;
  accessToken: string;
  retry: boolean;
}

/** Where an authenticated request keeps what it was sent with (a symbol: axios's mergeConfig never copies it to a retry). */
const SENT = Symbol('oauth-client-credentials.sent');

type Tracked = InternalAxiosRequestConfig & { [SENT]?: Sent };

const ABSOLUTE = /^([a-z][a-z\d+\-.]*:)?\/\//i;

/**
 * A URL with the origin axios will call for `config`: `url` when it is absolute (and absolute URLs are allowed),
 * else `baseURL`, which a relative `url` is appended to.
 */
function targetUrl(config: InternalAxiosRequestConfig): string {
  const url = config.url ?? '';
  const base = config.baseURL;
  if (base && (config.allowAbsoluteUrls === false || !ABSOLUTE.test(url))) return base;
  return url;
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
export function attachClientCredentials(instance: AxiosInstance, client: Client, options: AttachOptions = {}): () => void {
  const access: TokenAccess = client.tokenAccess();
  requireAllowedOrigins(access, 'attachClientCredentials()');
  const defaultKey = access.key(options);
  const defaultRetry = options.retryOnUnauthorized ?? access.retryOnUnauthorized;

  const onRequest = async (config: InternalAxiosRequestConfig): Promise<InternalAxiosRequestConfig> => {
    if (config.headers.has('authorization') || !access.allowsUrl(targetUrl(config))) return config;
    const selection = config.oauth;
    const key = selection ? access.key(selection) : defaultKey;
    const token = access.peek(key) ?? (await access.token(key, config.signal as AbortSignal | undefined));
    // A plain assignment, as axios's own docs do: AxiosHeaders#set normalises and validates, which costs more per call.
    config.headers.Authorization = access.authorization(token);
    if ((selection?.retryOnUnauthorized ?? defaultRetry) && replayable(config.data)) (config as Tracked)[SENT] = { key, accessToken: token.accessToken, retry: true };
    return config;
  };

  /** A 401 to a token this adapter sent (already refused): send the request again with a new one (the header marks the retry). */
  const recover = async (config: InternalAxiosRequestConfig, state: Sent): Promise<AxiosResponse> => {
    delete (config as Tracked)[SENT];
    const fresh = await access.token(state.key, config.signal as AbortSignal | undefined);
    access.retried(state.key);
    config.headers.set('Authorization', access.authorization(fresh));
    return instance.request(config);
  };

  const requestId = instance.interceptors.request.use(onRequest);
  const responseId = instance.interceptors.response.use(
    (response) => {
      const state = response.status === 401 ? (response.config as Tracked)[SENT] : undefined;
      return state && access.unauthorized(state.key, state.accessToken) ? recover(response.config, state) : response;
    },
    (error: { response?: AxiosResponse; config?: InternalAxiosRequestConfig }) => {
      const config = error?.config;
      const state = error?.response?.status === 401 && config ? (config as Tracked)[SENT] : undefined;
      return state && access.unauthorized(state.key, state.accessToken) ? recover(config!, state) : Promise.reject(error);
    },
  );
  return () => {
    instance.interceptors.request.eject(requestId);
    instance.interceptors.response.eject(responseId);
  };
}
