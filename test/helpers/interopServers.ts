/**
 * Authorization servers for the interop suite, besides oidc-provider and @node-oauth/oauth2-server (their own
 * helpers): @jmondi/oauth2-server 4, a small server built on oauth2orize 1, and oauth2-mock-server. Each listens on
 * 127.0.0.1:0, issues client_credentials tokens to `svc`/`svc-secret`, records the token requests, and can say what
 * a token it issued stands for (for the protected API's `verify` hook).
 */
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { AuthorizationServer, type OAuthClient, type OAuthScope, type OAuthToken } from '@jmondi/oauth2-server';
import { handleVanillaError } from '@jmondi/oauth2-server/vanilla';
import oauth2orize from 'oauth2orize';
import { OAuth2Issuer, OAuth2Service } from 'oauth2-mock-server';
import { closeServer, listenLocal, readBody, type RecordedRequest } from './http.js';

/** What the interop suite needs of a server. */
export interface InteropServer {
  /** The base URL (for oauth2-mock-server, its issuer). */
  url: string;
  tokenUrl: string;
  tokenRequests: RecordedRequest[];
  /** Claims of a token this server issued and still honours, or null. */
  introspect(token: string): Promise<{ client_id: string | null; scope: string | null; aud?: unknown } | null>;
  close(): Promise<void>;
}

export const INTEROP_CLIENT = { id: 'svc', secret: 'svc-secret' };
const SCOPES = ['api:read', 'api:write'];

/** The client id and secret of a request: Basic (RFC 6749 §2.3.1, form-decoded) or the body's client_id/client_secret. */
function clientCredentialsOf(req: IncomingMessage, form: URLSearchParams): { id: string; secret: string | undefined } | undefined {
  const basic = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(req.headers.authorization ?? '');
  if (basic) {
    const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const decode = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '));
    return { id: decode(decoded.slice(0, colon)), secret: decode(decoded.slice(colon + 1)) };
  }
  const id = form.get('client_id');
  return id ? { id, secret: form.get('client_secret') ?? undefined } : undefined;
}

function sameSecret(a: string | undefined, b: string): boolean {
  if (a === undefined) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function record(req: IncomingMessage, body: string, into: RecordedRequest[]): void {
  into.push({ method: req.method ?? 'GET', url: req.url ?? '/', headers: { ...req.headers }, body, at: Date.now() });
}

/** @jmondi/oauth2-server 4: its AuthorizationServer with in-memory repositories, JWT access tokens (HS256). */
export async function startJmondiServer(): Promise<InteropServer> {
  const jwtSecret = randomBytes(32).toString('hex');
  const client: OAuthClient = { id: INTEROP_CLIENT.id, name: 'svc', secret: INTEROP_CLIENT.secret, redirectUris: [], allowedGrants: ['client_credentials'], scopes: SCOPES.map((name) => ({ name })) };
  const tokens = new Map<string, OAuthToken>();
  const server = new AuthorizationServer(
    {
      getByIdentifier: async (id) => {
        if (id !== client.id) throw new Error('unknown client');
        return client;
      },
      isClientValid: async (grantType, c, secret) => c.allowedGrants.includes(grantType) && sameSecret(secret, c.secret ?? ''),
    },
    {
      issueToken: async (c: OAuthClient, scopes: OAuthScope[]) => ({ accessToken: randomBytes(16).toString('hex'), accessTokenExpiresAt: new Date(Date.now() + 60_000), client: c, scopes }),
      issueRefreshToken: async (token: OAuthToken) => token,
      persist: async (token: OAuthToken) => {
        tokens.set(token.accessToken, token);
      },
      revoke: async (token: OAuthToken) => {
        tokens.delete(token.accessToken);
      },
      isRefreshTokenRevoked: async () => true,
      getByRefreshToken: async () => {
        throw new Error('no refresh tokens');
      },
    },
    {
      getAllByIdentifiers: async (names: string[]) => names.filter((n) => SCOPES.includes(n)).map((name) => ({ name })),
      finalize: async (scopes: OAuthScope[]) => scopes,
    },
    jwtSecret,
  );
  server.enableGrantType('client_credentials');
  const tokenRequests: RecordedRequest[] = [];

  const http1 = http.createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      if (req.method !== 'POST' || req.url !== '/token') return void res.writeHead(404).end();
      record(req, body, tokenRequests);
      const form = Object.fromEntries(new URLSearchParams(body));
      try {
        const response = await server.respondToAccessTokenRequest({ headers: req.headers, query: {}, body: form });
        res.writeHead(response.status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(response.body));
      } catch (error) {
        // The library's own error mapping, as its framework adapters send it.
        const response = handleVanillaError(error);
        res.writeHead(response.status, { 'content-type': 'application/json' }).end(JSON.stringify(response.body));
      }
    })();
  });
  const url = await listenLocal(http1);
  return {
    url,
    tokenUrl: `${url}/token`,
    tokenRequests,
    introspect: async (token) => {
      const [h, p, s] = token.split('.');
      if (!h || !p || !s) return null;
      const expected = createHmac('sha256', jwtSecret).update(`${h}.${p}`).digest('base64url');
      if (!sameSecret(s, expected)) return null;
      const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as { jti?: string; cid?: string; scope?: string; exp?: number };
      const stored = claims.jti ? tokens.get(claims.jti) : undefined;
      if (!stored || stored.accessTokenExpiresAt.getTime() <= Date.now()) return null;
      return { client_id: claims.cid ?? stored.client.id, scope: stored.scopes.map((x) => x.name).join(' ') || null };
    },
    close: () => closeServer(http1),
  };
}

/**
 * A small authorization server built on oauth2orize 1: its client_credentials exchange, token endpoint and error
 * handler; client authentication (Basic or body) done before it, as passport would. Opaque tokens.
 */
export async function startOauth2orizeServer(): Promise<InteropServer> {
  const server = oauth2orize.createServer();
  const tokens = new Map<string, { clientId: string; scope: string | null; expiresAt: number }>();
  server.exchange(
    oauth2orize.exchange.clientCredentials((client, scope, done) => {
      const granted = (scope ?? []).filter((s) => SCOPES.includes(s));
      if (scope && granted.length !== scope.length) return done(Object.assign(new Error('unknown scope'), { code: 'invalid_scope', status: 400 }));
      const token = randomBytes(24).toString('base64url');
      tokens.set(token, { clientId: (client as { id: string }).id, scope: granted.join(' ') || null, expiresAt: Date.now() + 60_000 });
      done(null, token, null, { expires_in: 60, ...(granted.length ? { scope: granted.join(' ') } : {}) });
    }),
  );
  const token = server.token();
  const errorHandler = server.errorHandler();
  const tokenRequests: RecordedRequest[] = [];

  const http1 = http.createServer((req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const body = await readBody(req);
      if (req.method !== 'POST' || req.url !== '/token') return void res.writeHead(404).end();
      record(req, body, tokenRequests);
      const form = new URLSearchParams(body);
      const credentials = clientCredentialsOf(req, form);
      if (!credentials || credentials.id !== INTEROP_CLIENT.id || !sameSecret(credentials.secret, INTEROP_CLIENT.secret)) {
        res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Basic realm="oauth2orize"' }).end(JSON.stringify({ error: 'invalid_client' }));
        return;
      }
      const r = req as IncomingMessage & { body?: unknown; user?: unknown };
      r.body = Object.fromEntries(form);
      r.user = { id: credentials.id };
      token(req, res, (err) => errorHandler(err, req, res, () => res.writeHead(500).end()));
    })();
  });
  const url = await listenLocal(http1);
  return {
    url,
    tokenUrl: `${url}/token`,
    tokenRequests,
    introspect: async (t) => {
      const entry = tokens.get(t);
      return entry && entry.expiresAt > Date.now() ? { client_id: entry.clientId, scope: entry.scope } : null;
    },
    close: () => closeServer(http1),
  };
}

/** oauth2-mock-server 9 (JWT tokens signed with an RS256 key it serves as JWKS; it accepts any client), behind a recording http server. */
export async function startMockServer(): Promise<InteropServer & { jwksUrl: string }> {
  const issuer = new OAuth2Issuer();
  await issuer.keys.generate('RS256');
  const service = new OAuth2Service(issuer);
  const tokenRequests: RecordedRequest[] = [];
  const handler = service.requestHandler;
  const http1 = http.createServer((req, res) => {
    if (req.method === 'POST' && req.url?.startsWith('/token')) tokenRequests.push({ method: 'POST', url: req.url, headers: { ...req.headers }, body: '', at: Date.now() });
    handler(req, res);
  });
  const url = await listenLocal(http1);
  issuer.url = url;
  return {
    url,
    tokenUrl: `${url}/token`,
    jwksUrl: `${url}/jwks`,
    tokenRequests,
    introspect: async () => null,
    close: () => closeServer(http1),
  };
}
