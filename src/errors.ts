/**
 * The error classes this library throws. Every error extends {@link ClientCredentialsError},
 * carries a stable `code` from {@link ErrorCode}, and keeps the original error in `cause`.
 * No message ever contains a client secret or an access token.
 */

/** Stable error codes. Compare `error.code` against these, never the message. */
export const ErrorCode = {
  /** An option passed to a constructor is missing or of the wrong type or range. */
  InvalidOption: 'ERR_INVALID_OPTION',
  /** An authenticated call was made on a client that has no client credentials. */
  MissingCredentials: 'ERR_MISSING_CREDENTIALS',
  /** The authorization server answered with an RFC 6749 §5.2 error (`invalid_client`, `invalid_scope`…). */
  OAuthProvider: 'ERR_OAUTH_PROVIDER',
  /** A server answered with a status the caller did not expect (non-2xx from the API, or a bare error from the token endpoint). */
  UnexpectedStatus: 'ERR_UNEXPECTED_STATUS',
  /** The connection failed: refused, reset, DNS, TLS. */
  Network: 'ERR_NETWORK',
  /** A request took longer than its timeout. */
  Timeout: 'ERR_TIMEOUT',
  /** The caller's `AbortSignal` fired, or a token was needed after `client.close()`. */
  Aborted: 'ERR_ABORTED',
  /** The token endpoint answered 2xx with something that is not a usable token response. */
  MalformedTokenResponse: 'ERR_MALFORMED_TOKEN_RESPONSE',
  /** A token (preset, provided or stored) is expired and no fresh one could be had. */
  TokenExpired: 'ERR_TOKEN_EXPIRED',
  /** Retries of the token endpoint ran out (attempts or total time); `cause` is the last failure. */
  RetriesExhausted: 'ERR_RETRIES_EXHAUSTED',
  /** The token endpoint failed repeatedly, so calls fail fast for a cool-down; `cause` is the last failure. */
  CircuitOpen: 'ERR_CIRCUIT_OPEN',
  /** A user callback (`oAuthTokenProvider`) threw or returned something that is not a token. */
  Callback: 'ERR_CALLBACK',
  /** A token store (file, Redis…) failed or timed out; reported in the `storeError` event, never thrown by requests. */
  TokenStore: 'ERR_TOKEN_STORE',
  /** A token arrived with less than a second of usable life (expired at birth, or shorter-lived than the clock skew allows). */
  TokenLifetime: 'ERR_TOKEN_LIFETIME',
  /** Authorization server metadata (`issuer`) could not be found or used, or does not offer what is configured. */
  Discovery: 'ERR_DISCOVERY',
  /** A 2xx response said it was JSON (or `responseType: 'json'` asked for JSON) but its body does not parse. */
  ResponseParse: 'ERR_RESPONSE_PARSE',
  /** The token endpoint answered with a redirect (3xx); token requests never follow one. */
  TokenEndpointRedirect: 'ERR_TOKEN_ENDPOINT_REDIRECT',
  /** A token from the application or a store (preset, provider, `updateToken`, stored) has an unusable field. */
  InvalidToken: 'ERR_INVALID_TOKEN',
  /** An API response body is larger than `maxResponseBytes`. */
  ResponseTooLarge: 'ERR_RESPONSE_TOO_LARGE',
  /** A FileTokenStore folder is owned by another user or writable by others, so its entries cannot be trusted. */
  UnsafeTokenStoreFolder: 'ERR_UNSAFE_TOKEN_STORE_FOLDER',
  /**
   * The runtime refused or lacks something the Client needs, and no retry can fix it: a Deno permission (`--allow-env`,
   * `--allow-net` for the host), or an undici feature Bun does not have (`Agent.compose`). The message names the fix.
   */
  RuntimeUnsupported: 'ERR_RUNTIME_UNSUPPORTED',
} as const;

/** One of the {@link ErrorCode} values. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/**
 * The brand every {@link ClientCredentialsError} carries, under a registry symbol: two installed copies of this
 * package (or two realms) share it, so {@link isClientCredentialsError} recognises the other copy's errors where
 * `instanceof` cannot.
 */
const BRAND: unique symbol = Symbol.for('oauth-client-credentials.error') as never;

/** Base class of every error this library throws. */
export class ClientCredentialsError extends Error {
  override name = 'ClientCredentialsError';
  /** Stable machine-readable code; see {@link ErrorCode}. */
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }

  /** A JSON view with name, code and message (and the cause's, when it is one of ours). */
  toJSON(): Record<string, unknown> {
    const cause = this.cause instanceof ClientCredentialsError ? this.cause.toJSON() : undefined;
    return { name: this.name, code: this.code, message: this.message, ...(cause ? { cause } : {}) };
  }
}
Object.defineProperty(ClientCredentialsError.prototype, BRAND, { value: true });

/**
 * True when `error` is one of this library's errors, from this copy of the package or any other (a second install in
 * `node_modules`, another realm), and, with `code`, has that {@link ErrorCode}. Use it where `instanceof` may see two
 * different classes, e.g. in a library that takes a Client from its caller.
 *
 * @example
 * ```ts
 * if (isClientCredentialsError(error, ErrorCode.Timeout)) retryLater();
 * ```
 */
export function isClientCredentialsError<C extends ErrorCode = ErrorCode>(error: unknown, code?: C): error is ClientCredentialsError & { readonly code: C } {
  if (typeof error !== 'object' || error === null || (error as { [BRAND]?: unknown })[BRAND] !== true) return false;
  return code === undefined || (error as { code?: unknown }).code === code;
}

/** An option is missing or invalid; the message names the option's path, e.g. `clientCredentialsAuthCredentials.clockSkew`. */
export class InvalidOptionError extends ClientCredentialsError {
  override name = 'InvalidOptionError';
  /** Path of the offending option. */
  readonly option: string;
  constructor(option: string, problem: string) {
    super(ErrorCode.InvalidOption, `The \`${option}\` option ${problem}`);
    this.option = option;
  }
}

/** An authenticated call was made but the client has no `oAuthClientId`/`oAuthClientSecret` (nor a token source). */
export class MissingCredentialsError extends ClientCredentialsError {
  override name = 'MissingCredentialsError';
  constructor(message = 'Client is not authorized: set clientCredentialsAuthCredentials (oAuthClientId and oAuthClientSecret) to call endpoints that need an OAuth token.') {
    super(ErrorCode.MissingCredentials, message);
  }
}

/** The connection to a server failed before a response arrived. */
export class NetworkError extends ClientCredentialsError {
  override name = 'NetworkError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.Network, message, options);
  }
}

/** A request exceeded its timeout. */
export class TimeoutError extends ClientCredentialsError {
  override name = 'TimeoutError';
  /** The timeout that passed, in milliseconds. */
  readonly timeout: number;
  constructor(message: string, timeout: number, options?: { cause?: unknown }) {
    super(ErrorCode.Timeout, message, options);
    this.timeout = timeout;
  }
}

/** The caller's `AbortSignal` aborted the request (`cause` is the signal's reason), or the Client was closed. */
export class AbortError extends ClientCredentialsError {
  override name = 'AbortError';
  constructor(message = 'The request was aborted', options?: { cause?: unknown }) {
    super(ErrorCode.Aborted, message, options);
  }
}

/** The token endpoint answered 2xx with a body that is not a usable token response (not JSON, too large, no `access_token`). */
export class MalformedTokenResponseError extends ClientCredentialsError {
  override name = 'MalformedTokenResponseError';
  /** HTTP status of the response. */
  readonly statusCode: number;
  constructor(message: string, statusCode: number, options?: { cause?: unknown }) {
    super(ErrorCode.MalformedTokenResponse, message, options);
    this.statusCode = statusCode;
  }
}

/** A token is expired and could not be replaced. */
export class TokenExpiredError extends ClientCredentialsError {
  override name = 'TokenExpiredError';
  constructor(message = 'OAuth token is expired: a valid token is needed to make API calls.', options?: { cause?: unknown }) {
    super(ErrorCode.TokenExpired, message, options);
  }
}

/** The token endpoint kept failing with retryable errors until the retry budget ran out. */
export class RetriesExhaustedError extends ClientCredentialsError {
  override name = 'RetriesExhaustedError';
  /** How many attempts were made. */
  readonly attempts: number;
  constructor(attempts: number, cause: unknown) {
    super(ErrorCode.RetriesExhausted, `The token endpoint failed ${attempts} time(s); giving up: ${messageOf(cause)}`, { cause });
    this.attempts = attempts;
  }
}

/** The circuit breaker is open: the token endpoint failed repeatedly and is given a cool-down. */
export class CircuitOpenError extends ClientCredentialsError {
  override name = 'CircuitOpenError';
  /** Unix time in milliseconds at which a trial request will be let through. */
  readonly retryAt: number;
  /** Milliseconds from when this error was made until a trial request will be let through. */
  readonly retryInMs: number;
  constructor(retryAt: number, cause: unknown, retryInMs = 0) {
    super(ErrorCode.CircuitOpen, `The token endpoint is failing; the next trial request goes out in ${Math.max(Math.ceil(retryInMs), 0)} ms. Last failure: ${messageOf(cause)}`, { cause });
    this.retryAt = retryAt;
    this.retryInMs = retryInMs;
  }
}

/**
 * A user callback misbehaved: `oAuthTokenProvider` threw or returned something that is not an OAuthToken, or
 * `clientAssertion` threw or gave no usable assertion.
 */
export class CallbackError extends ClientCredentialsError {
  override name = 'CallbackError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.Callback, message, options);
  }
}

/**
 * A token store operation failed or timed out. The Client never throws it from a request: it is reported in the
 * `storeError` event and the Client goes on with its in-process cache. The message names the operation only.
 */
export class TokenStoreError extends ClientCredentialsError {
  override name = 'TokenStoreError';
  /** The store operation, e.g. `get`, `set`, `acquireLease`. */
  readonly operation: string;
  constructor(operation: string, message: string, options?: { cause?: unknown }) {
    super(ErrorCode.TokenStore, message, options);
    this.operation = operation;
  }
}

/** A server answered with a non-2xx status. `result` is the parsed JSON body when there was one. */
export class ApiError<T = unknown> extends ClientCredentialsError {
  override name = 'ApiError';
  /** HTTP status code. */
  readonly statusCode: number;
  /** Response headers, lower-cased. */
  readonly headers: Record<string, string>;
  /** Raw response body. */
  readonly body: string;
  /** Parsed JSON body, when the body was JSON. */
  readonly result: T | undefined;

  constructor(
    response: { statusCode: number; headers: Record<string, string>; body: string; result?: T },
    message?: string,
    code: ErrorCode = ErrorCode.UnexpectedStatus,
  ) {
    super(code, message ?? `Server responded with status ${response.statusCode}`);
    this.statusCode = response.statusCode;
    this.headers = response.headers;
    this.body = response.body;
    this.result = response.result;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), statusCode: this.statusCode };
  }
}

/** The RFC 6749 §5.2 error body of a token endpoint. */
export interface OAuthProviderErrorBody {
  error: string;
  error_description?: string;
  error_uri?: string;
}

const CONTROL_ESCAPES: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\b': '\\b', '\f': '\\f' };

/**
 * Server text for an error message, which ends up in logs: control characters as JSON writes them (`\r`, `\n`,
 * `\u001b`…), and the line separators and bidirectional marks that reorder or split what a terminal shows, as
 * `\uXXXX`, so that it stays one honest line.
 */
export function escapeControls(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => CONTROL_ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * The authorization server refused the token request with an RFC 6749 §5.2 error.
 * The message keeps the server's `error` and `error_description`.
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-5.2
 */
export class OAuthProviderError extends ApiError<OAuthProviderErrorBody> {
  override name = 'OAuthProviderError';
  /** The server's `error` value, e.g. `invalid_client`. */
  readonly error: string;
  /** The server's `error_description`, when it sent one. */
  readonly errorDescription: string | undefined;
  /** The server's `error_uri`, when it sent one. */
  readonly errorUri: string | undefined;

  constructor(response: { statusCode: number; headers: Record<string, string>; body: string; result: OAuthProviderErrorBody }) {
    const { error, error_description: rawDescription, error_uri: rawUri } = response.result;
    // The server's JSON is not trusted to match RFC 6749 §5.2: a non-string description or URI is left out.
    const description = typeof rawDescription === 'string' && rawDescription !== '' ? rawDescription : undefined;
    // RFC 6749 §5.2 allows no control character in either: escaped in the message, which ends up in logs.
    super(response, `OAuth provider error ${response.statusCode} ${escapeControls(error)}${description ? `: ${escapeControls(description)}` : ''}`, ErrorCode.OAuthProvider);
    this.error = error;
    this.errorDescription = description;
    this.errorUri = typeof rawUri === 'string' ? rawUri : undefined;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), error: this.error, errorDescription: this.errorDescription };
  }
}

/** The message of any thrown value, for composing messages. */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/**
 * A token arrived with less than a second of usable life: expired at birth (a server clock far ahead, `expires_in: 0`),
 * or a lifetime shorter than the clock skew allows. It is not cached: caching it would mean one token request per
 * call. From the token endpoint it counts towards opening the circuit, which bounds the requests.
 */
export class TokenLifetimeError extends ClientCredentialsError {
  override name = 'TokenLifetimeError';
  /** Milliseconds of usable life the token had when it arrived (0 or less: expired). */
  readonly usableMs: number;
  constructor(message: string, usableMs: number) {
    super(ErrorCode.TokenLifetime, message);
    this.usableMs = usableMs;
  }
}

/** Why discovery failed; see {@link DiscoveryError}. */
export type DiscoveryFailure = 'not_found' | 'issuer_mismatch' | 'invalid_metadata' | 'insecure_endpoint' | 'unsupported_method' | 'unsupported_algorithm';

/**
 * Authorization server metadata (RFC 8414, OpenID Connect Discovery) for the configured `issuer` could not be
 * found or used: none at either well-known URL, an `issuer` that does not match, no `token_endpoint`; or the server
 * does not offer the configured client authentication method or signing algorithm. `reason` says which.
 */
export class DiscoveryError extends ClientCredentialsError {
  override name = 'DiscoveryError';
  /** Which check failed. */
  readonly reason: DiscoveryFailure;
  constructor(reason: DiscoveryFailure, message: string, options?: { cause?: unknown }) {
    super(ErrorCode.Discovery, message, options);
    this.reason = reason;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), reason: this.reason };
  }
}

/**
 * A 2xx response whose body should be JSON (a JSON `content-type`, or `responseType: 'json'`) does not parse. The
 * raw text is in `body`, the `SyntaxError` in `cause`; the message does not quote the body. Ask for
 * `responseType: 'text'` to take such a body as it is.
 */
export class ResponseParseError extends ClientCredentialsError {
  override name = 'ResponseParseError';
  /** HTTP status code. */
  readonly statusCode: number;
  /** Response headers, lower-cased. */
  readonly headers: Record<string, string>;
  /** The body that did not parse. */
  readonly body: string;
  constructor(response: { statusCode: number; headers: Record<string, string>; body: string }, message: string, options?: { cause?: unknown }) {
    super(ErrorCode.ResponseParse, message, options);
    this.statusCode = response.statusCode;
    this.headers = response.headers;
    this.body = response.body;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), statusCode: this.statusCode };
  }
}

/**
 * The token endpoint answered with a redirect. Token requests never follow redirects, whatever the dispatcher: the
 * request carries the client's credentials, and a redirect would send them (and take a token) from another origin.
 * Set `tokenUrl` to the URL the endpoint really answers on.
 */
export class TokenEndpointRedirectError extends ClientCredentialsError {
  override name = 'TokenEndpointRedirectError';
  /** HTTP status of the redirect (301, 302, 303, 307, 308…). */
  readonly statusCode: number;
  /** The origin the redirect points at (`https://host:port`), or undefined when it had no usable `Location`. */
  readonly location: string | undefined;
  constructor(statusCode: number, location: string | undefined, tokenUrl: string) {
    super(
      ErrorCode.TokenEndpointRedirect,
      `The token endpoint ${tokenUrl} answered ${statusCode} with a redirect${location ? ` to ${location}` : ''}; token requests never follow redirects (set \`tokenUrl\` to the endpoint's real URL)`,
    );
    this.statusCode = statusCode;
    this.location = location;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), statusCode: this.statusCode, location: this.location };
  }
}

/**
 * A token handed in by the application or read back from a store (preset `oAuthToken`, `oAuthTokenProvider`,
 * `updateToken()`, a stored entry) has a field that cannot be used: an `accessToken` that an `Authorization` header
 * cannot carry unchanged (empty, spaces, control characters, non-ASCII), or a `tokenType` that is not an RFC 6749 token type. Such a token is never cached or stored. The
 * message names the field and the source, never the value.
 */
export class InvalidTokenError extends ClientCredentialsError {
  override name = 'InvalidTokenError';
  /** The offending field: `accessToken` or `tokenType`. */
  readonly field: string;
  /** Where the token came from, e.g. `value returned by oAuthTokenProvider`. */
  readonly source: string;
  constructor(field: string, source: string, problem: string) {
    super(ErrorCode.InvalidToken, `The ${source} has an unusable \`${field}\`: ${problem}`);
    this.field = field;
    this.source = source;
  }
}

/** An API response body is larger than the Client's `maxResponseBytes`; reading stopped at the limit. */
export class ResponseTooLargeError extends ClientCredentialsError {
  override name = 'ResponseTooLargeError';
  /** The limit that was exceeded, in bytes. */
  readonly limit: number;
  /** HTTP status of the response. */
  readonly statusCode: number;
  constructor(message: string, limit: number, statusCode: number) {
    super(ErrorCode.ResponseTooLarge, message);
    this.limit = limit;
    this.statusCode = statusCode;
  }
}

/**
 * A `FileTokenStore` refused its folder: another user owns it, or users other than its owner can write to it (either
 * could plant tokens or leases). Thrown by the constructor when the folder exists; reported as the `cause` of a
 * `storeError` when the folder turns unsafe later.
 */
export class UnsafeTokenStoreFolderError extends ClientCredentialsError {
  override name = 'UnsafeTokenStoreFolderError';
  /** The folder refused. */
  readonly folder: string;
  /** Why: `owner` (another user owns it) or `mode` (group or others may write to it). */
  readonly reason: 'owner' | 'mode';
  constructor(folder: string, reason: 'owner' | 'mode', detail: string) {
    super(ErrorCode.UnsafeTokenStoreFolder, `FileTokenStore refuses the folder ${folder}: ${detail}`);
    this.folder = folder;
    this.reason = reason;
  }
}

/**
 * The runtime refused or lacks something the Client needs, and retrying cannot help: a Deno permission that was not
 * granted (undici reads environment variables: run with `--allow-env`, or `--allow-env=<names>`), or an undici feature
 * a runtime does not have (Bun has no `Agent.compose`: use `client.fetch` there). The message names the fix; `cause`
 * is the runtime's own error.
 */
export class RuntimeUnsupportedError extends ClientCredentialsError {
  override name = 'RuntimeUnsupportedError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.RuntimeUnsupported, message, options);
  }
}
