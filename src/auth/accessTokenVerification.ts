/**
 * Verification of a JWT access token (RFC 9068) against its issuer: the signature with a key of the issuer's JWKS
 * (found through discovery), and the claims `typ` (`at+jwt`), `iss`, `aud`, `exp`, `iat`, `nbf`. Every check is reported
 * on its own, so a caller can say which one failed. Used by the CLI's `inspect --verify`.
 */
import { constants, createPublicKey, verify, type JsonWebKey, type KeyObject } from 'node:crypto';
import { decodeJwt } from '../jwt.js';
import { escapeControls, messageOf } from '../errors.js';
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

/**
 * The algorithms a public key can verify, with what each needs of the key (RFC 7518 §3.3-3.5, RFC 8037 §3.1 and the
 * fully specified `Ed25519` of RFC 9864): the JWK `kty`, the curves (JOSE names) for EC and OKP, the hash.
 */
const ALGORITHMS: Record<string, { kty: string; hash: string | null; pss?: boolean; ec?: boolean; curves?: readonly string[] }> = {
  RS256: { kty: 'RSA', hash: 'sha256' }, RS384: { kty: 'RSA', hash: 'sha384' }, RS512: { kty: 'RSA', hash: 'sha512' },
  PS256: { kty: 'RSA', hash: 'sha256', pss: true }, PS384: { kty: 'RSA', hash: 'sha384', pss: true }, PS512: { kty: 'RSA', hash: 'sha512', pss: true },
  ES256: { kty: 'EC', hash: 'sha256', ec: true, curves: ['P-256'] }, ES384: { kty: 'EC', hash: 'sha384', ec: true, curves: ['P-384'] }, ES512: { kty: 'EC', hash: 'sha512', ec: true, curves: ['P-521'] },
  EdDSA: { kty: 'OKP', hash: null, curves: ['Ed25519', 'Ed448'] }, Ed25519: { kty: 'OKP', hash: null, curves: ['Ed25519'] },
};

/** RFC 7518 §3.3 and §3.5: an RSA key for RS* and PS* has 2048 bits or more. */
const MIN_RSA_BITS = 2048;

/** Node's names of the curves, as JOSE spells them. */
const CURVES: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521', ed25519: 'Ed25519', ed448: 'Ed448' };

/**
 * The header parameters RFC 7515 and RFC 7516 (JWA's are among them) define: `crit` must not name them
 * (RFC 7515 §4.1.11).
 */
const REGISTERED_HEADER_PARAMETERS = new Set(['alg', 'jku', 'jwk', 'kid', 'x5u', 'x5c', 'x5t', 'x5t#S256', 'typ', 'cty', 'crit', 'enc', 'zip', 'epk', 'apu', 'apv', 'iv', 'tag', 'p2s', 'p2c']);

/** Server or token text quoted in a detail: control characters escaped, length bounded. */
function quoted(text: string): string {
  return `"${escapeControls(text.length > 80 ? `${text.slice(0, 80)}…` : text)}"`;
}

/**
 * Why the token's `crit` header cannot be honoured, or undefined when it has none. This verifier understands no
 * extension, so any well-formed `crit` fails too: RFC 7515 §4.1.11 makes a JWS whose critical extensions the recipient
 * does not understand invalid.
 */
export function critProblem(header: Record<string, unknown>): string | undefined {
  if (!Object.hasOwn(header, 'crit')) return undefined;
  const crit = header['crit'];
  if (!Array.isArray(crit) || crit.length === 0) return 'crit must be a non-empty array of header parameter names (RFC 7515 §4.1.11)';
  if (crit.some((name) => typeof name !== 'string' || name === '')) return 'crit must list header parameter names as non-empty strings (RFC 7515 §4.1.11)';
  const names = crit as string[];
  const registered = names.find((name) => REGISTERED_HEADER_PARAMETERS.has(name));
  if (registered !== undefined) return `crit names ${quoted(registered)}, a registered header parameter, which it must not (RFC 7515 §4.1.11)`;
  if (new Set(names).size !== names.length) return 'crit names a parameter twice (RFC 7515 §4.1.11)';
  const absent = names.find((name) => !Object.hasOwn(header, name));
  if (absent !== undefined) return `crit names ${quoted(absent)}, which is absent from the header (RFC 7515 §4.1.11)`;
  return `crit names ${names.slice(0, 5).map(quoted).join(', ')}: an extension this verifier does not understand, so the token is refused (RFC 7515 §4.1.11)`;
}

/** Why `alg` in a token's header can never be verified with an issuer's public keys, or undefined. */
function algProblem(alg: unknown): string | undefined {
  if (typeof alg !== 'string') return 'alg is missing';
  if (alg === 'none') return 'alg is none: an unsecured token proves nothing (RFC 7518 §3.6)';
  if (/^HS\d+$/.test(alg)) return `alg is ${alg}, a MAC with a shared secret: only a signature checked with the issuer's public keys proves who issued the token`;
  if (!Object.hasOwn(ALGORITHMS, alg)) return `alg ${escapeControls(alg.slice(0, 80))} cannot be verified with the issuer's public keys`;
  return undefined;
}

/** JWK members that bear on what a key may verify. */
type Jwk = JsonWebKey & { kid?: unknown; use?: unknown; alg?: unknown; key_ops?: unknown };

/**
 * Why the JWK cannot verify a signature with `alg`, judged by what it says of itself (RFC 7517 §4: `kty`, `use`,
 * `key_ops`, `alg`; RFC 7518 §6: `crv`), or undefined.
 */
export function jwkProblem(alg: string, jwk: Jwk): string | undefined {
  const spec = ALGORITHMS[alg]!;
  if (jwk.kty !== spec.kty) return `its kty is ${typeof jwk.kty === 'string' ? quoted(jwk.kty) : 'missing'}, and ${alg} needs ${spec.kty}`;
  if (jwk.use !== undefined && jwk.use !== 'sig') return `its use is ${typeof jwk.use === 'string' ? quoted(jwk.use) : 'not a string'}, not sig (RFC 7517 §4.2)`;
  if (jwk.key_ops !== undefined && !(Array.isArray(jwk.key_ops) && jwk.key_ops.includes('verify'))) return 'its key_ops do not include verify (RFC 7517 §4.3)';
  if (jwk.alg !== undefined && jwk.alg !== alg) return `it is for ${typeof jwk.alg === 'string' ? quoted(jwk.alg) : 'a non-string alg'}, not ${alg} (RFC 7517 §4.4)`;
  if (spec.curves && jwk.crv !== undefined && !spec.curves.includes(jwk.crv)) return `its crv is ${quoted(String(jwk.crv))}, and ${alg} needs ${spec.curves.join(' or ')} (RFC 7518 §3.4, RFC 8037 §3.1)`;
  return undefined;
}

/** Why the imported key cannot verify `alg` (its type, curve or size, whatever its JWK claimed), or undefined. */
export function keyObjectProblem(alg: string, key: KeyObject): string | undefined {
  const spec = ALGORITHMS[alg]!;
  const type = key.asymmetricKeyType;
  if (spec.kty === 'RSA') {
    if (type !== 'rsa' && !(spec.pss && type === 'rsa-pss')) return `it is not an RSA key, and ${alg} needs one`;
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS) return `its modulus is ${bits} bits, and ${alg} needs ${MIN_RSA_BITS} or more (RFC 7518 §3.3)`;
    return undefined;
  }
  const curve = type === 'ec' ? CURVES[key.asymmetricKeyDetails?.namedCurve ?? ''] : CURVES[type ?? ''];
  if (curve === undefined || !spec.curves!.includes(curve) || (spec.kty === 'EC') !== (type === 'ec')) {
    return `its curve is ${curve ?? 'not one JOSE names'}, and ${alg} needs ${spec.curves!.join(' or ')} (RFC 7518 §3.4, RFC 8037 §3.1)`;
  }
  return undefined;
}

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
  const refused = algProblem(alg) ?? critProblem(header);
  if (refused !== undefined || typeof alg !== 'string') return { name: 'signature', ok: false, detail: refused ?? 'alg is missing' };
  let keys: Jwk[];
  try {
    // Keys read in clear could be anyone's: a signature they verify proves nothing.
    if (isInsecureRemote(options.issuer)) return { name: 'signature', ok: false, detail: `the issuer ${describeUrl(options.issuer)} is plain http to another host: its keys could be anyone's` };
    const metadata = await new Discovery({ issuer: options.issuer, transport: options.transport, now: () => options.now, timeout: options.timeout, userAgent: options.userAgent }).metadata();
    if (!metadata.jwks_uri) return { name: 'signature', ok: false, detail: `the metadata of ${options.issuer} has no jwks_uri` };
    if (isInsecureRemote(metadata.jwks_uri) || (/^https:/i.test(options.issuer) && /^http:/i.test(metadata.jwks_uri))) {
      return { name: 'signature', ok: false, detail: `the jwks_uri of ${options.issuer} is plain http (${describeUrl(metadata.jwks_uri)}): its keys could be anyone's` };
    }
    keys = (await fetchJwks(metadata.jwks_uri, options)).filter((k): k is Jwk => typeof k === 'object' && k !== null);
  } catch (error) {
    return { name: 'signature', ok: false, detail: `the issuer's keys could not be had: ${messageOf(error)}` };
  }
  const kid = typeof header['kid'] === 'string' ? header['kid'] : undefined;
  const named = kid === undefined ? keys : keys.filter((jwk) => jwk.kid === kid);
  if (named.length === 0) return { name: 'signature', ok: false, detail: `no key with kid ${quoted(kid!)} in the issuer's JWKS` };
  const [h, p, s] = token.split('.') as [string, string, string];
  const problems: string[] = [];
  let usable = 0;
  for (const jwk of named) {
    let problem = jwkProblem(alg, jwk);
    let key: KeyObject | undefined;
    if (problem === undefined) {
      try {
        key = createPublicKey({ key: jwk, format: 'jwk' });
        problem = keyObjectProblem(alg, key);
      } catch {
        problem = 'it does not import as a public key';
      }
    }
    if (problem !== undefined || key === undefined) {
      // Without a kid, keys of another type are simply other keys; with one, the named key is the one that failed.
      if (kid !== undefined || jwk.kty === ALGORITHMS[alg]!.kty) problems.push(`${typeof jwk.kid === 'string' ? `key ${quoted(jwk.kid)}` : 'a key'}: ${problem ?? 'unusable'}`);
      continue;
    }
    usable++;
    try {
      if (verifySignature(alg, key, `${h}.${p}`, Buffer.from(s, 'base64url'))) {
        return { name: 'signature', ok: true, detail: `${alg}${kid ? `, kid ${quoted(kid)}` : ''}, from ${options.issuer}` };
      }
    } catch {
      // a signature Node cannot even check with this key: not a match
    }
  }
  if (usable === 0) {
    const why = problems.length > 0 ? `: ${problems.slice(0, 3).join('; ')}` : '';
    return { name: 'signature', ok: false, detail: `no key in the issuer's JWKS can verify ${alg}${kid ? ` (kid ${quoted(kid)})` : ''}${why}` };
  }
  return { name: 'signature', ok: false, detail: `the ${alg} signature does not match the issuer's key${kid ? ` ${quoted(kid)}` : 's'}` };
}
