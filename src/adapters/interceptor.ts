/**
 * `client.interceptor()`: an undici interceptor for `dispatcher.compose(…)`. Requests to the Client's allowed origins
 * get `Authorization` with the Client's token; other origins get nothing. A 401 drops the token (generation-guarded)
 * and the request is dispatched once more with a new one when its body can be replayed (none, a string or bytes).
 *
 * @example
 * ```ts
 * import { Agent, setGlobalDispatcher } from 'undici';
 * setGlobalDispatcher(new Agent().compose(client.interceptor()));
 * await fetch('https://api.example.com/things'); // carries the token
 * ```
 */
import type { Dispatcher } from 'undici';
import type { TokenSelector } from '../configuration.js';
import type { OAuthToken } from '../token.js';
import { requireAllowedOrigins, retryOption, type AccessKey, type TokenAccess } from './tokenAccess.js';
import { assertSelectorKeys, SELECTOR_OPTION_KEYS } from '../optionKeys.js';
import { RuntimeUnsupportedError } from '../errors.js';
import { undiciIsUsable } from '../http/fetchTransport.js';

/** Options of `client.interceptor()`. */
export interface InterceptorOptions extends TokenSelector {
  /** On a 401, drop the token, fetch a new one and retry once (when the body can be replayed). Default: the Client's `retryOnUnauthorized`. */
  retryOnUnauthorized?: boolean;
}

// The keys checked at run time are every key of these options (a type error here when one is added to them alone).
SELECTOR_OPTION_KEYS satisfies Record<keyof InterceptorOptions, true>;

/**
 * An undici interceptor, `(dispatch) => dispatch`, as `Dispatcher.compose()` takes it. Typed by shape, so that the
 * public types need neither undici's nor Node's; any undici dispatcher's `compose()` accepts it.
 */
// The parameters are undici's DispatchOptions and DispatchHandler; `any` keeps undici's types out of ours.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type DispatchInterceptor = (dispatch: (options: any, handler: any) => boolean) => (options: any, handler: any) => boolean;

type Handler = Dispatcher.DispatchHandler;
type Controller = Dispatcher.DispatchController;
type Headers = Dispatcher.DispatchOptions['headers'];
/** Retries a request whose first answer was a 401 to `token`. */
type Retry = (handler: AuthHandler, opts: Dispatcher.DispatchOptions, token: OAuthToken) => void;

/** What an {@link AuthHandler} may do about the answer to an authenticated request. */
interface Recovery {
  /** The request and the token it was sent with. */
  opts: Dispatcher.DispatchOptions;
  token: OAuthToken;
  /** Retries after a 401 (the token refused first); undefined: a 401 goes to the caller. */
  retry?: Retry | undefined;
  /** Refuses the token on a 401 and says whether to retry (false: a route that refuses every token). */
  refuse?: ((token: OAuthToken) => boolean) | undefined;
  /** DPoP: remembers the answer's nonce and says whether to send once more with it (`use_dpop_nonce`). */
  nonce?: ((statusCode: number, headers: unknown, proof: string | undefined) => boolean) | undefined;
  /** DPoP: sends the request once more, with the same token and a new proof. */
  resend?: ((handler: AuthHandler) => void) | undefined;
}

/**
 * undici's request `headers` as this interceptor reads them: an iterable of pairs other than an array (a `Map`, a
 * generator, which can be read only once) as a flat array, read once; an object or a flat array as they are.
 */
function readableHeaders(headers: Headers): Headers {
  if (headers === undefined || headers === null || Array.isArray(headers) || typeof (headers as Partial<Iterable<unknown>>)[Symbol.iterator] !== 'function') return headers;
  const flat: string[] = [];
  for (const [name, value] of headers as Iterable<[string, string]>) flat.push(name, value);
  return flat;
}

/** Whether undici's request `headers` (object or flat array, see {@link readableHeaders}) name `authorization`. */
function hasAuthorization(headers: Headers): boolean {
  if (headers === undefined || headers === null) return false;
  if (Array.isArray(headers)) {
    for (let i = 0; i < headers.length; i += 2) if (String(headers[i]).toLowerCase() === 'authorization') return true;
    return false;
  }
  for (const name in headers) if (name.length === 13 && name.toLowerCase() === 'authorization') return true;
  return false;
}

/** `headers` (object or flat array) plus `authorization: value` (and `dpop: proof` when given), in a new object or array. */
function withAuthorization(headers: Headers, value: string, proof?: string): Headers {
  if (headers === undefined || headers === null) return proof === undefined ? { authorization: value } : { authorization: value, dpop: proof };
  if (Array.isArray(headers)) return proof === undefined ? [...(headers as string[]), 'authorization', value] : [...(headers as string[]), 'authorization', value, 'dpop', proof];
  if (proof === undefined) return { ...(headers as Record<string, string>), authorization: value };
  return { ...(headers as Record<string, string>), authorization: value, dpop: proof };
}

/** One value of a response header as undici's handlers receive them (lower-case names; a string or several). */
function headerValue(headers: unknown, name: string): string | undefined {
  const value = (headers as Record<string, string | string[] | undefined> | null)?.[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

/** Whether a request body can be dispatched twice. */
function replayable(body: unknown): boolean {
  return body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array;
}

/** The reason an attempt whose answer is swallowed is aborted with (never shown: the retry follows). */
const SWALLOWED = new Error('oauth-client-credentials: answered by sending the request again');

/**
 * Wraps the caller's handler for one authenticated request: it is the controller the caller sees (so an abort
 * reaches whichever attempt is current, or the wait for a token), and it swallows a first 401 to retry.
 */
class AuthHandler implements Handler, Controller {
  readonly #handler: Handler;
  #controller: Controller | undefined;
  #started = false;
  #finished = false;
  #abortReason: Error | null = null;
  /** Aborts a wait for a token. */
  #waiting: AbortController | undefined;
  /** The 401 answer being swallowed before a retry: for a new token, or for the DPoP nonce. */
  #swallowing: 'token' | 'nonce' | undefined;
  /** Called at the end of a swallowed 401; undefined once retried (or when retry is off). */
  #retry: Retry | undefined;
  /** Resends with the DPoP nonce; undefined once done. */
  #resend: ((handler: AuthHandler) => void) | undefined;
  /** What the request was sent with, and how to recover; undefined while waiting for the first token. */
  readonly #recovery: Recovery | undefined;
  /** The URLs of the hops so far, when undici's redirect interceptor runs inside this one (its `context.history`). */
  #history: readonly URL[] | undefined;
  /** The DPoP proof the current attempt was sent with (a `use_dpop_nonce` refusal is retried when it is outdated). */
  proof: string | undefined = undefined;

  constructor(handler: Handler, recovery?: Recovery) {
    this.#handler = handler;
    this.#recovery = recovery;
    this.#retry = recovery?.retry;
    this.#resend = recovery?.resend;
  }

  // The controller the caller sees.
  get aborted(): boolean {
    return this.#abortReason !== null || (this.#controller?.aborted ?? false);
  }
  get paused(): boolean {
    return this.#controller?.paused ?? false;
  }
  get reason(): Error | null {
    return this.#abortReason ?? this.#controller?.reason ?? null;
  }
  abort(reason: Error): void {
    if (this.#abortReason !== null) return;
    this.#abortReason = reason;
    if (this.#waiting) this.#waiting.abort(reason);
    else this.#controller?.abort(reason);
  }
  pause(): void {
    this.#controller?.pause();
  }
  resume(): void {
    this.#controller?.resume();
  }

  /** Tells the caller the request started before it is dispatched (so it can abort the wait for a token). */
  startEarly(): void {
    this.#started = true;
    this.#handler.onRequestStart?.(this, {});
  }

  /** A signal for a wait for a token, aborted by the caller's abort. */
  waitSignal(): AbortSignal {
    this.#waiting = new AbortController();
    if (this.#abortReason) this.#waiting.abort(this.#abortReason);
    return this.#waiting.signal;
  }

  /** The wait for a token is over. */
  waited(): void {
    this.#waiting = undefined;
  }

  /** Ends the request with `error` (a token that could not be had, or an abort). */
  fail(error: Error): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#handler.onResponseError?.(this, this.#abortReason ?? error);
  }

  // The handler the dispatcher sees.
  onRequestStart(controller: Controller, context: unknown): void {
    this.#controller = controller;
    this.#history = (context as { history?: readonly URL[] } | undefined)?.history;
    if (this.#abortReason) {
      controller.abort(this.#abortReason);
      return;
    }
    if (this.#started) return;
    this.#started = true;
    this.#handler.onRequestStart?.(this, context);
  }

  onRequestUpgrade(controller: Controller, statusCode: number, headers: Parameters<NonNullable<Handler['onRequestUpgrade']>>[2], socket: Parameters<NonNullable<Handler['onRequestUpgrade']>>[3]): void {
    this.#handler.onRequestUpgrade?.(this, statusCode, headers, socket);
  }

  onResponseStart(controller: Controller, statusCode: number, headers: Parameters<NonNullable<Handler['onResponseStart']>>[2], statusMessage?: string): void {
    const recovery = this.#recovery;
    if (recovery?.nonce?.(statusCode, headers, this.proof) && this.#resend !== undefined) return this.#swallow(controller, 'nonce');
    if (statusCode === 401 && this.#retry !== undefined && !this.#landedElsewhere() && (recovery!.refuse?.(recovery!.token) ?? true)) return this.#swallow(controller, 'token');
    this.#handler.onResponseStart?.(this, statusCode, headers, statusMessage);
  }

  /**
   * Answers a response by sending the request again, without reading its body: the attempt is aborted at once (a
   * server dripping that body would otherwise hold the request, which the caller cannot see), and the retry goes out
   * when undici reports the abort.
   */
  #swallow(controller: Controller, why: 'token' | 'nonce'): void {
    this.#swallowing = why;
    this.#controller = undefined;
    controller.abort(SWALLOWED);
  }

  /** Sends the request again after a swallowed answer (for a new token, or with the DPoP nonce). */
  #again(): void {
    const why = this.#swallowing;
    this.#swallowing = undefined;
    if (why === 'nonce') {
      const resend = this.#resend!;
      this.#resend = undefined;
      resend(this);
    } else {
      const retry = this.#retry!;
      this.#retry = undefined;
      retry(this, this.#recovery!.opts, this.#recovery!.token);
    }
  }

  /**
   * Whether the answer came from another origin than the one the token went to, after redirects followed inside this
   * interceptor (undici's redirect interceptor drops `Authorization` on a cross-origin hop): its 401 is not the token's.
   */
  #landedElsewhere(): boolean {
    const history = this.#history;
    if (history === undefined || history.length < 2) return false;
    try {
      return history[history.length - 1]!.origin !== new URL(String(this.#recovery!.opts.origin)).origin;
    } catch {
      return true;
    }
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    if (this.#swallowing !== undefined) return;
    this.#handler.onResponseData?.(this, chunk);
  }

  onResponseEnd(controller: Controller, trailers: Parameters<NonNullable<Handler['onResponseEnd']>>[1]): void {
    if (this.#swallowing !== undefined) return this.#again();
    this.#finished = true;
    this.#handler.onResponseEnd?.(this, trailers);
  }

  onResponseError(controller: Controller, error: Error): void {
    // The abort of a swallowed answer, unless the caller aborted meanwhile.
    if (error === SWALLOWED && this.#swallowing !== undefined && this.#abortReason === null) return this.#again();
    this.#swallowing = undefined;
    this.#resend = undefined;
    this.#retry = undefined;
    if (this.#finished) return;
    this.#finished = true;
    this.#handler.onResponseError?.(this, error === SWALLOWED ? (this.#abortReason ?? error) : error);
  }
}

/** Builds the interceptor of `client.interceptor(options)`. Throws `InvalidOptionError` when the Client allows no origin. */
export function createInterceptor(access: TokenAccess, options: InterceptorOptions = {}): DispatchInterceptor {
  // A JavaScript caller's null selects nothing, like undefined.
  return interceptorOf(access, options ?? {}) as DispatchInterceptor;
}

function interceptorOf(access: TokenAccess, options: InterceptorOptions): Dispatcher.DispatcherComposeInterceptor {
  requireAllowedOrigins(access, 'client.interceptor()');
  if (!undiciIsUsable()) {
    // Bun's `undici` is a stub: no `Dispatcher.compose`, and its global fetch ignores undici's global dispatcher.
    throw new RuntimeUnsupportedError("client.interceptor() needs undici's Dispatcher.compose, which this runtime's undici lacks (Bun's undici is a stub): use client.fetch (or the axios adapter) instead");
  }
  assertSelectorKeys(options, '', 'of client.interceptor()');
  const key: AccessKey = access.key(options);
  const retryOnUnauthorized = retryOption(options.retryOnUnauthorized, 'retryOnUnauthorized') ?? access.retryOnUnauthorized;
  // The token endpoint is never given a token (and never waits on one: that would wait on itself).
  let endpointOrigin: string | undefined;
  let endpointPath: string | undefined;
  if (access.tokenEndpoint) {
    const u = new URL(access.tokenEndpoint);
    endpointOrigin = u.origin;
    endpointPath = u.pathname;
  }
  if (endpointOrigin !== undefined && !access.allowsOrigin(endpointOrigin)) endpointPath = undefined; // never authenticated anyway
  const isEndpoint = (opts: Dispatcher.DispatchOptions): boolean => {
    if (endpointPath === undefined || !opts.path?.startsWith(endpointPath)) return false;
    const origin = typeof opts.origin === 'string' ? opts.origin : opts.origin?.origin;
    if (origin !== endpointOrigin && !(origin !== undefined && safeOrigin(origin) === endpointOrigin)) return false;
    const next = opts.path.charCodeAt(endpointPath.length);
    return Number.isNaN(next) || next === 63 /* ? */;
  };

  return (dispatch) => {
    /** Dispatches `opts` with `token` (and, for a DPoP-bound token, a new proof for this method and URL). */
    const send = (opts: Dispatcher.DispatchOptions, handler: Handler, token: OAuthToken): boolean => {
      const proof = access.dpop ? access.proof(token, opts.method, urlOf(opts)) : undefined;
      const sent: Dispatcher.DispatchOptions & { maxRedirections?: number } = { ...opts, headers: withAuthorization(opts.headers, access.authorization(token), proof) };
      // A proof is for one URL, and a redirect interceptor inside this one would carry it to each hop (undici drops
      // only Authorization): a DPoP-bound request is not followed there. Listed after ours, it still follows.
      if (proof !== undefined) {
        sent.maxRedirections = 0;
        if (handler instanceof AuthHandler) handler.proof = proof;
      }
      return dispatch(sent, handler);
    };

    const refuse = (token: OAuthToken): boolean => access.unauthorized(key, token.accessToken);
    /** Waits for a token (the caller's abort ends the wait), then `go`; a failure of either ends the request. */
    const afterToken = (handler: AuthHandler, go: (token: OAuthToken) => void): void => {
      access.token(key, handler.waitSignal()).then(
        (token) => {
          handler.waited();
          try {
            go(token);
          } catch (error) {
            handler.fail(error as Error);
          }
        },
        (error: Error) => {
          handler.waited();
          handler.fail(error);
        },
      );
    };
    const retry: Retry = (handler, opts) => {
      afterToken(handler, (fresh) => {
        access.retried(key);
        send(opts, handler, fresh);
      });
    };
    /**
     * The handler of a request sent with `token`: the caller's own, or one that recovers from a 401 (`canRetry`)
     * and, for a DPoP-bound token, learns the API's nonces and sends once more when it asks for a new one.
     */
    const handlerFor = (handler: Handler, opts: Dispatcher.DispatchOptions, token: OAuthToken, canRetry: boolean): Handler => {
      const dpop = access.dpop && access.dpopBound(token);
      if (!canRetry && !dpop) return handler;
      const recovery: Recovery = { opts, token, retry: canRetry ? retry : undefined, refuse };
      if (dpop) {
        const url = urlOf(opts);
        const again = replayable(opts.body);
        recovery.nonce = (statusCode, headers, proof) => access.nonceRetry(url, statusCode, headerValue(headers, 'dpop-nonce'), headerValue(headers, 'www-authenticate'), proof) && again;
        recovery.resend = (self) => send(opts, self, token);
      }
      return new AuthHandler(handler, recovery);
    };

    return function authenticate(opts, handler) {
      if (!access.allowsOrigin(opts.origin)) return dispatch(opts, handler);
      const headers = readableHeaders(opts.headers);
      if (headers !== opts.headers) opts = { ...opts, headers };
      if (hasAuthorization(headers) || isEndpoint(opts)) return dispatch(opts, handler);
      const canRetry = retryOnUnauthorized && replayable(opts.body);
      const token = access.peek(key);
      if (token !== undefined) return send(opts, handlerFor(handler, opts, token, canRetry), token);
      // No usable token: wait for one, then dispatch. The caller can abort the wait.
      const wrapper = new AuthHandler(handler);
      wrapper.startEarly();
      afterToken(wrapper, (first) => {
        if (wrapper.aborted) return wrapper.fail(wrapper.reason!);
        send(opts, handlerFor(wrapper, opts, first, canRetry), first);
      });
      return true;
    };
  };
}

/** The URL of a dispatch, for a DPoP proof's `htu`: the origin (a string or a URL) and the path. */
function urlOf(opts: Dispatcher.DispatchOptions): string {
  const origin = typeof opts.origin === 'string' ? opts.origin : (opts.origin?.origin ?? '');
  return `${origin.endsWith('/') ? origin.slice(0, -1) : origin}${opts.path}`;
}

/** `new URL(origin).origin`, or undefined. */
function safeOrigin(origin: string): string | undefined {
  try {
    return new URL(origin).origin;
  } catch {
    return undefined;
  }
}
