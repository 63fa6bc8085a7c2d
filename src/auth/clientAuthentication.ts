/**
 * Client authentication methods for the token endpoint (RFC 6749 §2.3, RFC 7523 §2.2, RFC 8705 §2).
 * Each method turns the client's credentials into headers and form fields of one token request.
 */
import { createHmac, createPrivateKey, randomUUID, sign, type KeyObject } from 'node:crypto';
import { InvalidOptionError } from '../errors.js';

/**
 * The standard client authentication methods (the IANA "OAuth Token Endpoint Authentication Methods" registry).
 *
 * - `client_secret_basic` (default): HTTP Basic with the id and secret form-urlencoded first (RFC 6749 §2.3.1).
 * - `client_secret_post`: `client_id` and `client_secret` in the form body.
 * - `client_secret_jwt`: an HS256 JWT assertion signed with the secret (RFC 7523).
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

/** All {@link ClientAuthMethod} values. */
export const CLIENT_AUTH_METHODS: readonly ClientAuthMethod[] = ['client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt', 'tls_client_auth', 'self_signed_tls_client_auth', 'none'];

/** JWS algorithms supported for `private_key_jwt`. */
export type PrivateKeyAlgorithm = 'RS256' | 'RS384' | 'RS512' | 'PS256' | 'PS384' | 'PS512' | 'ES256' | 'ES384' | 'ES512' | 'EdDSA';

/**
 * A Node.js `KeyObject` (from `node:crypto`), typed by shape so that the public types do not need Node's types.
 * Any `KeyObject` fits; the key itself is checked at construction.
 */
export interface KeyObjectLike {
  readonly type: string;
  readonly asymmetricKeyType?: string | undefined;
  export(...args: never[]): unknown;
}

/** What a client authentication method needs. */
export interface ClientAuthInput {
  method: ClientAuthMethod;
  clientId: string;
  clientSecret: string | undefined;
  /** For `private_key_jwt`: a PEM string, a JWK object or a KeyObject. */
  privateKey?: string | Record<string, unknown> | KeyObjectLike | undefined;
  /** For `private_key_jwt`: the signing algorithm; derived from the key when absent. */
  algorithm?: PrivateKeyAlgorithm | undefined;
  /** For JWT assertions: the `kid` header. */
  keyId?: string | undefined;
  /** For JWT assertions: the `aud` claim; defaults to the token URL. */
  audience?: string | undefined;
}

/** Headers and form fields that authenticate one token request. */
export interface ClientAuthParts {
  headers: Record<string, string>;
  form: Record<string, string>;
}

/** RFC 6749 Appendix B form-urlencoding, as §2.3.1 requires before Basic: spaces become `+`. */
export function formUrlEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`).replace(/%20/g, '+');
}

/** The `Authorization: Basic` value for a client id and secret, per RFC 6749 §2.3.1. */
export function basicAuthorization(clientId: string, clientSecret: string): string {
  return `Basic ${Buffer.from(`${formUrlEncode(clientId)}:${formUrlEncode(clientSecret)}`).toString('base64')}`;
}

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

function b64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function assertionClaims(input: ClientAuthInput, tokenUrl: string, nowMs: number): Record<string, unknown> {
  const iat = Math.floor(nowMs / 1000);
  return { iss: input.clientId, sub: input.clientId, aud: input.audience ?? tokenUrl, jti: randomUUID(), iat, exp: iat + 60 };
}

function toKeyObject(key: NonNullable<ClientAuthInput['privateKey']>): KeyObject {
  if (typeof key === 'string') return createPrivateKey(key);
  if ('asymmetricKeyType' in key && typeof (key as KeyObjectLike).export === 'function') return key as unknown as KeyObject;
  return createPrivateKey({ key: key as import('node:crypto').JsonWebKey, format: 'jwk' });
}

function defaultAlgorithm(key: KeyObject): PrivateKeyAlgorithm {
  switch (key.asymmetricKeyType) {
    case 'rsa': return 'RS256';
    case 'rsa-pss': return 'PS256';
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      return curve === 'secp384r1' ? 'ES384' : curve === 'secp521r1' ? 'ES512' : 'ES256';
    }
    case 'ed25519':
    case 'ed448': return 'EdDSA';
    default: throw new InvalidOptionError('clientCredentialsAuthCredentials.privateKey', `has an unsupported key type (${key.asymmetricKeyType ?? 'unknown'})`);
  }
}

function signJws(alg: PrivateKeyAlgorithm, key: KeyObject, input: string): Buffer {
  if (alg === 'EdDSA') return sign(null, Buffer.from(input), key);
  const hash = `sha${alg.slice(2)}`;
  if (alg.startsWith('PS')) return sign(hash, Buffer.from(input), { key, padding: 6 /* RSA_PKCS1_PSS_PADDING */, saltLength: Number(alg.slice(2)) / 8 });
  if (alg.startsWith('ES')) return sign(hash, Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  return sign(hash, Buffer.from(input), key);
}

/**
 * Builds a signed client assertion JWT (RFC 7523 §3) for `client_secret_jwt` (HS256 with the secret) or
 * `private_key_jwt` (the private key).
 */
export function clientAssertion(input: ClientAuthInput, tokenUrl: string, nowMs: number): string {
  const claims = assertionClaims(input, tokenUrl, nowMs);
  if (input.method === 'client_secret_jwt') {
    const signingInput = `${b64url({ alg: 'HS256', typ: 'JWT', ...(input.keyId ? { kid: input.keyId } : {}) })}.${b64url(claims)}`;
    return `${signingInput}.${createHmac('sha256', input.clientSecret ?? '').update(signingInput).digest('base64url')}`;
  }
  const key = toKeyObject(input.privateKey!);
  const alg = input.algorithm ?? defaultAlgorithm(key);
  const signingInput = `${b64url({ alg, typ: 'JWT', ...(input.keyId ? { kid: input.keyId } : {}) })}.${b64url(claims)}`;
  return `${signingInput}.${signJws(alg, key, signingInput).toString('base64url')}`;
}

/** The headers and form fields that authenticate a token request with `input.method`. */
export function clientAuthParts(input: ClientAuthInput, tokenUrl: string, nowMs: number): ClientAuthParts {
  switch (input.method) {
    case 'client_secret_basic':
      return { headers: { authorization: basicAuthorization(input.clientId, input.clientSecret ?? '') }, form: {} };
    case 'client_secret_post':
      return { headers: {}, form: { client_id: input.clientId, client_secret: input.clientSecret ?? '' } };
    case 'client_secret_jwt':
    case 'private_key_jwt':
      return { headers: {}, form: { client_id: input.clientId, client_assertion_type: JWT_BEARER, client_assertion: clientAssertion(input, tokenUrl, nowMs) } };
    case 'tls_client_auth':
    case 'self_signed_tls_client_auth':
    case 'none':
      return { headers: {}, form: { client_id: input.clientId } };
  }
}

/** Validates that `input` has what its method needs, naming the missing option. */
export function validateClientAuth(input: ClientAuthInput, path: string): void {
  if (!CLIENT_AUTH_METHODS.includes(input.method)) throw new InvalidOptionError(`${path}.clientAuthMethod`, `must be one of ${CLIENT_AUTH_METHODS.join(', ')}`);
  const needsSecret = input.method === 'client_secret_basic' || input.method === 'client_secret_post' || input.method === 'client_secret_jwt';
  if (needsSecret && (typeof input.clientSecret !== 'string' || input.clientSecret === '')) {
    throw new InvalidOptionError(`${path}.oAuthClientSecret`, `must be a non-empty string for ${input.method}`);
  }
  if (input.method === 'private_key_jwt') {
    if (!input.privateKey) throw new InvalidOptionError(`${path}.privateKey`, 'is required for private_key_jwt');
    try {
      const key = toKeyObject(input.privateKey);
      if (!input.algorithm) defaultAlgorithm(key);
    } catch (error) {
      if (error instanceof InvalidOptionError) throw error;
      throw new InvalidOptionError(`${path}.privateKey`, 'is not a valid private key (PEM, JWK or KeyObject)');
    }
  }
}
