/**
 * A token endpoint on 127.0.0.1 that a provider emulation scripts: it parses what a client sends the way a server
 * must (the form body, the Basic credentials as the raw pair and as RFC 6749 §2.3.1 decodes them, a client assertion
 * and a DPoP proof, each verified with jose), records every request, and answers what the emulation returns.
 * Each emulation (entra.ts, okta.ts…) is built from the provider's public documentation of its token endpoint.
 */
import { createServer, type IncomingMessage } from 'node:http';
import { createHash, type KeyObject } from 'node:crypto';
import { compactVerify, decodeProtectedHeader, importJWK, type JWK } from 'jose';
import { closeServer, listenLocal, readBody } from '../helpers/http.js';

/** A token request as the emulated server sees it. */
export interface EmulatedRequest {
  method: string;
  /** The path with its query. */
  url: string;
  headers: IncomingMessage['headers'];
  /** The body as a form (JSON bodies are read into it too: Auth0 accepts both). */
  form: URLSearchParams;
  /** The query string's parameters (Zoom documents its parameters there). */
  query: URLSearchParams;
  /** The Basic pair as sent (what a server that compares the raw pair sees), or undefined. */
  basicRaw: { id: string; secret: string } | undefined;
  /** The Basic pair after RFC 6749 §2.3.1 form-decoding, or undefined (also when it cannot be decoded). */
  basicDecoded: { id: string; secret: string } | undefined;
  /** The raw body. */
  body: string;
}

/** What the emulation answers. */
export interface EmulatedResponse {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/** A running emulation. */
export interface Emulation {
  url: string;
  requests: EmulatedRequest[];
  close(): Promise<void>;
}

function parseBasic(header: string | undefined): { raw?: { id: string; secret: string }; decoded?: { id: string; secret: string } } {
  if (!header || !/^basic /i.test(header)) return {};
  const pair = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = pair.indexOf(':');
  if (colon < 0) return {};
  const raw = { id: pair.slice(0, colon), secret: pair.slice(colon + 1) };
  const decode = (value: string): string | undefined => {
    try {
      return decodeURIComponent(value.replace(/\+/g, ' '));
    } catch {
      return undefined;
    }
  };
  const id = decode(raw.id);
  const secret = decode(raw.secret);
  return { raw, ...(id !== undefined && secret !== undefined ? { decoded: { id, secret } } : {}) };
}

/** Starts an emulation whose `handle` answers each request. */
export async function startEmulation(handle: (request: EmulatedRequest) => EmulatedResponse | Promise<EmulatedResponse>): Promise<Emulation> {
  const requests: EmulatedRequest[] = [];
  const server = createServer((req, res) => {
    void readBody(req).then(async (body) => {
      const type = req.headers['content-type'] ?? '';
      let form = new URLSearchParams();
      if (type.includes('application/json')) {
        try {
          form = new URLSearchParams(Object.entries(JSON.parse(body) as Record<string, string>));
        } catch {
          // an unparsable body: an empty form
        }
      } else form = new URLSearchParams(body);
      const basic = parseBasic(req.headers.authorization);
      const url = req.url ?? '/';
      const request: EmulatedRequest = {
        method: req.method ?? '', url, headers: req.headers, form, query: new URL(url, 'http://x').searchParams,
        basicRaw: basic.raw, basicDecoded: basic.decoded, body,
      };
      requests.push(request);
      try {
        const answer = await handle(request);
        const text = answer.body === undefined ? '' : typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
        res.writeHead(answer.status, { ...(answer.body !== undefined && typeof answer.body !== 'string' ? { 'content-type': 'application/json;charset=UTF-8' } : {}), 'cache-control': 'no-store', ...answer.headers });
        res.end(text);
      } catch {
        res.writeHead(500).end();
      }
    });
  });
  const url = await listenLocal(server);
  return { url, requests, close: () => closeServer(server) };
}

/** A verified client assertion's header and claims, or the reason it is refused. */
export type AssertionCheck = { ok: true; header: Record<string, unknown>; claims: Record<string, unknown> } | { ok: false; reason: string };

/**
 * Verifies a client assertion as a provider does: the signature with `key` (a KeyObject, or a JWKS whose key is found
 * by the header's `kid`, or a certificate found by `x5t#S256` / `x5t`), `aud`, `iss` = `sub` = the client id, `exp` in
 * the future, and a `jti` not seen before.
 */
export async function verifyAssertion(
  assertion: string | null,
  options: { clientId: string; audience: string | readonly string[]; keys: { kid?: string; x5t?: string; x5tS256?: string; key: KeyObject | JWK }[]; seenJti: Set<string> },
): Promise<AssertionCheck> {
  if (!assertion) return { ok: false, reason: 'no client_assertion' };
  let header: Record<string, unknown>;
  try {
    header = decodeProtectedHeader(assertion) as Record<string, unknown>;
  } catch {
    return { ok: false, reason: 'not a JWS' };
  }
  const candidates = options.keys.filter((k) =>
    (header['kid'] !== undefined ? k.kid === header['kid'] : true)
    && (header['x5t#S256'] !== undefined ? k.x5tS256 === header['x5t#S256'] : true)
    && (header['x5t'] !== undefined ? k.x5t === header['x5t'] : true));
  if (candidates.length === 0) return { ok: false, reason: 'no key matches the header' };
  for (const candidate of candidates) {
    try {
      const key = 'kty' in candidate.key ? await importJWK(candidate.key as JWK, header['alg'] as string) : candidate.key;
      const { payload } = await compactVerify(assertion, key as KeyObject);
      const claims = JSON.parse(Buffer.from(payload).toString('utf8')) as Record<string, unknown>;
      const audiences = typeof options.audience === 'string' ? [options.audience] : options.audience;
      if (!audiences.includes(claims['aud'] as string)) return { ok: false, reason: `aud ${String(claims['aud'])}` };
      if (claims['iss'] !== options.clientId || claims['sub'] !== options.clientId) return { ok: false, reason: 'iss/sub' };
      if (typeof claims['exp'] !== 'number' || claims['exp'] * 1000 < Date.now()) return { ok: false, reason: 'exp' };
      if (typeof claims['jti'] !== 'string' || options.seenJti.has(claims['jti'])) return { ok: false, reason: 'jti replayed' };
      options.seenJti.add(claims['jti']);
      return { ok: true, header, claims };
    } catch {
      // the next candidate
    }
  }
  return { ok: false, reason: 'signature' };
}

/**
 * Verifies a DPoP proof (RFC 9449 §4.3) for a token request: `typ`, the signature with the embedded `jwk`, `htm`,
 * `htu`, a fresh `iat`, and the `nonce` when one is required. Resolves the key's thumbprint (`jkt`) or the reason.
 */
export async function verifyDpopProof(proof: string | undefined, htu: string, nonce: string | undefined): Promise<{ ok: true; jkt: string; nonce: unknown } | { ok: false; reason: string }> {
  if (!proof) return { ok: false, reason: 'no DPoP header' };
  try {
    const header = decodeProtectedHeader(proof);
    if (header.typ !== 'dpop+jwt' || !header.jwk) return { ok: false, reason: 'typ/jwk' };
    const { payload } = await compactVerify(proof, await importJWK(header.jwk, header.alg));
    const claims = JSON.parse(Buffer.from(payload).toString('utf8')) as Record<string, unknown>;
    if (claims['htm'] !== 'POST' || claims['htu'] !== htu) return { ok: false, reason: 'htm/htu' };
    if (typeof claims['iat'] !== 'number' || Math.abs(claims['iat'] * 1000 - Date.now()) > 300_000) return { ok: false, reason: 'iat' };
    if (nonce !== undefined && claims['nonce'] !== nonce) return { ok: false, reason: 'nonce' };
    const jwk = header.jwk as Record<string, string>;
    const members = jwk['kty'] === 'EC' ? { crv: jwk['crv'], kty: 'EC', x: jwk['x'], y: jwk['y'] } : jwk['kty'] === 'OKP' ? { crv: jwk['crv'], kty: 'OKP', x: jwk['x'] } : { e: jwk['e'], kty: 'RSA', n: jwk['n'] };
    return { ok: true, jkt: createHash('sha256').update(JSON.stringify(members)).digest('base64url'), nonce: claims['nonce'] };
  } catch {
    return { ok: false, reason: 'signature' };
  }
}

/** A JWT-looking opaque token: `header.payload.signature` of random bytes, as providers' JWT access tokens look on the wire. */
export function fakeJwt(claims: Record<string, unknown>): string {
  const part = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'RS256', typ: 'JWT', kid: 'emulated' })}.${part(claims)}.${createHash('sha256').update(JSON.stringify(claims)).digest('base64url')}`;
}
