/**
 * DPoP (RFC 9449): sender-constrained access tokens. The Client signs a proof JWT with its DPoP key for every token
 * request (`DPoP` header) and, when the token it holds is of type `DPoP`, for every API request (with `ath`, the
 * token's hash). Server nonces are honoured at both: a token endpoint `use_dpop_nonce` error and an API
 * `WWW-Authenticate: DPoP error="use_dpop_nonce"` are each retried once with the nonce, and the last nonce each
 * origin sent (`DPoP-Nonce`) is remembered for the next proof to it.
 *
 * One key per Client, shared by its clones and its token cache; `iat` is read from the Client's clock.
 */
import { createHash, createPublicKey, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { InvalidOptionError } from '../errors.js';
import type { HttpRequest, HttpResponse, Transport } from '../http/transport.js';
import type { KeyObjectLike, PrivateKeyAlgorithm } from '../types/keys.js';
import { keyAlgorithms, privateKeyProblem, signJws, toKeyObject } from './jws.js';

export type { DpopOption } from '../types/dpop.js';
import type { DpopOption } from '../types/dpop.js';

/** Most origins whose nonce is remembered; the oldest is forgotten first. */
const MAX_NONCES = 256;

/** Base64url SHA-256 of `value`: the `ath` claim, and JWK thumbprints. */
function sha256(value: string): string {
  return createHash('sha256').update(value).digest('base64url');
}

function b64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** RFC 7638 JWK thumbprint (SHA-256) of a public JWK. */
export function jwkThumbprint(jwk: PublicJwk): string {
  const members: Record<string, readonly string[]> = { RSA: ['e', 'kty', 'n'], EC: ['crv', 'kty', 'x', 'y'], OKP: ['crv', 'kty', 'x'] };
  const names = members[jwk.kty ?? ''];
  if (!names) throw new TypeError(`unsupported JWK kty ${String(jwk.kty)}`);
  const canonical = `{${names.map((n) => `${JSON.stringify(n)}:${JSON.stringify((jwk as Record<string, unknown>)[n])}`).join(',')}}`;
  return sha256(canonical);
}

/** `url` without query, fragment and credentials: the `htu` claim (RFC 9449 §4.2). */
export function htu(url: string): string {
  const u = new URL(url);
  u.search = '';
  u.hash = '';
  u.username = '';
  u.password = '';
  return u.href;
}

/** The `nonce` claim of a proof this module signed (undefined when it has none). */
function nonceClaim(proof: string): unknown {
  const payload = proof.slice(proof.indexOf('.') + 1, proof.lastIndexOf('.'));
  return (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { nonce?: unknown }).nonce;
}

function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
}

/** A public JWK (the members a proof header and a thumbprint need). */
export interface PublicJwk {
  readonly kty?: string | undefined;
  readonly [member: string]: unknown;
}

/** The DPoP key of one Client: signs proofs and remembers server nonces per origin. */
export class DpopSigner {
  readonly algorithm: PrivateKeyAlgorithm;
  /** The public key, as put in each proof's header. */
  readonly publicJwk: PublicJwk;
  /** RFC 7638 thumbprint of the public key (the `jkt` of bound tokens). */
  readonly thumbprint: string;
  readonly #key: KeyObject;
  readonly #now: () => number;
  readonly #nonces = new Map<string, string>();

  /** @param key a private `KeyObject` (typed by shape: the public types do not need Node's). */
  constructor(key: KeyObjectLike, algorithm: PrivateKeyAlgorithm, now: () => number) {
    this.#key = key as KeyObject;
    this.algorithm = algorithm;
    this.#now = now;
    const { kty, crv, x, y, n, e } = createPublicKey(this.#key).export({ format: 'jwk' });
    this.publicJwk = Object.fromEntries(Object.entries({ kty, crv, x, y, n, e }).filter(([, v]) => v !== undefined)) as PublicJwk;
    this.thumbprint = jwkThumbprint(this.publicJwk);
  }

  /** A signed proof for `method` on `url`, bound to `accessToken` (`ath`) when given, with the origin's nonce when known. */
  proof(method: string, url: string, accessToken?: string): string {
    const header = { typ: 'dpop+jwt', alg: this.algorithm, jwk: this.publicJwk };
    const nonce = this.#nonces.get(originOf(url));
    const payload = {
      jti: randomUUID(),
      htm: method.toUpperCase(),
      htu: htu(url),
      iat: Math.floor(this.#now() / 1000),
      ...(nonce !== undefined ? { nonce } : {}),
      ...(accessToken !== undefined ? { ath: sha256(accessToken) } : {}),
    };
    const signingInput = `${b64url(header)}.${b64url(payload)}`;
    return `${signingInput}.${signJws(this.algorithm, this.#key, signingInput).toString('base64url')}`;
  }

  /** The nonce last received from `url`'s origin. */
  nonce(url: string): string | undefined {
    return this.#nonces.get(originOf(url));
  }

  /**
   * Whether the nonce remembered for `url`'s origin is one `proof` did not carry, so a `use_dpop_nonce` refusal of
   * that proof is worth one retry. Compared with the proof, not with the nonce known before its answer: requests sent
   * together with the same stale nonce are each refused, and only the first answer brings a nonce new to the Client.
   */
  hasNewerNonce(url: string, proof: string): boolean {
    const nonce = this.nonce(url);
    return nonce !== undefined && nonce !== nonceClaim(proof);
  }

  /**
   * Remembers the `DPoP-Nonce` of a response from `url`.
   * @returns true when it is a new nonce (worth a retry after a `use_dpop_nonce` error).
   */
  remember(url: string, headers: Record<string, string>): boolean {
    const value = headers['dpop-nonce'];
    if (!value || !/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(value)) return false;
    const origin = originOf(url);
    if (this.#nonces.get(origin) === value) return false;
    this.#nonces.delete(origin);
    if (this.#nonces.size >= MAX_NONCES) this.#nonces.delete(this.#nonces.keys().next().value!);
    this.#nonces.set(origin, value);
    return true;
  }
}

/**
 * The signer for a `dpop` option (path `dpop`), or undefined when it is absent or false.
 * @throws InvalidOptionError for a key that cannot sign DPoP proofs, or an algorithm it does not support.
 */
export function createDpopSigner(option: DpopOption | undefined, now: () => number): DpopSigner | undefined {
  if (option === undefined || option === false) return undefined;
  if (option === true) return new DpopSigner(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, 'ES256', now);
  if (typeof option !== 'object' || option === null || !option.privateKey) throw new InvalidOptionError('dpop', 'must be true, or { privateKey, algorithm? }');
  let key: KeyObject;
  try {
    key = toKeyObject(option.privateKey);
  } catch {
    throw new InvalidOptionError('dpop.privateKey', privateKeyProblem(option.privateKey));
  }
  // A DPoP key is asymmetric, and its public half goes into each proof as a JWK (Node cannot export RSA-PSS keys so).
  const supported = key.asymmetricKeyType === 'rsa-pss' ? [] : keyAlgorithms(key);
  if (supported.length === 0) throw new InvalidOptionError('dpop.privateKey', `has a key type DPoP cannot use (${key.asymmetricKeyType ?? 'unknown'})`);
  const algorithm = option.algorithm ?? supported[0]!;
  if (!supported.includes(algorithm)) throw new InvalidOptionError('dpop.algorithm', `${String(algorithm)} is not supported by this key; use one of ${supported.join(', ')}`);
  return new DpopSigner(key, algorithm, now);
}

/** True when `headers` carry a `WWW-Authenticate: DPoP error="use_dpop_nonce"` challenge. */
export function asksForNonce(headers: Record<string, string>): boolean {
  const challenge = headers['www-authenticate'];
  return challenge !== undefined && /(^|,)\s*DPoP\b[^]*?\berror\s*=\s*"?use_dpop_nonce"?/i.test(challenge);
}

/**
 * A transport that adds a DPoP proof to every request sent with `Authorization: DPoP <token>` (htm, htu, ath,
 * the origin's nonce), remembers the nonces responses carry, and retries once when the resource server answers 401
 * `use_dpop_nonce` and a nonce other than the proof's is now known. Other requests pass through untouched. Without a signer: `transport` itself.
 */
export function dpopTransport(signer: DpopSigner | undefined, transport: Transport): Transport {
  if (!signer) return transport;
  return async (request: HttpRequest): Promise<HttpResponse> => {
    const authorization = request.headers.authorization;
    if (authorization === undefined || !/^dpop /i.test(authorization)) return transport(request);
    const accessToken = authorization.slice(5).trim();
    const proof = (request.headers.dpop = signer.proof(request.method, request.url, accessToken));
    const response = await transport(request);
    signer.remember(request.url, response.headers);
    if (response.statusCode !== 401 || !asksForNonce(response.headers) || !signer.hasNewerNonce(request.url, proof)) return response;
    // A streamed refusal is let go: unread, its body would hold the connection.
    void response.stream?.cancel().catch(() => undefined);
    request.headers.dpop = signer.proof(request.method, request.url, accessToken);
    const retried = await transport(request);
    signer.remember(request.url, retried.headers);
    return retried;
  };
}
