/**
 * Client authentication methods for the token endpoint (RFC 6749 §2.3, RFC 7523 §2.2, RFC 8705 §2).
 * Each method turns the client's credentials into headers and form fields of one token request.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { keyAlgorithms, privateKeyProblem, signJws, toKeyObject } from './jws.js';
import { CallbackError, InvalidOptionError } from '../errors.js';

export type { BasicEncoding, CertificateThumbprint, ClientAssertionSource, ClientAuthMethod, PrivateKeyAlgorithm, KeyObjectLike, X509CertificateLike } from '../types/keys.js';
import type { BasicEncoding, CertificateThumbprint, ClientAssertionSource, ClientAuthMethod, PrivateKeyAlgorithm, KeyObjectLike } from '../types/keys.js';

/** All {@link ClientAuthMethod} values. */
export const CLIENT_AUTH_METHODS: readonly ClientAuthMethod[] = ['client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt', 'tls_client_auth', 'self_signed_tls_client_auth', 'none'];

/** The HMAC algorithms of `client_secret_jwt`, strongest last. */
export const SECRET_JWT_ALGORITHMS: readonly PrivateKeyAlgorithm[] = ['HS256', 'HS384', 'HS512'];

/** Every {@link PrivateKeyAlgorithm}. */
export const CLIENT_ASSERTION_ALGORITHMS: readonly PrivateKeyAlgorithm[] = [
  ...SECRET_JWT_ALGORITHMS, 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519',
];

/**
 * What worked at each token endpoint for `client_secret_basic` when the encoding is automatic, learnt from the
 * server's answers. One per Client (shared by its clones); bounded. An endpoint that refused both encodings (a wrong
 * secret, most likely) gets one attempt per token request from then on, the encodings taking turns, so that a wrong
 * secret does not cost two refused requests each time (lockout counters), and an endpoint that wants the raw pair
 * is still found once the client is accepted again.
 */
export class BasicEncodingMemory {
  readonly #byEndpoint = new Map<string, BasicEncoding | { alone: BasicEncoding }>();

  /** The encoding that worked at `tokenUrl`, or undefined when nothing is known yet (or both were refused). */
  get(tokenUrl: string): BasicEncoding | undefined {
    const known = this.#byEndpoint.get(tokenUrl);
    return typeof known === 'string' ? known : undefined;
  }

  /** After both encodings were refused at `tokenUrl`: the one to try alone next; else undefined. */
  nextAfterRefusals(tokenUrl: string): BasicEncoding | undefined {
    const known = this.#byEndpoint.get(tokenUrl);
    return typeof known === 'object' ? known.alone : undefined;
  }

  /** Remembers that `encoding` is the one to use at `tokenUrl`. */
  set(tokenUrl: string, encoding: BasicEncoding): void {
    this.#put(tokenUrl, encoding);
  }

  /** Remembers that `tried` was refused at `tokenUrl` after the other was too: the other goes alone next time. */
  refused(tokenUrl: string, tried: BasicEncoding): void {
    this.#put(tokenUrl, { alone: tried === 'raw' ? 'rfc6749' : 'raw' });
  }

  #put(tokenUrl: string, value: BasicEncoding | { alone: BasicEncoding }): void {
    if (this.#byEndpoint.size >= 64 && !this.#byEndpoint.has(tokenUrl)) this.#byEndpoint.clear();
    this.#byEndpoint.set(tokenUrl, value);
  }
}

/** What a client authentication method needs. */
export interface ClientAuthInput {
  method: ClientAuthMethod;
  /** Whether `method` was configured (else it is the default, and discovery may choose another the server offers). */
  methodExplicit?: boolean | undefined;
  clientId: string;
  clientSecret: string | undefined;
  /** For `private_key_jwt`: a PEM string, a JWK object or a KeyObject. */
  privateKey?: string | Record<string, unknown> | KeyObjectLike | undefined;
  /**
   * The assertion's signing algorithm. When absent: the first the server's metadata offers that the key (or secret)
   * supports, else the key's default (`HS256` for `client_secret_jwt`).
   */
  algorithm?: PrivateKeyAlgorithm | undefined;
  /** For JWT assertions: the `kid` header. */
  keyId?: string | undefined;
  /** For JWT assertions: the `aud` claim; defaults to the token URL. */
  audience?: string | undefined;
  /** For `private_key_jwt`: the thumbprint members (`x5t#S256`, `x5t`) of the key's certificate, for the header. */
  certificateHeader?: Readonly<Partial<Record<CertificateThumbprint, string>>> | undefined;
  /** For `private_key_jwt`: an assertion issued by the platform, sent instead of one signed here. */
  clientAssertion?: ClientAssertionSource | undefined;
  /** For `client_secret_basic`: the pinned encoding; undefined: automatic (RFC 6749, then raw once if refused). */
  basicEncoding?: BasicEncoding | undefined;
  /** For automatic `client_secret_basic`: what worked per token endpoint. */
  basicMemory?: BasicEncodingMemory | undefined;
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

/**
 * The `Authorization: Basic` value for a client id and secret: per RFC 6749 §2.3.1 (form-urlencoded first), or with
 * `encoding` `raw` as they are (RFC 7617).
 */
export function basicAuthorization(clientId: string, clientSecret: string, encoding: BasicEncoding = 'rfc6749'): string {
  const pair = encoding === 'raw' ? `${clientId}:${clientSecret}` : `${formUrlEncode(clientId)}:${formUrlEncode(clientSecret)}`;
  return `Basic ${Buffer.from(pair).toString('base64')}`;
}

/**
 * Whether the raw Basic form differs from the RFC 6749 one and can be sent: the encoding changes the id or the
 * secret, and the id has no `:` (which would move the split) and neither has a control character.
 */
export function rawBasicDiffers(clientId: string, clientSecret: string): boolean {
  if (formUrlEncode(clientId) === clientId && formUrlEncode(clientSecret) === clientSecret) return false;
  // eslint-disable-next-line no-control-regex
  return !clientId.includes(':') && !/[\u0000-\u001f\u007f]/.test(clientId + clientSecret);
}

/** RFC 7523 §2.2's `client_assertion_type`. */
export const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

function b64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function assertionClaims(input: ClientAuthInput, tokenUrl: string, nowMs: number): Record<string, unknown> {
  const iat = Math.floor(nowMs / 1000);
  return { iss: input.clientId, sub: input.clientId, aud: input.audience ?? tokenUrl, jti: randomUUID(), iat, exp: iat + 60 };
}

/**
 * The algorithms `input` can sign with: the HMAC ones for `client_secret_jwt`, the key's for `private_key_jwt`.
 * @throws InvalidOptionError for a key type no JWS algorithm covers.
 */
function supportedAlgorithms(input: ClientAuthInput, path = 'clientCredentialsAuthCredentials'): readonly PrivateKeyAlgorithm[] {
  if (input.method === 'client_secret_jwt') return SECRET_JWT_ALGORITHMS;
  const key = toKeyObject(input.privateKey!);
  const algorithms = keyAlgorithms(key);
  if (algorithms.length === 0) {
    const detail = key.asymmetricKeyType === 'ec' ? `ec ${key.asymmetricKeyDetails?.namedCurve ?? 'unknown curve'}` : (key.asymmetricKeyType ?? 'unknown');
    throw new InvalidOptionError(`${path}.privateKey`, `has an unsupported key type (${detail})`);
  }
  return algorithms;
}

/**
 * The algorithm of `input`'s assertions: the configured one; else the key's default (`HS256` for a secret) when
 * `serverAlgorithms` (the server's `token_endpoint_auth_signing_alg_values_supported`) is absent or offers it; else
 * the first of `serverAlgorithms` that the key or secret supports; else the key's default.
 */
export function assertionAlgorithm(input: ClientAuthInput, serverAlgorithms?: readonly string[]): PrivateKeyAlgorithm {
  if (input.algorithm) return input.algorithm;
  const supported = supportedAlgorithms(input);
  if (serverAlgorithms && serverAlgorithms.length > 0) {
    if (serverAlgorithms.includes(supported[0]!)) return supported[0]!;
    const offered = serverAlgorithms.find((alg) => supported.includes(alg as PrivateKeyAlgorithm));
    if (offered) return offered as PrivateKeyAlgorithm;
  }
  return supported[0]!;
}

/**
 * Builds a signed client assertion JWT (RFC 7523 §3) for `client_secret_jwt` (HS256/384/512 with the secret) or
 * `private_key_jwt` (the private key), with the algorithm {@link assertionAlgorithm} picks.
 */
export function clientAssertion(input: ClientAuthInput, tokenUrl: string, nowMs: number, serverAlgorithms?: readonly string[]): string {
  const claims = assertionClaims(input, tokenUrl, nowMs);
  const alg = assertionAlgorithm(input, serverAlgorithms);
  const keyId = input.keyId ?? jwkKeyId(input.privateKey);
  const header = { alg, typ: 'JWT', ...(keyId ? { kid: keyId } : {}), ...(input.method === 'private_key_jwt' ? input.certificateHeader : undefined) };
  const signingInput = `${b64url(header)}.${b64url(claims)}`;
  if (input.method === 'client_secret_jwt') {
    return `${signingInput}.${createHmac(`sha${alg.slice(2)}`, input.clientSecret ?? '').update(signingInput).digest('base64url')}`;
  }
  return `${signingInput}.${signJws(alg, toKeyObject(input.privateKey!), signingInput).toString('base64url')}`;
}

/** The `kid` of a private key given as a JWK, when it has one. */
function jwkKeyId(key: ClientAuthInput['privateKey']): string | undefined {
  if (typeof key !== 'object' || key === null || typeof (key as KeyObjectLike).export === 'function') return undefined;
  const kid = (key as Record<string, unknown>)['kid'];
  return typeof kid === 'string' && kid !== '' ? kid : undefined;
}

/** Longest platform assertion accepted, in characters. */
const MAX_ASSERTION_LENGTH = 16_384;

/**
 * The platform's assertion for one token request: `clientAssertion()` called (it may read a file that rotates).
 * @throws CallbackError when it throws or gives something that is not a usable assertion (the value is never quoted).
 */
export async function platformAssertion(source: ClientAssertionSource): Promise<string> {
  let value: unknown;
  try {
    value = await source();
  } catch (error) {
    throw new CallbackError('clientAssertion threw; no token request was sent', { cause: error });
  }
  if (typeof value === 'string') value = value.trim();
  if (typeof value !== 'string' || value === '') throw new CallbackError('clientAssertion must give a non-empty string (a JWT)');
  if (value.length > MAX_ASSERTION_LENGTH || !/^[\x21-\x7E]+$/.test(value)) {
    throw new CallbackError(`clientAssertion gave a value that is not a compact JWT (visible ASCII, at most ${MAX_ASSERTION_LENGTH} characters)`);
  }
  return value;
}

/** The form fields of a token request authenticated with an assertion given by the platform. */
export function platformAssertionParts(clientId: string, assertion: string): ClientAuthParts {
  return { headers: {}, form: { client_id: clientId, client_assertion_type: JWT_BEARER, client_assertion: assertion } };
}

/**
 * The headers and form fields that authenticate a token request with `input.method` (for a platform assertion, see
 * {@link platformAssertionParts}). `basicEncoding` overrides the encoding of `client_secret_basic`.
 */
export function clientAuthParts(input: ClientAuthInput, tokenUrl: string, nowMs: number, serverAlgorithms?: readonly string[], basicEncoding?: BasicEncoding): ClientAuthParts {
  switch (input.method) {
    case 'client_secret_basic':
      return { headers: { authorization: basicAuthorization(input.clientId, input.clientSecret ?? '', basicEncoding ?? input.basicEncoding) }, form: {} };
    case 'client_secret_post':
      return { headers: {}, form: { client_id: input.clientId, client_secret: input.clientSecret ?? '' } };
    case 'client_secret_jwt':
    case 'private_key_jwt':
      return { headers: {}, form: { client_id: input.clientId, client_assertion_type: JWT_BEARER, client_assertion: clientAssertion(input, tokenUrl, nowMs, serverAlgorithms) } };
    case 'tls_client_auth':
    case 'self_signed_tls_client_auth':
    case 'none':
      return { headers: {}, form: { client_id: input.clientId } };
  }
}

/** The methods that send the client secret (as such or as the key of an HMAC assertion). */
const SECRET_METHODS: readonly ClientAuthMethod[] = ['client_secret_basic', 'client_secret_post', 'client_secret_jwt'];

/**
 * Refuses a credential that `input.method` never sends, when the method was chosen explicitly (`none` and the TLS
 * methods are always explicit): the caller meant something else, and a silently unused secret hides the mistake.
 * Without `clientAuthMethod`, a secret and a key together are a legitimate pair: client_secret_basic is used, and
 * private_key_jwt when discovery shows the server does not offer the secret methods.
 */
function checkUnsentCredentials(input: ClientAuthInput, path: string): void {
  if (input.methodExplicit === false) return;
  const method = input.method;
  const secretMethods = SECRET_METHODS.join(', ');
  if (input.clientSecret !== undefined && !SECRET_METHODS.includes(method)) {
    const instead =
      method === 'none'
        ? `a public client has no secret: remove \`oAuthClientSecret\`, or set \`clientAuthMethod\` to one of ${secretMethods} if the server gave this client a secret`
        : method === 'private_key_jwt'
          ? `remove \`oAuthClientSecret\` (the assertion is signed with \`privateKey\`), or leave \`clientAuthMethod\` unset to use the secret (with \`issuer\`, discovery falls back to private_key_jwt when the server does not offer the secret methods)`
          : `the client authenticates with its TLS certificate: remove \`oAuthClientSecret\` (to key a shared token store's entries, use \`tokenStoreKey\`), or set \`clientAuthMethod\` to one of ${secretMethods}`;
    throw new InvalidOptionError(`${path}.oAuthClientSecret`, `is set, but clientAuthMethod ${method} never sends it: ${instead}`);
  }
  if (input.privateKey !== undefined && method !== 'private_key_jwt') {
    const instead = TLS_AUTH_METHODS.includes(method)
      ? 'the TLS client key goes in `tls.key`, not in `privateKey`: move it there'
      : method === 'none'
        ? 'a public client signs nothing: remove `privateKey`, or set `clientAuthMethod` to private_key_jwt'
        : 'remove `privateKey`, or set `clientAuthMethod` to private_key_jwt (or leave it unset to use both, the secret first)';
    throw new InvalidOptionError(`${path}.privateKey`, `is set, but clientAuthMethod ${method} never sends an assertion signed with it: ${instead}`);
  }
}

/** The methods that authenticate with the TLS client certificate (RFC 8705). */
const TLS_AUTH_METHODS: readonly ClientAuthMethod[] = ['tls_client_auth', 'self_signed_tls_client_auth'];

/** Validates that `input` has what its method needs, naming the missing option. */
export function validateClientAuth(input: ClientAuthInput, path: string): void {
  if (!CLIENT_AUTH_METHODS.includes(input.method)) throw new InvalidOptionError(`${path}.clientAuthMethod`, `must be one of ${CLIENT_AUTH_METHODS.join(', ')}`);
  if (input.basicEncoding !== undefined && input.basicEncoding !== 'rfc6749' && input.basicEncoding !== 'raw') {
    throw new InvalidOptionError(`${path}.basicEncoding`, "must be 'rfc6749' or 'raw' (leave it unset for automatic)");
  }
  if (input.basicEncoding === 'raw' && input.clientId.includes(':')) {
    throw new InvalidOptionError(`${path}.basicEncoding`, "cannot be 'raw' with a client id holding ':' (the server would split the id there)");
  }
  if (input.clientAssertion !== undefined) {
    if (typeof input.clientAssertion !== 'function') throw new InvalidOptionError(`${path}.clientAssertion`, 'must be a function returning the assertion (a string or a promise of one)');
    if (input.method !== 'private_key_jwt') throw new InvalidOptionError(`${path}.clientAssertion`, `is sent as a private_key_jwt assertion and cannot be used with ${input.method}`);
    if (input.privateKey !== undefined) throw new InvalidOptionError(`${path}.clientAssertion`, 'and `privateKey` cannot both be set: the assertion is either signed here or given by the platform');
    if (input.clientSecret !== undefined) throw new InvalidOptionError(`${path}.clientAssertion`, 'and `oAuthClientSecret` cannot both be set: an assertion is sent with no secret');
    return;
  }
  const needsSecret = input.method === 'client_secret_basic' || input.method === 'client_secret_post' || input.method === 'client_secret_jwt';
  if (needsSecret && (typeof input.clientSecret !== 'string' || input.clientSecret === '')) {
    throw new InvalidOptionError(`${path}.oAuthClientSecret`, `must be a non-empty string for ${input.method}`);
  }
  if (input.method === 'private_key_jwt') {
    if (!input.privateKey) throw new InvalidOptionError(`${path}.privateKey`, 'is required for private_key_jwt (or `clientAssertion`, an assertion the platform issues)');
    try {
      toKeyObject(input.privateKey);
    } catch {
      throw new InvalidOptionError(`${path}.privateKey`, privateKeyProblem(input.privateKey));
    }
  }
  checkUnsentCredentials(input, path);
  if (input.algorithm !== undefined && !CLIENT_ASSERTION_ALGORITHMS.includes(input.algorithm)) {
    throw new InvalidOptionError(`${path}.privateKeyAlgorithm`, `must be one of ${CLIENT_ASSERTION_ALGORITHMS.join(', ')}`);
  }
  if (input.method === 'client_secret_jwt' || input.method === 'private_key_jwt') {
    const supported = supportedAlgorithms(input, path);
    if (input.algorithm !== undefined && !supported.includes(input.algorithm)) {
      const what = input.method === 'client_secret_jwt' ? 'client_secret_jwt (a shared secret)' : 'this private key';
      throw new InvalidOptionError(`${path}.privateKeyAlgorithm`, `${input.algorithm} is not supported by ${what}; use one of ${supported.join(', ')}`);
    }
  }
}
