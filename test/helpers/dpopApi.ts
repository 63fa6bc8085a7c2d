/**
 * A resource server that accepts only DPoP-bound JWT access tokens (RFC 9449 §7): it verifies the access token
 * against the issuer's JWKS, then the DPoP proof with `jose` (typ dpop+jwt, the embedded key's signature, htm, htu,
 * ath, the key's thumbprint equal to the token's cnf.jkt, a recent iat, a jti never seen) and, when nonces are on,
 * that the proof carries the current nonce (else 401 `WWW-Authenticate: DPoP error="use_dpop_nonce"` with a
 * `DPoP-Nonce`).
 */
import http from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { calculateJwkThumbprint, createRemoteJWKSet, EmbeddedJWK, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { closeServer, listenLocal, readBody } from './http.js';
import { DEFAULT_OIDC_CLIENTS, startOidcProvider, type OidcProviderHandle } from './oidc.js';

/** One request the DPoP API saw, with its verdict. */
export interface DpopApiRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  /** `ok`, or why the request was refused. */
  verdict: string;
  /** The verified proof's claims, when the proof verified. */
  proof?: Record<string, unknown>;
}

/** A running DPoP resource server. */
export interface DpopApiHandle {
  url: string;
  requests: DpopApiRequest[];
  /** Starts a new nonce: the next proof with the old one is refused with use_dpop_nonce. */
  rotateNonce(): string;
  close(): Promise<void>;
}

/** Options: the issuer and its JWKS (or a key set), the audience, and whether nonces are required. */
export interface DpopApiOptions {
  issuer: string;
  audience: string;
  jwksUrl?: string;
  keySet?: JWTVerifyGetKey;
  requireNonce?: boolean;
}

/** Starts the DPoP resource server on 127.0.0.1:0. `GET /things` answers the token's client_id and the proof's claims. */
export async function startDpopApi(options: DpopApiOptions): Promise<DpopApiHandle> {
  const keySet = options.keySet ?? createRemoteJWKSet(new URL(options.jwksUrl!));
  const requests: DpopApiRequest[] = [];
  const seenJti = new Set<string>();
  let nonce = randomBytes(12).toString('base64url');
  let url = '';

  const server = http.createServer((req, res) => {
    void (async () => {
      await readBody(req);
      const entry: DpopApiRequest = { method: req.method ?? 'GET', url: req.url ?? '/', headers: { ...req.headers }, verdict: 'ok' };
      requests.push(entry);
      const refuse = (verdict: string, error = 'invalid_token', extra: Record<string, string> = {}): void => {
        entry.verdict = verdict;
        res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': `DPoP error="${error}", algs="ES256 RS256 EdDSA PS256"`, ...extra });
        res.end(JSON.stringify({ error, error_description: verdict }));
      };
      const match = /^DPoP ([^\s]+)$/.exec(req.headers.authorization ?? '');
      if (!match) return refuse('no DPoP authorization');
      const accessToken = match[1]!;
      let claims: Record<string, unknown>;
      try {
        ({ payload: claims } = await jwtVerify(accessToken, keySet, { issuer: options.issuer, audience: options.audience, typ: 'at+jwt' }));
      } catch {
        return refuse('access token does not verify');
      }
      const proofJwt = req.headers.dpop;
      if (typeof proofJwt !== 'string') return refuse('no DPoP proof');
      let proof: Record<string, unknown>;
      let jwk: Record<string, unknown>;
      try {
        const verified = await jwtVerify(proofJwt, EmbeddedJWK, { typ: 'dpop+jwt' });
        proof = verified.payload;
        jwk = verified.protectedHeader.jwk as Record<string, unknown>;
      } catch {
        return refuse('proof does not verify');
      }
      entry.proof = proof;
      const expectedHtu = `${url}${(req.url ?? '/').split('?')[0]}`;
      if (proof['htm'] !== req.method) return refuse('htm mismatch');
      if (proof['htu'] !== expectedHtu) return refuse(`htu mismatch (${String(proof['htu'])} != ${expectedHtu})`);
      if (proof['ath'] !== createHash('sha256').update(accessToken).digest('base64url')) return refuse('ath mismatch');
      const cnf = claims['cnf'] as { jkt?: string } | undefined;
      if (!cnf?.jkt || cnf.jkt !== (await calculateJwkThumbprint(jwk as never))) return refuse('key is not the one the token is bound to');
      if (typeof proof['iat'] !== 'number' || Math.abs(proof['iat'] - Date.now() / 1000) > 60) return refuse('iat not recent');
      if (typeof proof['jti'] !== 'string' || seenJti.has(proof['jti'])) return refuse('jti replayed');
      seenJti.add(proof['jti']);
      if (options.requireNonce && proof['nonce'] !== nonce) return refuse('nonce required', 'use_dpop_nonce', { 'dpop-nonce': nonce });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ client_id: claims['client_id'] ?? null, jkt: cnf.jkt, proof }));
    })().catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  url = await listenLocal(server);
  return {
    url,
    requests,
    rotateNonce: () => (nonce = randomBytes(12).toString('base64url')),
    close: () => closeServer(server),
  };
}

/** The DPoP-bound client of {@link startDpopWorld}, as `clientCredentialsAuthCredentials`. */
export const DPOP_CLIENT = { oAuthClientId: 'dpop-svc', oAuthClientSecret: 'dpop-secret', oAuthScopes: 'api:read' };

/** oidc-provider issuing DPoP-bound tokens with nonces to {@link DPOP_CLIENT}, and a resource server that requires nonces. */
export interface DpopWorld {
  op: OidcProviderHandle;
  api: DpopApiHandle;
  close(): Promise<void>;
}

/** Starts the {@link DpopWorld} the DPoP tests share. */
export async function startDpopWorld(): Promise<DpopWorld> {
  const op = await startOidcProvider({
    dpop: 'nonce',
    clients: [...DEFAULT_OIDC_CLIENTS, { client_id: 'dpop-svc', client_secret: 'dpop-secret', dpop_bound_access_tokens: true }],
  });
  const api = await startDpopApi({ issuer: op.issuer, jwksUrl: op.jwksUrl, audience: op.resource, requireNonce: true });
  return {
    op,
    api,
    async close() {
      await api.close();
      await op.close();
    },
  };
}
