/**
 * Verification of a JWT access token (RFC 9068) against its issuer: the signature with a key of the issuer's JWKS
 * (found through discovery), and the claims `typ` (`at+jwt`), `iss`, `aud`, `exp`, `iat`, `nbf`. Every check is reported
 * on its own, so a caller can say which one failed. Used by the CLI's `inspect --verify`.
 */
import { constants, createPublicKey, verify, type JsonWebKey, type KeyObject } from 'node:crypto';
import { decodeJwt } from '../jwt.js';
import { messageOf } from '../errors.js';
import { describeUrl, type Transport } from '../http/transport.js';
import { isInsecureRemote } from '../http/requestGuard.js';
import { Discovery } from './discovery.js';

/** The name of one check. */
export type AccessTokenCheckName = 'format' | 'typ' | 'signature' | 'iss' | 'aud' | 'exp' | 'iat' | 'nbf';

/** The outcome of one check. */
export interface AccessTokenCheck {
  name: AccessTokenCheckName;
  ok: boolean;
  /** What was found, or why it failed. Never the token. */
  detail: string;
}

/** What verification needs. */
export interface AccessTokenVerificationOptions {
  /** The expected issuer; its metadata gives the JWKS. */
  issuer: string;
  /** The expected audience; without it, `aud` only has to be present. */
  audience?: string | undefined;
  transport: Transport;
  /** Milliseconds since the epoch. */
  now: number;
  timeout: number;
  userAgent: string;
  /** Seconds of tolerance for `iat` in the future. Default 60. */
  leeway?: number;
}

const ALGORITHMS: Record<string, { kty: string; hash: string | null; pss?: boolean; ec?: boolean }> = {
  RS256: { kty: 'RSA', hash: 'sha256' }, RS384: { kty: 'RSA', hash: 'sha384' }, RS512: { kty: 'RSA', hash: 'sha512' },
  PS256: { kty: 'RSA', hash: 'sha256', pss: true }, PS384: { kty: 'RSA', hash: 'sha384', pss: true }, PS512: { kty: 'RSA', hash: 'sha512', pss: true },
  ES256: { kty: 'EC', hash: 'sha256', ec: true }, ES384: { kty: 'EC', hash: 'sha384', ec: true }, ES512: { kty: 'EC', hash: 'sha512', ec: true },
  EdDSA: { kty: 'OKP', hash: null }, Ed25519: { kty: 'OKP', hash: null },
};

function verifySignature(alg: string, key: KeyObject, signingInput: string, signature: Buffer): boolean {
  const spec = ALGORITHMS[alg]!;
  const data = Buffer.from(signingInput);
  if (spec.pss) return verify(spec.hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: Number(alg.slice(2)) / 8 }, signature);
  if (spec.ec) return verify(spec.hash, data, { key, dsaEncoding: 'ieee-p1363' }, signature);
  return verify(spec.hash, data, key, signature);
}

async function fetchJwks(url: string, options: AccessTokenVerificationOptions): Promise<JsonWebKey[]> {
  const response = await options.transport({
    method: 'GET',
    url,
    headers: { accept: 'application/json', 'user-agent': options.userAgent },
    signal: AbortSignal.timeout(options.timeout),
    timeout: options.timeout,
    maxBodyBytes: 1_048_576,
  });
  if (response.statusCode !== 200) throw new Error(`the JWKS at ${url} answered status ${response.statusCode}`);
  const json = JSON.parse(response.body) as { keys?: unknown };
  if (!Array.isArray(json.keys)) throw new Error(`the JWKS at ${url} has no keys array`);
  return json.keys as JsonWebKey[];
}

/**
 * Verifies `token` against `options.issuer`; one entry per check, in order: format, typ, signature, iss, aud, exp, iat,
 * and nbf when the token has one.
 */
export async function verifyAccessToken(token: string, options: AccessTokenVerificationOptions): Promise<AccessTokenCheck[]> {
  const decoded = decodeJwt(token);
  if (!decoded) return [{ name: 'format', ok: false, detail: 'not a signed JWT (JWS compact serialization)' }];
  const { header, payload } = decoded;
  const checks: AccessTokenCheck[] = [{ name: 'format', ok: true, detail: 'JWS compact serialization' }];
  const nowSeconds = options.now / 1000;

  const typ = typeof header['typ'] === 'string' ? header['typ'] : undefined;
  const typOk = typ !== undefined && ['at+jwt', 'application/at+jwt'].includes(typ.toLowerCase());
  checks.push({ name: 'typ', ok: typOk, detail: typOk ? typ! : `typ is ${typ ?? 'missing'}, not at+jwt (RFC 9068 §2.1)` });

  checks.push(await signatureCheck(token, header, options));

  const iss = payload['iss'];
  checks.push({ name: 'iss', ok: iss === options.issuer, detail: iss === options.issuer ? String(iss) : `iss is ${typeof iss === 'string' ? iss : 'missing'}, not ${options.issuer}` });

  const aud = payload['aud'];
  const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : [];
  if (audiences.length === 0) checks.push({ name: 'aud', ok: false, detail: 'aud is missing (RFC 9068 §2.2)' });
  else if (options.audience !== undefined && !audiences.includes(options.audience)) checks.push({ name: 'aud', ok: false, detail: `aud is ${audiences.join(', ')}, not ${options.audience}` });
  else checks.push({ name: 'aud', ok: true, detail: audiences.join(', ') });

  const exp = payload['exp'];
  if (typeof exp !== 'number') checks.push({ name: 'exp', ok: false, detail: 'exp is missing' });
  else checks.push({ name: 'exp', ok: exp > nowSeconds, detail: exp > nowSeconds ? `expires in ${Math.round(exp - nowSeconds)} s` : `expired ${Math.round(nowSeconds - exp)} s ago` });

  const iat = payload['iat'];
  const leeway = options.leeway ?? 60;
  if (typeof iat !== 'number') checks.push({ name: 'iat', ok: false, detail: 'iat is missing' });
  else checks.push({ name: 'iat', ok: iat <= nowSeconds + leeway, detail: iat <= nowSeconds + leeway ? `issued ${Math.round(nowSeconds - iat)} s ago` : `issued ${Math.round(iat - nowSeconds)} s in the future` });

  // RFC 7519 §4.1.5: not to be accepted before nbf (with the same leeway as iat).
  const nbf = payload['nbf'];
  if (nbf !== undefined) {
    if (typeof nbf !== 'number') checks.push({ name: 'nbf', ok: false, detail: 'nbf is not a number' });
    else checks.push({ name: 'nbf', ok: nbf <= nowSeconds + leeway, detail: nbf <= nowSeconds + leeway ? `valid since ${Math.round(nowSeconds - nbf)} s` : `not valid before ${Math.round(nbf - nowSeconds)} s from now` });
  }
  return checks;
}

async function signatureCheck(token: string, header: Record<string, unknown>, options: AccessTokenVerificationOptions): Promise<AccessTokenCheck> {
  const alg = header['alg'];
  if (typeof alg !== 'string' || !Object.hasOwn(ALGORITHMS, alg)) {
    return { name: 'signature', ok: false, detail: `alg ${typeof alg === 'string' ? alg : 'missing'} cannot be verified with the issuer's public keys` };
  }
  let keys: JsonWebKey[];
  try {
    // Keys read in clear could be anyone's: a signature they verify proves nothing.
    if (isInsecureRemote(options.issuer)) return { name: 'signature', ok: false, detail: `the issuer ${describeUrl(options.issuer)} is plain http to another host: its keys could be anyone's` };
    const metadata = await new Discovery({ issuer: options.issuer, transport: options.transport, now: () => options.now, timeout: options.timeout, userAgent: options.userAgent }).metadata();
    if (!metadata.jwks_uri) return { name: 'signature', ok: false, detail: `the metadata of ${options.issuer} has no jwks_uri` };
    if (isInsecureRemote(metadata.jwks_uri) || (/^https:/i.test(options.issuer) && /^http:/i.test(metadata.jwks_uri))) {
      return { name: 'signature', ok: false, detail: `the jwks_uri of ${options.issuer} is plain http (${describeUrl(metadata.jwks_uri)}): its keys could be anyone's` };
    }
    keys = await fetchJwks(metadata.jwks_uri, options);
  } catch (error) {
    return { name: 'signature', ok: false, detail: `the issuer's keys could not be had: ${messageOf(error)}` };
  }
  const kid = typeof header['kid'] === 'string' ? header['kid'] : undefined;
  const spec = ALGORITHMS[alg]!;
  const candidates = keys.filter((k) => {
    const jwk = k as JsonWebKey & { kid?: string; use?: string; alg?: string };
    return jwk.kty === spec.kty && (kid === undefined || jwk.kid === kid) && (jwk.use === undefined || jwk.use === 'sig') && (jwk.alg === undefined || jwk.alg === alg);
  });
  if (candidates.length === 0) return { name: 'signature', ok: false, detail: `no ${alg} key${kid ? ` with kid ${kid}` : ''} in the issuer's JWKS` };
  const [h, p, s] = token.split('.') as [string, string, string];
  for (const jwk of candidates) {
    try {
      if (verifySignature(alg, createPublicKey({ key: jwk, format: 'jwk' }), `${h}.${p}`, Buffer.from(s, 'base64url'))) {
        return { name: 'signature', ok: true, detail: `${alg}${kid ? `, kid ${kid}` : ''}, from ${options.issuer}` };
      }
    } catch {
      // a key that does not import: try the next
    }
  }
  return { name: 'signature', ok: false, detail: `the ${alg} signature does not match the issuer's key${kid ? ` ${kid}` : 's'}` };
}
