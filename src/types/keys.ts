/**
 * Key and client-authentication shapes: the method names, the JWS algorithms, and a `KeyObject` typed by shape.
 * Ground floor: imports nothing.
 */
/**
 * The standard client authentication methods (the IANA "OAuth Token Endpoint Authentication Methods" registry).
 *
 * - `client_secret_basic` (default): HTTP Basic with the id and secret form-urlencoded first (RFC 6749 §2.3.1).
 * - `client_secret_post`: `client_id` and `client_secret` in the form body.
 * - `client_secret_jwt`: a JWT assertion signed with the secret (HS256, HS384 or HS512; RFC 7523).
 * - `private_key_jwt`: a JWT assertion signed with the client's private key (RFC 7523).
 * - `tls_client_auth`, `self_signed_tls_client_auth`: a TLS client certificate (RFC 8705); set `tls` on the Client.
 * - `none`: a public client; only `client_id` is sent.
 */
export type ClientAuthMethod =
  | 'client_secret_basic'
  | 'client_secret_post'
  | 'client_secret_jwt'
  | 'private_key_jwt'
  | 'tls_client_auth'
  | 'self_signed_tls_client_auth'
  | 'none';

/**
 * JWS algorithms of client assertions: `HS256`/`HS384`/`HS512` for `client_secret_jwt`, the others for
 * `private_key_jwt` (each with a key that supports it; `Ed25519` is the fully-specified name of EdDSA on Ed25519).
 */
export type PrivateKeyAlgorithm =
  | 'HS256' | 'HS384' | 'HS512'
  | 'RS256' | 'RS384' | 'RS512'
  | 'PS256' | 'PS384' | 'PS512'
  | 'ES256' | 'ES384' | 'ES512'
  | 'EdDSA' | 'Ed25519';

/**
 * A Node.js `KeyObject` (from `node:crypto`), typed by shape so that the public types do not need Node's types.
 * Any `KeyObject` fits; the key itself is checked at construction.
 */
export interface KeyObjectLike {
  readonly type: string;
  readonly asymmetricKeyType?: string | undefined;
  export(...args: never[]): unknown;
}

/**
 * A Node.js `X509Certificate` (from `node:crypto`), typed by shape so that the public types do not need Node's types.
 */
export interface X509CertificateLike {
  readonly raw: Uint8Array;
  readonly fingerprint256: string;
}

/**
 * A certificate thumbprint header member of a client assertion (RFC 7515 §4.1.7–8): `x5t#S256` (SHA-256), or `x5t`
 * (SHA-1, which Entra ID's v1 endpoint and older ADFS want).
 */
export type CertificateThumbprint = 'x5t#S256' | 'x5t';

/**
 * How `client_secret_basic` encodes the id and secret: `rfc6749` form-urlencodes them first (RFC 6749 §2.3.1: what
 * oidc-provider, django-oauth-toolkit and most servers decode); `raw` sends them as they are (what Glewlwyd, Authlib
 * and @node-oauth/oauth2-server compare).
 */
export type BasicEncoding = 'rfc6749' | 'raw';

/** An assertion the platform issues (a Kubernetes projected service-account token, a CI OIDC token). */
export type ClientAssertionSource = () => string | Promise<string>;
