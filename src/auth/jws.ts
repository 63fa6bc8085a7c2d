/**
 * JWS signing with Node's keys: a private key given as PEM, JWK or KeyObject turned into a KeyObject, the algorithms
 * it can sign with, and the signature itself. Kept apart from the public types, which must not need Node's types.
 */
import { createHash, createPrivateKey, sign, X509Certificate, type JsonWebKey, type KeyObject } from 'node:crypto';
import type { CertificateThumbprint, KeyObjectLike, PrivateKeyAlgorithm, X509CertificateLike } from '../types/keys.js';

/** Why a certificate cannot be used beside a private key; the problem in words, never the key. */
export class CertificateProblem extends Error {}

/**
 * The thumbprint members of the certificate of `key`, for the assertion header: base64url of the SHA-256 (and, when
 * asked, SHA-1) digest of the certificate's DER.
 *
 * @throws CertificateProblem when `certificate` is not a certificate, or is not the certificate of `key`.
 */
export function certificateHeader(certificate: string | Uint8Array | X509CertificateLike, key: KeyObject, thumbprints: readonly CertificateThumbprint[]): Partial<Record<CertificateThumbprint, string>> {
  let x509: X509Certificate;
  try {
    x509 = certificate instanceof X509Certificate ? certificate : new X509Certificate(typeof certificate === 'string' || certificate instanceof Uint8Array ? certificate : Buffer.from(certificate.raw));
  } catch {
    throw new CertificateProblem('is not an X.509 certificate (PEM, DER or X509Certificate)');
  }
  let matches = false;
  try {
    matches = x509.checkPrivateKey(key);
  } catch {
    matches = false;
  }
  if (!matches) throw new CertificateProblem('is not the certificate of `privateKey` (its public key differs)');
  const header: Partial<Record<CertificateThumbprint, string>> = {};
  for (const member of thumbprints) header[member] = createHash(member === 'x5t' ? 'sha1' : 'sha256').update(x509.raw).digest('base64url');
  return header;
}

const keyObjects = new WeakMap<object, KeyObject>();

/**
 * A private key given as PEM, JWK or KeyObject, as a KeyObject (JWK conversions are memoised).
 * @throws Error when it is not a private key (a public or secret KeyObject included); {@link privateKeyProblem} says why.
 */
export function toKeyObject(key: string | Record<string, unknown> | KeyObjectLike): KeyObject {
  if (typeof key === 'string') return createPrivateKey(key);
  if ('asymmetricKeyType' in key && typeof (key as KeyObjectLike).export === 'function') {
    // A public KeyObject would pass until the first signature, and fail there with Node's bare TypeError.
    if ((key as unknown as KeyObject).type !== 'private') throw new Error('not a private key');
    return key as unknown as KeyObject;
  }
  let converted = keyObjects.get(key);
  if (!converted) {
    converted = createPrivateKey({ key: key as JsonWebKey, format: 'jwk' });
    keyObjects.set(key, converted);
  }
  return converted;
}

/**
 * Why `key`, given as a private key, cannot be used: an encrypted PEM, a public key, a certificate, or none of the
 * forms. Never quotes the key.
 */
export function privateKeyProblem(key: unknown): string {
  if (typeof key === 'string') {
    if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type:\s*4,ENCRYPTED/.test(key)) {
      return 'is an encrypted PEM key: decrypt it first (`openssl pkey -in key.pem -out plain.pem`), or pass `crypto.createPrivateKey({ key, passphrase })`';
    }
    if (/-----BEGIN (?:RSA )?PUBLIC KEY-----/.test(key)) return 'is a public key: give the private key (PEM, JWK or KeyObject)';
    if (key.includes('-----BEGIN CERTIFICATE-----')) return 'is a certificate: give the private key (PEM, JWK or KeyObject)';
  } else if (typeof key === 'object' && key !== null) {
    const type = (key as { type?: unknown }).type;
    if (type === 'public') return 'is a public key: give the private key (PEM, JWK or KeyObject)';
    if (type === 'secret') return 'is a secret (symmetric) KeyObject: give an asymmetric private key (PEM, JWK or KeyObject)';
    const jwk = key as Record<string, unknown>;
    if (typeof jwk['kty'] === 'string' && jwk['kty'] !== 'oct' && jwk['d'] === undefined) return 'is a public JWK (it has no `d`): give the private key';
  }
  return 'is not a valid private key (PEM, JWK or KeyObject)';
}

/** The JWS algorithms a private key can sign with, its default first. Empty for an unsupported key type. */
export function keyAlgorithms(key: KeyObject): PrivateKeyAlgorithm[] {
  switch (key.asymmetricKeyType) {
    case 'rsa': return ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
    case 'rsa-pss': return ['PS256', 'PS384', 'PS512'];
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      return curve === 'prime256v1' ? ['ES256'] : curve === 'secp384r1' ? ['ES384'] : curve === 'secp521r1' ? ['ES512'] : [];
    }
    case 'ed25519': return ['EdDSA', 'Ed25519'];
    case 'ed448': return ['EdDSA'];
    default: return [];
  }
}

/** Signs a JWS signing input with `alg` (RSASSA-PKCS1-v1_5, RSASSA-PSS, ECDSA in IEEE P1363 form, EdDSA). */
export function signJws(alg: PrivateKeyAlgorithm, key: KeyObject, input: string): Buffer {
  if (alg === 'EdDSA' || alg === 'Ed25519') return sign(null, Buffer.from(input), key);
  const hash = `sha${alg.slice(2)}`;
  if (alg.startsWith('PS')) return sign(hash, Buffer.from(input), { key, padding: 6 /* RSA_PKCS1_PSS_PADDING */, saltLength: Number(alg.slice(2)) / 8 });
  if (alg.startsWith('ES')) return sign(hash, Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  return sign(hash, Buffer.from(input), key);
}
