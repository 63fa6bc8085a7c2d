import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import OAuth2Server from '@node-oauth/oauth2-server';
import { closeServer, listenLocal, readBody } from './http.js';
import type { RecordedRequest } from './http.js';

export type { RecordedRequest } from './http.js';

/** A client registered with the node-oauth server. */
export interface NodeOAuthClient {
  client_id: string;
  client_secret: string;
  /** Space-separated allowed scopes (default 'api:read api:write'). */
  scope?: string;
}

/** Options for startNodeOAuthServer. */
export interface NodeOAuthOptions {
  /** Access token lifetime in seconds (default 60). */
  ttl?: number;
  /** Default: svc / svc-secret with scope 'api:read api:write'. */
  clients?: readonly NodeOAuthClient[];
}

/** A running @node-oauth/oauth2-server instance. */
export interface NodeOAuthHandle {
  url: string;
  tokenUrl: string;
  /** Every POST to /token, in arrival order. */
  tokenRequests: RecordedRequest[];
  /** True if the token was issued here and is neither expired nor revoked. */
  verify(token: string): Promise<boolean>;
  /** Claims of a valid token (for the protected API's `verify` hook), or null. */
  introspect(token: string): Promise<{ client_id: string; scope: string | null } | null>;
  /** Invalidates an issued token. */
  revoke(token: string): void;
  close(): Promise<void>;
}

interface StoredClient extends OAuth2Server.Client {
  id: string;
  secret: string;
  grants: string[];
  scopes: string[];
}

/** Starts @node-oauth/oauth2-server 5 (client_credentials, opaque tokens) on 127.0.0.1:0; also serves GET /resource. */
export async function startNodeOAuthServer(options: NodeOAuthOptions = {}): Promise<NodeOAuthHandle> {
  const ttl = options.ttl ?? 60;
  const clients: StoredClient[] = (options.clients ?? [{ client_id: 'svc', client_secret: 'svc-secret' }]).map((c) => ({
    id: c.client_id,
    secret: c.client_secret,
    grants: ['client_credentials'],
    scopes: (c.scope ?? 'api:read api:write').split(' ').filter(Boolean),
  }));
  const tokens = new Map<string, OAuth2Server.Token>();
  const tokenRequests: RecordedRequest[] = [];

  const model: OAuth2Server.ClientCredentialsModel = {
    getClient: async (id, secret) => clients.find((c) => c.id === id && c.secret === secret) ?? null,
    getUserFromClient: async (client) => ({ id: `client:${client.id}` }),
    validateScope: async (_user, client, scope) => {
      const allowed = (client as StoredClient).scopes;
      if (!scope || scope.length === 0) return allowed;
      return scope.every((s) => allowed.includes(s)) ? scope : false;
    },
    saveToken: async (token, client, user) => {
      const saved: OAuth2Server.Token = { ...token, client, user };
      tokens.set(saved.accessToken, saved);
      return saved;
    },
    getAccessToken: async (accessToken) => tokens.get(accessToken) ?? null,
  };
  const oauth = new OAuth2Server({ model, accessTokenLifetime: ttl });

  const toRequest = (req: IncomingMessage, body: string): OAuth2Server.Request =>
    new OAuth2Server.Request({
      method: req.method ?? 'GET',
      headers: req.headers as Record<string, string>,
      query: Object.fromEntries(new URL(req.url ?? '/', 'http://x').searchParams),
      body: Object.fromEntries(new URLSearchParams(body)),
    });

  const lookup = async (token: string): Promise<OAuth2Server.Token | null> => {
    const request = new OAuth2Server.Request({ method: 'GET', headers: { authorization: `Bearer ${token}` }, query: {} });
    try {
      return await oauth.authenticate(request, new OAuth2Server.Response({ headers: {} }));
    } catch {
      return null;
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const at = Date.now();
    const body = await readBody(req);
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const request = toRequest(req, body);
    const response = new OAuth2Server.Response({ headers: {} });
    try {
      if (path === '/token') {
        if (req.method === 'POST') tokenRequests.push({ method: req.method, url: req.url ?? '/', headers: { ...req.headers }, body, at });
        await oauth.token(request, response);
      } else if (path === '/resource') {
        const token = await oauth.authenticate(request, response);
        response.status = 200;
        response.body = { ok: true, client_id: token.client.id, scope: token.scope?.join(' ') ?? null };
      } else {
        response.status = 404;
        response.body = { error: 'not_found' };
      }
    } catch (e) {
      // Most OAuth errors are already written into `response`; a few (non-POST, non-form body) are only thrown.
      const err = e as { code?: number; name?: string; message?: string };
      if (!response.body?.error) {
        response.status = err.code ?? 500;
        response.body = { error: err.name ?? 'server_error', error_description: err.message ?? '' };
      }
    }
    const payload = JSON.stringify(response.body ?? {});
    res.writeHead(response.status ?? 200, { ...response.headers, 'content-type': 'application/json' });
    res.end(payload);
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  const url = await listenLocal(server);

  return {
    url,
    tokenUrl: `${url}/token`,
    tokenRequests,
    verify: async (token) => (await lookup(token)) !== null,
    introspect: async (token) => {
      const t = await lookup(token);
      return t ? { client_id: String(t.client.id), scope: t.scope?.join(' ') ?? null } : null;
    },
    revoke: (token) => {
      tokens.delete(token);
    },
    close: () => closeServer(server),
  };
}
