/**
 * client-credentials: OAuth 2.0 Client Credentials Grant (RFC 6749 §4.4) for Node.js.
 * The public surface, re-exported explicitly.
 */
export { Client, type RequestOptions, type ApiResponse, type QueryValue } from './client.js';
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
} from './configuration.js';
export type { OAuthToken, OAuthTokenInput } from './token.js';
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
  type OAuthProviderErrorBody,
} from './errors.js';
export { CLIENT_AUTH_METHODS, type ClientAuthMethod, type PrivateKeyAlgorithm } from './auth/clientAuthentication.js';
export type { RetryOptions, CircuitBreakerOptions } from './auth/resilience.js';
export type { ClientEvents, ClientEventName, ClientStats, TokenInfo, Listener } from './events.js';
export type { TokenStore, TokenLease } from './stores/tokenStore.js';
export { MemoryTokenStore, type MemoryTokenStoreOptions } from './stores/memory.js';
export { FileTokenStore, defaultTokenFilePath, type FileTokenStoreOptions } from './stores/file.js';
export { decodeJwt, type DecodedJwt } from './jwt.js';
