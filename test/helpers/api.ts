import http from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { closeServer, listenLocal, readBody } from './http.js';

/** Claims the API reports back on `GET /things`. */
export interface TokenClaims {
  client_id?: string | null;
  scope?: string | null;
  [claim: string]: unknown;
}

/** Custom token check: `false` → 401; `true` or a claims object → accepted. */
export type VerifyToken = (token: string) => Promise<boolean | TokenClaims>;

/** Options for startProtectedApi: JWT verification via JWKS, or a `verify` hook (opaque tokens). */
export type ProtectedApiOptions =
  | { issuer: string; jwksUrl: string; audience: string; verify?: VerifyToken }
  | { verify: VerifyToken; issuer?: string; jwksUrl?: string; audience?: string };

/** A request as seen by the protected API. */
export interface ApiRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A running protected resource server. */
export interface ProtectedApiHandle {
  url: string;
  /** Every request received (authenticated or not), in arrival order. */
  requests: ApiRequest[];
  /** From now on, this exact access token gets 401. */
  revoke(accessToken: string): void;
  close(): Promise<void>;
}

/** Starts a node:http resource server on 127.0.0.1:0 that requires `Authorization: Bearer` tokens. */
export async function startProtectedApi(options: ProtectedApiOptions): Promise<ProtectedApiHandle> {
  const requests: ApiRequest[] = [];
  const revoked = new Set<string>();
  const verify = makeVerifier(options);

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void => {
    const payload = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...headers });
    res.end(payload);
  };
  const unauthorized = (res: ServerResponse): void =>
    send(res, 401, { error: 'invalid_token' }, { 'www-authenticate': 'Bearer error="invalid_token"' });

  const authenticate = async (req: IncomingMessage): Promise<TokenClaims | null> => {
    const match = /^Bearer +([^\s]+) *$/i.exec(req.headers.authorization ?? '');
    if (!match) return null;
    const token = match[1];
    if (revoked.has(token)) return null;
    try {
      const result = await verify(token);
      if (result === false) return null;
      return result === true ? {} : result;
    } catch {
      return null;
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = req.method ?? 'GET';
    const rawUrl = req.url ?? '/';
    const body = await readBody(req);
    requests.push({ method, url: rawUrl, headers: { ...req.headers }, body });
    const url = new URL(rawUrl, 'http://api.local');
    const path = url.pathname;

    if (path === '/public' && method === 'GET') return send(res, 200, { public: true });

    const statusMatch = /^\/status\/(\d{3})$/.exec(path);
    const known = path === '/things' || path === '/echo' || path === '/text' || statusMatch !== null;
    if (!known) return send(res, 404, { error: 'not_found' });

    const claims = await authenticate(req);
    if (!claims) return unauthorized(res);

    if (path === '/echo') {
      return send(res, 200, { method, path, query: Object.fromEntries(url.searchParams), headers: req.headers, body });
    }
    if (method !== 'GET') return send(res, 405, { error: 'method_not_allowed' }, { allow: 'GET' });
    if (path === '/things') {
      return send(res, 200, { items: [1, 2, 3], client_id: claims.client_id ?? null, scope: claims.scope ?? null });
    }
    if (path === '/text') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': 5 });
      res.end('hello');
      return;
    }
    const code = Number(statusMatch![1]);
    if (code < 200 || code > 599) return send(res, 400, { error: 'unsupported_status' });
    return send(res, code, { status: code });
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) send(res, 500, { error: 'server_error' });
      else res.destroy();
    });
  });
  const url = await listenLocal(server);

  return {
    url,
    requests,
    revoke: (accessToken) => {
      revoked.add(accessToken);
    },
    close: () => closeServer(server),
  };
}

function makeVerifier(options: ProtectedApiOptions): VerifyToken {
  if (options.verify) return options.verify;
  const { issuer, jwksUrl, audience } = options;
  if (!issuer || !jwksUrl || !audience) throw new TypeError('startProtectedApi needs issuer, jwksUrl and audience (or a verify hook)');
  const jwks = createRemoteJWKSet(new URL(jwksUrl));
  return async (token) => {
    const { payload } = await jwtVerify(token, jwks, { issuer, audience, typ: 'at+jwt' });
    return payload as TokenClaims;
  };
}
