/**
 * oauth-client-credentials: OAuth 2.0 Client Credentials Grant (RFC 6749 §4.4) for Node.js.
 * The public surface, re-exported explicitly.
 */
export { Client, type RequestOptions, type ApiResponse, type ResponseFor, type QueryValue } from './client.js';
export type { ResponseType } from './http/responseBody.js';
export { ClientCredentialsAuthManager } from './auth/authManager.js';
export { OAuthAuthorizationController } from './auth/authorizationController.js';
export type { TokenEndpointResponse } from './auth/tokenEndpoint.js';
export {
  systemClock,
  type Clock,
  type ClientConfiguration,
  type ClientCredentialsAuthCredentials,
  type OAuthTokenProvider,
  type OAuthOnTokenUpdate,
  type TokenSelector,
  type DispatcherLike,
} from './configuration.js';
export type { JsonValue, OAuthToken, OAuthTokenInput } from './token.js';
export {
  ErrorCode,
  ClientCredentialsError,
  InvalidOptionError,
  MissingCredentialsError,
  NetworkError,
  TimeoutError,
  AbortError,
  MalformedTokenResponseError,
  TokenExpiredError,
  RetriesExhaustedError,
  CircuitOpenError,
  CallbackError,
  TokenStoreError,
  UnsafeTokenStoreFolderError,
  ApiError,
  OAuthProviderError,
  ResponseParseError,
  type OAuthProviderErrorBody,
  TokenEndpointRedirectError,
  InvalidTokenError,
  ResponseTooLargeError,
  TokenLifetimeError,
  RuntimeUnsupportedError,
  isClientCredentialsError,
} from './errors.js';
export {
  CLIENT_AUTH_METHODS, type BasicEncoding, type CertificateThumbprint, type ClientAssertionSource, type ClientAuthMethod, type KeyObjectLike, type PrivateKeyAlgorithm,
  type X509CertificateLike,
} from './auth/clientAuthentication.js';
export type { RetryOptions, CircuitBreakerOptions } from './auth/resilience.js';
export { DIAGNOSTICS_CHANNEL_PREFIX, type ClientEvents, type ClientEventName, type ClientStats, type TokenInfo, type Listener, type TokenRequestStart, type TokenRequestEnd } from './events.js';
export type { ClientFetch, ClientFetchInit, ClientFetchOptions } from './adapters/fetch.js';
export type { DispatchInterceptor, InterceptorOptions } from './adapters/interceptor.js';
export type { TokenStore, TokenLease } from './stores/tokenStore.js';
export { MemoryTokenStore, type MemoryTokenStoreOptions } from './stores/memory.js';
export { FileTokenStore, defaultTokenFilePath, type FileTokenStoreOptions } from './stores/file.js';
export { decodeJwt, type DecodedJwt } from './jwt.js';
export { DiscoveryError, type DiscoveryFailure } from './errors.js';
export type { AuthorizationServerMetadata } from './auth/discovery.js';
export type { DpopOption } from './auth/dpop.js';
