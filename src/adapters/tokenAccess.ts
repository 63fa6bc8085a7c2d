/**
 * The Client's token machinery as the adapters (`client.fetch`, `client.interceptor()`, the axios adapter) see it:
 * which origins may receive the token, the cached token now (the hot path), a token after waiting, and the
 * refusal of a token a resource answered 401 to. One object per Client, built on first use.
 */
import type { TokenSelector } from '../configuration.js';
import { InvalidOptionError, MissingCredentialsError, TimeoutError } from '../errors.js';
import type { EventHub, ClientStats } from '../events.js';
import type { TokenLifecycle } from '../auth/tokenLifecycle.js';
import type { OAuthToken } from '../token.js';
import type { DispatcherLike } from '../configuration.js';
import { asksForNonce, type DpopSigner } from '../auth/dpop.js';
import { assertSecureDestination } from '../http/requestGuard.js';

/** The cache key of one token selection (opaque to the adapters). */
export type AccessKey = Parameters<TokenLifecycle['peek']>[0];

/** What {@link createTokenAccess} needs from the Client. */
export interface TokenAccessParts {
  lifecycle: Pick<TokenLifecycle, 'peek' | 'get' | 'wait' | 'refuse'>;
  events: EventHub;
  counters: Pick<ClientStats, 'unauthorizedRetries'>;
  defaultKey: AccessKey;
  keyFor: (selector?: TokenSelector) => AccessKey;
  allowedOrigins: ReadonlySet<string>;
  hasCredentials: boolean;
  retryOnUnauthorized: boolean;
  /** Default bound, in ms, of a wait for a token (the Client's `timeout`); 0: none. */
  timeout: number;
  tokenUrl: string | undefined;
  /** The dispatcher the Client was configured with (`dispatcher`, or its own for `tls`); undefined: undici's global one. */
  dispatcher: DispatcherLike | undefined;
  /** The Client's DPoP key (`dpop` option), or undefined. */
  dpop: DpopSigner | undefined;
  /** The Client's `baseUrl`, which relative URLs are appended to. */
  baseUrl?: string | undefined;
  /** Learns a token before it is sent (the Client's redactor). */
  learn?: (accessToken: string) => void;
  /** Replaces every token and secret the Client knows in a string or plain data (the Client's redactor). */
  scrub?: <T>(value: T) => T;
  /** The Client's `allowInsecureHttp`: without it, no allowed origin may be plain `http:` to another machine. */
  allowInsecureHttp?: boolean;
}

/** @internal The token machinery shared by the adapters. */
export interface TokenAccess {
  /** Origins (normal form) that may receive the token. */
  readonly allowedOrigins: ReadonlySet<string>;
  /** The Client's `allowInsecureHttp`. */
  readonly allowInsecureHttp: boolean;
  /** The Client's `retryOnUnauthorized`. */
  readonly retryOnUnauthorized: boolean;
  /** The token endpoint as `origin + path` (no query), so an adapter never authenticates the token request itself. */
  readonly tokenEndpoint: string | undefined;
  /** The dispatcher the Client was configured with (`dispatcher` or `tls`), else undefined (the global one). */
  readonly dispatcher: DispatcherLike | undefined;
  /** Whether the Client has a DPoP key (then a token of type DPoP goes out with a proof). */
  readonly dpop: boolean;
  /** The Client's `baseUrl` (relative URLs are appended to it, as `client.request` does), or undefined. */
  readonly baseUrl: string | undefined;
  /** Whether `url` (absolute) is on an allowed origin. Normal-form URLs are checked without parsing. */
  allowsUrl(url: string): boolean;
  /** Whether `origin` (as undici passes it: a string or a URL) is allowed. */
  allowsOrigin(origin: string | URL | undefined): boolean;
  /** The cache key of a selection; the default key when it selects nothing. Throws `InvalidOptionError` on bad input. */
  key(selector?: TokenSelector): AccessKey;
  /** The token to send now without waiting (fresh or stale), else undefined. */
  peek(key: AccessKey): OAuthToken | undefined;
  /**
   * A token, waiting on the shared fetch when needed; the wait is bounded by `signal` and `timeout` (ms; default the
   * Client's `timeout`; 0: none), which rejects with `TimeoutError`. The shared fetch goes on for later callers.
   */
  token(key: AccessKey, signal?: AbortSignal | null, timeout?: number): Promise<OAuthToken>;
  /**
   * A resource answered 401 to `accessToken`: refuse it for good (never installed again from any source) and say
   * whether to retry with a new token; false when the key's previous token was refused moments ago too (a route that
   * refuses every token: the 401 goes to the caller, with no token request).
   */
  unauthorized(key: AccessKey, accessToken: string): boolean;
  /** Counts a request retried after a 401, and emits `unauthorizedRetried`. */
  retried(key: AccessKey): void;
  /** The `Authorization` header value of `token`, built once per token. */
  authorization(token: OAuthToken): string;
  /** Whether `token` goes out with a DPoP proof: the Client has a DPoP key and the token is of type DPoP. */
  dpopBound(token: OAuthToken): boolean;
  /**
   * The `DPoP` proof (RFC 9449 §7) for sending `token` with `method` to `url` (htm, htu, ath, the origin's last
   * nonce), or undefined when the token is not DPoP-bound or the Client has no DPoP key. A new proof per call.
   */
  proof(token: OAuthToken, method: string, url: string): string | undefined;
  /**
   * Remembers the `DPoP-Nonce` (`nonce`) a response from `url` carried, and says whether the request is worth one
   * more try: a 401 whose `WWW-Authenticate` asks for `use_dpop_nonce`, when the nonce now known for the origin is not
   * the one `proof` (the refused request's) carried. Requests sent together with the same stale nonce each get their
   * retry, not only the one whose answer brought the new nonce first. No `proof`: remembers only.
   */
  nonceRetry(url: string, status: number, nonce: string | null | undefined, wwwAuthenticate: string | null | undefined, proof?: string): boolean;
  /**
   * `value` with every token and secret the Client knows replaced by `[redacted]`: a string, or plain data (arrays and
   * plain objects, changed in place). Anything else is returned as it is.
   */
  scrub<T>(value: T): T;
}

/**
 * What the adapters need of a Client: its token access. `Client` implements it; adapters take this, not the class,
 * so that they sit below `client.ts` rather than importing it.
 */
export interface TokenAccessSource {
  /** @internal The token machinery for the adapters. */
  tokenAccess(): TokenAccess;
}

/** The `Authorization` value of a token: `Bearer <token>` (the scheme normalised), or `<type> <token>`. */
export function authorizationValue(token: OAuthToken): string {
  const type = token.tokenType;
  return `${type === 'Bearer' || type.toLowerCase() === 'bearer' ? 'Bearer' : type} ${token.accessToken}`;
}

/** Whether `token` is sent with a DPoP proof (`token_type` DPoP, any case). */
function isDpopBound(token: OAuthToken): boolean {
  const type = token.tokenType;
  return type === 'DPoP' || (type.length === 4 && type.toLowerCase() === 'dpop');
}

/** A string, or plain data (an array, or an object whose prototype is `Object.prototype` or null). */
function isPlain(value: unknown): boolean {
  if (typeof value === 'string') return true;
  if (typeof value !== 'object' || value === null) return false;
  if (Array.isArray(value)) return true;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/** `origin + pathname` of `url`, or undefined when it does not parse. */
function endpointOf(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return undefined;
  }
}

/** Builds the {@link TokenAccess} of one Client. */
export function createTokenAccess(parts: TokenAccessParts): TokenAccess {
  const { lifecycle, events, counters, allowedOrigins, timeout, dpop } = parts;
  const learn = parts.learn;
  const scrub = parts.scrub;
  // Origins seen in a form other than the normal one (`HTTP://Host:80`), with their verdict.
  const verdicts = new Map<string, boolean>();
  const slowAllows = (origin: string): boolean => {
    let verdict = verdicts.get(origin);
    if (verdict === undefined) {
      try {
        verdict = allowedOrigins.has(new URL(origin).origin);
      } catch {
        verdict = false;
      }
      if (verdicts.size >= 256) verdicts.clear();
      verdicts.set(origin, verdict);
    }
    return verdict;
  };
  /** The origin of the last URL `allowsUrl` allowed (normal form, so a prefix match up to `/` is exact). */
  let lastOrigin = '';
  let lastToken: OAuthToken | undefined;
  let lastAccessToken = '';
  let lastType = '';
  let lastAuthorization = '';
  return {
    allowedOrigins,
    allowInsecureHttp: parts.allowInsecureHttp ?? false,
    retryOnUnauthorized: parts.retryOnUnauthorized,
    tokenEndpoint: endpointOf(parts.tokenUrl),
    dispatcher: parts.dispatcher,
    baseUrl: parts.baseUrl,
    dpop: dpop !== undefined,
    allowsUrl(url) {
      // The origin of the last allowed URL, matched with startsWith: no substring to build and hash per call.
      const last = lastOrigin;
      if (last !== '' && url.startsWith(last) && (url.length === last.length || url.charCodeAt(last.length) === 47 /* / */)) return true;
      // `scheme://host[:port]` up to the first `/` (or the whole URL: a `baseURL` such as `https://api.example.com`)
      // is the origin when it is in normal form: allowed origins are normal-form strings, so an exact match cannot be
      // fooled by userinfo, `\`, `?` or `#` (none of which they hold).
      const scheme = url.startsWith('https://') ? 8 : url.startsWith('http://') ? 7 : 0;
      if (scheme !== 0) {
        const slash = url.indexOf('/', scheme);
        const origin = slash < 0 ? url : url.slice(0, slash);
        if (allowedOrigins.has(origin)) {
          lastOrigin = origin;
          return true;
        }
      }
      try {
        return allowedOrigins.has(new URL(url).origin);
      } catch {
        return false;
      }
    },
    allowsOrigin(origin) {
      if (origin === undefined) return false;
      if (typeof origin !== 'string') return allowedOrigins.has(origin.origin);
      return allowedOrigins.has(origin) || slowAllows(origin);
    },
    key(selector) {
      if (!selector || (selector.scopes === undefined && selector.resource === undefined && selector.audience === undefined)) return parts.defaultKey;
      return parts.keyFor(selector);
    },
    peek(key) {
      return parts.hasCredentials ? lifecycle.peek(key) : undefined;
    },
    async token(key, signal, bound = timeout) {
      if (!parts.hasCredentials) throw new MissingCredentialsError();
      if (bound <= 0) return lifecycle.get(key, signal ?? undefined);
      const timer = new AbortController();
      const handle = setTimeout(() => timer.abort(new TimeoutError(`Waiting for an OAuth token timed out after ${bound} ms`, bound)), bound);
      try {
        return await lifecycle.get(key, signal ? AbortSignal.any([signal, timer.signal]) : timer.signal);
      } catch (error) {
        if (timer.signal.aborted && !signal?.aborted) throw timer.signal.reason;
        throw error;
      } finally {
        clearTimeout(handle);
      }
    },
    unauthorized(key, accessToken) {
      return lifecycle.refuse(key, accessToken) !== 'throttled';
    },
    retried(key) {
      counters.unauthorizedRetries++;
      if (events.has('unauthorizedRetried')) events.emit('unauthorizedRetried', { key: key.hash });
    },
    authorization(token) {
      if (token !== lastToken || token.accessToken !== lastAccessToken || token.tokenType !== lastType) {
        learn?.(token.accessToken);
        lastAuthorization = authorizationValue(token);
        lastToken = token;
        lastAccessToken = token.accessToken;
        lastType = token.tokenType;
      }
      return lastAuthorization;
    },
    dpopBound(token) {
      return dpop !== undefined && isDpopBound(token);
    },
    proof(token, method, url) {
      return dpop !== undefined && isDpopBound(token) ? dpop.proof(method, url, token.accessToken) : undefined;
    },
    nonceRetry(url, status, nonce, wwwAuthenticate, proof) {
      if (dpop === undefined) return false;
      if (nonce) dpop.remember(url, { 'dpop-nonce': nonce });
      return status === 401 && proof !== undefined && wwwAuthenticate != null && asksForNonce({ 'www-authenticate': wwwAuthenticate }) && dpop.hasNewerNonce(url, proof);
    },
    scrub(value) {
      return scrub === undefined || !isPlain(value) ? value : scrub(value);
    },
  };
}

/**
 * A `retryOnUnauthorized` option of an adapter (`path` names it): a boolean, or undefined for the default. Anything
 * else is an {@link InvalidOptionError}, as in `client.request` (a JavaScript caller's `'false'` would turn retries on).
 */
export function retryOption(value: unknown, path: string): boolean | undefined {
  if (value === undefined || typeof value === 'boolean') return value;
  throw new InvalidOptionError(path, `must be a boolean, got ${value === null ? 'null' : typeof value}`);
}

/**
 * Throws unless the Client names at least one origin that may receive its token (adapters never guess), and, without
 * `allowInsecureHttp`, none of them is plain `http:` to another machine (the token would cross the network in clear).
 */
export function requireAllowedOrigins(access: TokenAccess, adapter: string): void {
  if (access.allowedOrigins.size === 0) {
    throw new InvalidOptionError('allowedOrigins', `must name at least one origin (or set \`baseUrl\`) for ${adapter}: it sends the token to those origins only`);
  }
  for (const origin of access.allowedOrigins) assertSecureDestination(origin, access.allowInsecureHttp);
}
