/**
 * The Client's options as types: `ClientConfiguration`, `ClientCredentialsAuthCredentials`, the token provider and
 * update callback, and the clock. Ground floor: imports only other ground-floor types. Validation and defaults are
 * in `configuration.ts`.
 */
import type { ClientCredentialsAuthManager } from './authManager.js';
import type { DispatcherLike } from './dispatcher.js';
import type { DpopOption } from './dpop.js';
import type { BasicEncoding, CertificateThumbprint, ClientAssertionSource, ClientAuthMethod, KeyObjectLike, PrivateKeyAlgorithm, X509CertificateLike } from './keys.js';
import type { CircuitBreakerOptions, RetryOptions } from './resilience.js';
import type { OAuthToken, OAuthTokenInput } from './token.js';
import type { TokenStore } from './tokenStore.js';

/**
 * A source of time; inject one to drive expiry in tests. `now()` is wall-clock milliseconds since the epoch (token
 * expiry). `monotonic()`, when given, is a clock that never steps (retry budgets, circuit-breaker trials, lease
 * waits); without it an injected clock's `now()` serves for both.
 */
export interface Clock {
  now(): number;
  monotonic?(): number;
}

/**
 * Supplies a token when there is none or it has expired. Return a stored token, or `authManager.fetchToken()`.
 * When it is set, the provider is what refreshes. Inside it, `authManager.getToken()` never waits for the provider
 * itself: it returns the usable token, else a new one from the token endpoint; `client.close()` cancels its
 * `authManager.fetchToken()`.
 */
export type OAuthTokenProvider = {
  // Declared as a method so that a provider whose parameter is annotated with the class `ClientCredentialsAuthManager`
  // (as the seed's examples do) still fits this ground-floor shape (method parameters are compared both ways).
  provide(lastOAuthToken: OAuthToken | undefined, authManager: ClientCredentialsAuthManager): Promise<OAuthTokenInput> | OAuthTokenInput;
}['provide'];

/**
 * Called whenever the token is updated (not for a preset `oAuthToken`); use it to persist tokens. It may be async;
 * a throw or a rejection is reported (`callbackError`, else a process warning) and never breaks a request.
 */
export type OAuthOnTokenUpdate = (token: OAuthToken) => void;

/**
 * OAuth 2.0 Client Credentials Grant credentials (the seed's `clientCredentialsAuthCredentials`).
 *
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-4.4
 */
export interface ClientCredentialsAuthCredentials {
  /** OAuth 2 Client ID. */
  oAuthClientId: string;
  /** OAuth 2 Client Secret. Optional only for `private_key_jwt`, mTLS and `none`. */
  oAuthClientSecret?: string;
  /** Scopes to request, as an array or a space-separated string. */
  oAuthScopes?: string | readonly string[];
  /** A token the application already has; used while it is valid, with no fetch. */
  oAuthToken?: OAuthTokenInput;
  /**
   * Seconds subtracted from a token's expiry before it is considered expired, so a token is never sent in its last
   * moments of validity. Clamped to half the token's lifetime. Default 0.
   */
  clockSkew?: number;
  /** Alias of `clockSkew`, as the reference SDK's code spells it. */
  oAuthClockSkew?: number;
  /** Supplies tokens instead of the built-in fetch; see {@link OAuthTokenProvider}. */
  oAuthTokenProvider?: OAuthTokenProvider;
  /** Called whenever the token is updated; see {@link OAuthOnTokenUpdate}. */
  oAuthOnTokenUpdate?: OAuthOnTokenUpdate;
  /** How the client authenticates at the token endpoint. Default `client_secret_basic`. */
  clientAuthMethod?: ClientAuthMethod;
  /** For `private_key_jwt`: a PEM string, a private JWK or a KeyObject. */
  privateKey?: string | Record<string, unknown> | KeyObjectLike;
  /**
   * The JWS algorithm of the client assertion: `HS256`/`HS384`/`HS512` for `client_secret_jwt`, any the key supports
   * for `private_key_jwt`. Default: the first the server's metadata offers (with `issuer`), else the key's default
   * (`HS256`, `RS256`, `PS256` for an RSA-PSS key, `ES256`/`ES384`/`ES512` by curve, `EdDSA`).
   */
  privateKeyAlgorithm?: PrivateKeyAlgorithm;
  /** For JWT client assertions: the `kid` header. */
  keyId?: string;
  /** For JWT client assertions: the `aud` claim. Default: the token URL. */
  assertionAudience?: string;
  /** RFC 8707 resource indicator(s) sent with the token request. */
  resource?: string | readonly string[];
  /** The `audience` parameter some servers use. */
  audience?: string;
  /**
   * Extra form parameters for the token request, e.g. Zoom's `account_id`. The parameters that have an option of
   * their own (`grant_type`, `scope`, `resource`, `audience`, `client_id`, `client_secret`, `client_assertion`,
   * `client_assertion_type`, in any letter case) and an empty name are refused here.
   */
  tokenParameters?: Record<string, string>;
  /**
   * The `grant_type` of token requests. Default `client_credentials`; a provider's own variant of it, such as Zoom's
   * `account_credentials` (with `tokenParameters: { account_id }`), goes here. Grants of a user or a one-time code
   * (`password`, `authorization_code`, `refresh_token`, `implicit`, device code) are refused.
   */
  grantType?: string;
  /**
   * How `client_secret_basic` encodes the id and secret: `'rfc6749'` form-urlencodes them (RFC 6749 §2.3.1), `'raw'`
   * sends them as they are (servers that compare the raw pair: Glewlwyd, Authlib, @node-oauth/oauth2-server). Default:
   * automatic, RFC 6749 first; when the server refuses the client (`invalid_client`, a bare 401 or 403) and the
   * encoding changed the id or secret, the raw form is tried once, and what worked is remembered per token endpoint
   * (event `basicEncodingLearned`). A secret the encoding leaves unchanged costs nothing extra. Where both forms were
   * refused (a wrong secret), later token requests send one form each, taking turns.
   */
  basicEncoding?: BasicEncoding;
  /**
   * For `private_key_jwt`: the certificate of `privateKey` (PEM, DER or an `X509Certificate`); its thumbprint goes in
   * the assertion header (`x5t#S256`, and `x5t` when `certificateThumbprints` asks), as Entra ID finds certificate
   * credentials. It must be the certificate of `privateKey` (checked at construction).
   */
  certificate?: string | Uint8Array | X509CertificateLike;
  /** Which thumbprints of `certificate` go in the header. Default `['x5t#S256']`; Entra ID's v1 endpoint wants `['x5t']`. */
  certificateThumbprints?: readonly CertificateThumbprint[];
  /**
   * An assertion the platform issues (a Kubernetes projected service-account token, a GitHub Actions OIDC token),
   * sent as `client_assertion` (type `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`) with no secret: workload
   * identity federation. Called for every token request, so it may read a file that rotates. Implies
   * `private_key_jwt`; not with `privateKey` or `oAuthClientSecret`. What it returns is redacted as a secret.
   *
   * @example
   * ```ts
   * clientAssertion: () => readFile('/var/run/secrets/azure/tokens/azure-identity-token', 'utf8'),
   * ```
   */
  clientAssertion?: ClientAssertionSource;
}

/** Options of the `Client`. Only `clientCredentialsAuthCredentials` comes from the seed; the rest are ours. */
export interface ClientConfiguration {
  /** Base URL that relative request paths are resolved against. */
  baseUrl?: string;
  /** The token endpoint: absolute, or a path relative to `baseUrl`. */
  tokenUrl?: string;
  /**
   * The authorization server's issuer identifier, instead of `tokenUrl`: the token endpoint (its mTLS alias for
   * `tls_client_auth`), authentication methods and signing algorithms are read from its metadata (RFC 8414, then
   * OpenID Connect Discovery), which must name this exact issuer. Fetched on first use, cached for an hour.
   */
  issuer?: string;
  /**
   * Timeout in ms for the whole of an API request, body included (a request may override it); also bounds token
   * requests. Default 0: no overall limit (undici's own 300 s for the headers and between body chunks apply).
   */
  timeout?: number;
  /** OAuth 2.0 Client Credentials credentials. */
  clientCredentialsAuthCredentials?: ClientCredentialsAuthCredentials;
  /** Total timeout in ms of one token request. Default: `timeout` when set, else 30,000. */
  tokenRequestTimeout?: number;
  /** Largest token response accepted, in bytes. Default 65,536. */
  maxTokenResponseBytes?: number;
  /**
   * Seconds before the expiry at which a token turns stale and is refreshed in the background. Default: half the
   * token's usable lifetime (a 60 s token is refreshed after 30 s, a 24 h token after 12 h; a server's earlier
   * `refresh_in` wins), which makes a token-endpoint outage shorter than half a token's lifetime fail no request.
   * A smaller value saves token requests (a provider that bills per token) at the cost of that guarantee; a value
   * longer than half the usable lifetime is clamped to that half. `0` turns the stale window off; any other value
   * must be longer than `clockSkew` (else no token would ever be stale before it expires): a shorter one throws
   * `InvalidOptionError`.
   */
  refreshAhead?: number;
  /**
   * Lifetime in seconds assumed when the server sends no `expires_in` and the token is not a JWT with `exp`. Default
   * 300. Clamped to `maxTokenLifetime`, like every lifetime.
   */
  defaultTokenLifetime?: number;
  /** Upper bound in seconds for any token lifetime. Default 31,536,000 (one year). */
  maxTokenLifetime?: number;
  /**
   * Retries of the token endpoint; `false` disables them, `true` (like leaving it out) keeps the defaults. Delays in ms,
   * at most 2^31−1 (Node's timer limit); `maxAttempts` a whole number.
   */
  retry?: Partial<RetryOptions> | boolean;
  /**
   * Circuit breaker for the token endpoint; `false` disables it, `true` (like leaving it out) keeps the defaults.
   * `cooldown` is accepted as the old name of `maxProbeInterval` (ms, at most 2^31−1); `failureThreshold` is a whole
   * number.
   */
  circuitBreaker?: (Partial<CircuitBreakerOptions> & { cooldown?: number }) | boolean;
  /** On a 401 from the API, drop the token, fetch a new one and retry once. Default true. */
  retryOnUnauthorized?: boolean;
  /** Most tokens cached in process (one per scope set / resource); least recently used go first. Default 1,000. */
  maxCachedTokens?: number;
  /** Where tokens are shared between processes; see `TokenStore`. Default: in process only. */
  tokenStore?: TokenStore;
  /** Milliseconds (1 to 2^31−1) a token store operation may take before the Client goes on without it. Default 1,000. */
  tokenStoreTimeout?: number;
  /**
   * The key that authenticates this Client's entries in a shared `tokenStore` (at least 16 bytes; a random value
   * every process of the fleet shares, e.g. `openssl rand -base64 32`). Required with a store other than
   * `MemoryTokenStore` when the credentials hold no secret to derive it from: `none`, `tls_client_auth` or
   * `self_signed_tls_client_auth` without `tls.key`, or an `oAuthTokenProvider` alone. Without a key, anyone who can
   * write the store could choose the token this Client sends. Default: derived from the client secret (scrypt), the
   * `private_key_jwt` key or `tls.key`.
   */
  tokenStoreKey?: string | Uint8Array;
  /** The clock; inject one in tests. */
  clock?: Clock;
  /**
   * An undici dispatcher (Agent, Pool, ProxyAgent, MockAgent) for every request. Default: a keep-alive Agent.
   * Typed by shape ({@link DispatcherLike}) so that the public types do not need undici's (and Node's) types.
   */
  dispatcher?: DispatcherLike;
  /**
   * An HTTP(S) proxy for every request: a URL (`http://user:pass@proxy.internal:3128`), or `'env'` to follow
   * `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` as curl does. Not with `dispatcher` (give the proxy to your own
   * dispatcher then). Default: no proxy (the environment is read only with `'env'`).
   */
  proxy?: string;
  /** TLS options for the default Agent, e.g. `{ cert, key }` for mTLS client authentication (RFC 8705). */
  tls?: { cert?: string | Uint8Array; key?: string | Uint8Array; ca?: string | Uint8Array; passphrase?: string };
  /** Headers sent with every API request. */
  headers?: Record<string, string>;
  /**
   * Origins besides `baseUrl`'s that may receive the access token (for absolute request URLs). With neither
   * `baseUrl` nor `allowedOrigins`, an authenticated request to an absolute URL is refused.
   */
  allowedOrigins?: readonly string[];
  /** The `user-agent` header. */
  userAgent?: string;
  /**
   * DPoP (RFC 9449) sender-constrained tokens: `true` for an ephemeral ES256 key kept for the Client's life, or
   * `{ privateKey, algorithm? }`. Proofs go with token requests and with API requests that carry a `DPoP` token.
   * Tokens are cached per DPoP key: a token store shares them only between Clients configured with the same key.
   */
  dpop?: DpopOption;
  /**
   * Allow plain `http:` to hosts other than this machine: a `tokenUrl` (the client secret goes there) and API origins
   * that receive the access token. Default false: plain `http:` only to loopback (`localhost`, 127.0.0.0/8, `[::1]`).
   */
  allowInsecureHttp?: boolean;
  /** Largest API response body read, in bytes; a larger one rejects with `ResponseTooLargeError`. Default 10,485,760 (10 MiB). */
  maxResponseBytes?: number;
  /** Milliseconds `close()` waits for requests in flight before it destroys the connections left. Default 5,000. */
  closeTimeout?: number;
}
