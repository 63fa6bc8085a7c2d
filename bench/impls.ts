/**
 * The contenders: the two bare-HTTP baselines, our Client, and each peer written the way its README teaches.
 * Every contender does the same unit of work per call: one authenticated `GET /things` on the protected API,
 * the body read and parsed as JSON, a non-2xx status turned into a thrown error.
 */
import type { AccessToken } from 'simple-oauth2';
import { Agent, getGlobalDispatcher, request } from 'undici';
import { Client, type ClientConfiguration } from '../src/index.js';

/** Where the servers are, and the credentials. */
export interface BenchEnv {
  /** The protected API's origin, e.g. `http://127.0.0.1:PORT`. */
  apiUrl: string;
  /** The token endpoint, e.g. `http://127.0.0.1:PORT/token`. */
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  /** A long-lived token for the baselines, which carry a fixed bearer token. */
  fixedToken: string;
}

/** One contender, ready to call. */
export interface Contender {
  /** One authenticated GET /things; rejects on a non-2xx status or a failure. */
  get(): Promise<void>;
  /** Requests that waited for a token fetch, when the library counts them (ours). */
  waits?(): number;
  close(): Promise<void>;
}

/** A contender's description, as reported. */
export interface ContenderSpec {
  name: ContenderName;
  label: string;
  kind: 'baseline' | 'ours' | 'peer';
  /** The idiom the contender is written in. */
  idiom: string;
  /**
   * Seconds added to the token lifetime that S3 and the outage scenarios set, for this contender alone: for a library
   * that never uses a token in a fixed margin before its expiry (MSAL: 300 s), so that the part of the token's life it
   * does use is the scenario's lifetime, as it would be with hour-long tokens.
   */
  tokenTtlExtraSeconds?: number;
  /** Builds the contender; peers are imported here, so a worker loads only the library it measures. */
  create(env: BenchEnv, options?: { client?: Partial<ClientConfiguration> }): Promise<Contender>;
}

export type ContenderName =
  | 'undici' | 'undici-dispatcher' | 'fetch' | 'ours' | 'badgateway' | 'simple-oauth2' | 'openid-client' | 'axios-oauth-client' | 'undici-oidc-interceptor'
  | 'msal-node' | 'msal-node-long' | 'agent' | 'agent-compose' | 'axios' | 'ours-interceptor' | 'ours-fetch' | 'ours-axios';

/** Our Client as the adapters use it: defaults, the bench's API as `baseUrl`. */
function benchClient(env: BenchEnv, options?: { client?: Partial<ClientConfiguration> }): Client {
  return new Client({
    baseUrl: env.apiUrl,
    tokenUrl: env.tokenUrl,
    clientCredentialsAuthCredentials: { oAuthClientId: env.clientId, oAuthClientSecret: env.clientSecret },
    ...options?.client,
  });
}

async function okJson(status: number, read: () => Promise<unknown>): Promise<void> {
  await read();
  if (status < 200 || status >= 300) throw new Error(`status ${status}`);
}

/**
 * The token cache a user writes around a library that only fetches tokens (openid-client, axios-oauth-client):
 * one module-level token, refetched once `expires_in` has passed. Like the READMEs' examples, it has no single
 * flight: callers that find no valid token each fetch one.
 */
function userTokenCache(fetchToken: () => Promise<{ access_token: string; expires_in?: number }>): () => Promise<string> {
  let cached: { accessToken: string; expiresAt: number } | undefined;
  return async () => {
    if (cached && Date.now() < cached.expiresAt) return cached.accessToken;
    const tokens = await fetchToken();
    cached = { accessToken: tokens.access_token, expiresAt: Date.now() + (tokens.expires_in ?? 300) * 1000 };
    return cached.accessToken;
  };
}

/**
 * MSAL Node as its docs teach for a daemon app: one `ConfidentialClientApplication`, `acquireTokenByClientCredential`
 * before every call (MSAL answers from its in-memory token cache while the token is good), the returned `accessToken`
 * as the bearer token. MSAL takes only an https authority and looks it up on the network; the configuration from
 * test/helpers/msalLoopback.ts uses MSAL's documented extension points to point it at the bench's token endpoint
 * (a known authority with its metadata given, and a network client that sends the authority's https URLs to the local
 * http origin). That is transport only: MSAL's cache, its expiry margin and its throttling are what is measured.
 */
async function msalNode(env: BenchEnv): Promise<Contender> {
  const { ConfidentialClientApplication } = await import('@azure/msal-node');
  const { msalLoopbackConfiguration } = await import('../test/helpers/msalLoopback.js');
  const app = new ConfidentialClientApplication(msalLoopbackConfiguration(env.tokenUrl, env.clientId, env.clientSecret));
  const request = { scopes: ['api://bench/.default'] };
  const url = `${env.apiUrl}/things`;
  return {
    async get() {
      const result = await app.acquireTokenByClientCredential(request);
      if (!result) throw new Error('MSAL returned no token');
      const res = await fetch(url, { headers: { authorization: `Bearer ${result.accessToken}` } });
      await okJson(res.status, () => res.json());
    },
    async close() {},
  };
}

const MSAL_IDIOM = '`new ConfidentialClientApplication(config)`; `const { accessToken } = await app.acquireTokenByClientCredential({ scopes })` before every call; `fetch` with the bearer header';

const specs: ContenderSpec[] = [
  {
    name: 'undici',
    label: 'raw undici.request',
    kind: 'baseline',
    idiom: '`undici.request(url, { headers: { authorization } })` on the global dispatcher, fixed bearer token, `body.json()`',
    async create(env) {
      const url = `${env.apiUrl}/things`;
      const headers = { authorization: `Bearer ${env.fixedToken}` };
      return {
        async get() {
          const { statusCode, body } = await request(url, { headers });
          await okJson(statusCode, () => body.json());
        },
        async close() {},
      };
    },
  },
  {
    name: 'undici-dispatcher',
    label: 'raw undici dispatcher.request',
    kind: 'baseline',
    idiom: '`getGlobalDispatcher().request({ origin, path, method, headers })`: undici below its URL parsing, fixed bearer token, `body.json()`',
    async create(env) {
      const dispatcher = getGlobalDispatcher();
      const options = { origin: env.apiUrl, path: '/things', method: 'GET' as const, headers: { authorization: `Bearer ${env.fixedToken}` } };
      return {
        async get() {
          const { statusCode, body } = await dispatcher.request(options);
          await okJson(statusCode, () => body.json());
        },
        async close() {},
      };
    },
  },
  {
    name: 'fetch',
    label: 'raw fetch',
    kind: 'baseline',
    idiom: 'global `fetch(url, { headers: { authorization } })`, fixed bearer token, `res.json()`',
    async create(env) {
      const url = `${env.apiUrl}/things`;
      const headers = { authorization: `Bearer ${env.fixedToken}` };
      return {
        async get() {
          const res = await fetch(url, { headers });
          await okJson(res.status, () => res.json());
        },
        async close() {},
      };
    },
  },
  {
    name: 'ours',
    label: 'oauth-client-credentials (ours)',
    kind: 'ours',
    idiom: '`new Client({ baseUrl, tokenUrl, clientCredentialsAuthCredentials })`, `client.get(\'/things\')` (defaults)',
    async create(env, options) {
      const client = new Client({
        baseUrl: env.apiUrl,
        tokenUrl: env.tokenUrl,
        clientCredentialsAuthCredentials: { oAuthClientId: env.clientId, oAuthClientSecret: env.clientSecret },
        ...options?.client,
      });
      return {
        async get() {
          await client.get('/things');
        },
        waits: () => client.stats().waits,
        close: () => client.close(),
      };
    },
  },
  {
    name: 'badgateway',
    label: '@badgateway/oauth2-client',
    kind: 'peer',
    idiom: '`new OAuth2Fetch({ client, getNewToken: () => client.clientCredentials() })`, `wrapper.fetch(url)`, `res.json()`',
    async create(env) {
      const { OAuth2Client, OAuth2Fetch } = await import('@badgateway/oauth2-client');
      const client = new OAuth2Client({ server: new URL(env.tokenUrl).origin, tokenEndpoint: '/token', clientId: env.clientId, clientSecret: env.clientSecret });
      const wrapper = new OAuth2Fetch({ client, getNewToken: () => client.clientCredentials() });
      const url = `${env.apiUrl}/things`;
      return {
        async get() {
          const res = await wrapper.fetch(url);
          await okJson(res.status, () => res.json());
        },
        async close() {},
      };
    },
  },
  {
    name: 'simple-oauth2',
    label: 'simple-oauth2 + fetch',
    kind: 'peer',
    idiom: '`new ClientCredentials(config)`; `if (!accessToken || accessToken.expired()) accessToken = await client.getToken({})`; `fetch` with the bearer header',
    async create(env) {
      const { ClientCredentials } = await import('simple-oauth2');
      const tokenUrl = new URL(env.tokenUrl);
      const client = new ClientCredentials({ client: { id: env.clientId, secret: env.clientSecret }, auth: { tokenHost: tokenUrl.origin, tokenPath: tokenUrl.pathname } });
      let accessToken: AccessToken | undefined;
      const url = `${env.apiUrl}/things`;
      return {
        async get() {
          if (!accessToken || accessToken.expired()) accessToken = await client.getToken({});
          const res = await fetch(url, { headers: { authorization: `Bearer ${accessToken.token.access_token}` } });
          await okJson(res.status, () => res.json());
        },
        async close() {},
      };
    },
  },
  {
    name: 'openid-client',
    label: 'openid-client v6',
    kind: 'peer',
    idiom: '`clientCredentialsGrant(config)` behind a user-written token cache (refetch after `expires_in`, no single flight), `fetchProtectedResource(config, token, url, \'GET\')`',
    async create(env) {
      const oidc = await import('openid-client');
      const config = new oidc.Configuration({ issuer: new URL(env.tokenUrl).origin, token_endpoint: env.tokenUrl }, env.clientId, env.clientSecret);
      oidc.allowInsecureRequests(config); // plain http on loopback
      const accessToken = userTokenCache(async () => {
        const tokens = await oidc.clientCredentialsGrant(config);
        return { access_token: tokens.access_token, expires_in: tokens.expiresIn() };
      });
      const url = new URL(`${env.apiUrl}/things`);
      return {
        async get() {
          const res = await oidc.fetchProtectedResource(config, await accessToken(), url, 'GET');
          await okJson(res.status, () => res.json());
        },
        async close() {},
      };
    },
  },
  {
    name: 'axios-oauth-client',
    label: 'axios + axios-oauth-client',
    kind: 'peer',
    idiom: '`clientCredentials(axios.create(), tokenUrl, id, secret)` behind a user-written token cache, added by an axios request interceptor',
    async create(env) {
      const { default: axios } = await import('axios');
      const { clientCredentials } = await import('axios-oauth-client');
      const getClientCredentials = clientCredentials(axios.create(), env.tokenUrl, env.clientId, env.clientSecret);
      const accessToken = userTokenCache(() => getClientCredentials('') as Promise<{ access_token: string; expires_in?: number }>);
      const api = axios.create({ baseURL: env.apiUrl });
      api.interceptors.request.use(async (config) => {
        config.headers.Authorization = `Bearer ${await accessToken()}`;
        return config;
      });
      return {
        async get() {
          await api.get('/things');
        },
        async close() {},
      };
    },
  },
  {
    name: 'undici-oidc-interceptor',
    label: 'undici-oidc-interceptor',
    kind: 'peer',
    idiom: '`new Agent().compose(createOidcInterceptor({ idpTokenUrl, clientId, clientSecret, urls }))`, `undici.request(url, { dispatcher })`',
    async create(env) {
      const { createOidcInterceptor } = await import('undici-oidc-interceptor');
      const dispatcher = new Agent().compose(
        createOidcInterceptor({ idpTokenUrl: env.tokenUrl, clientId: env.clientId, clientSecret: env.clientSecret, retryOnStatusCodes: [401], urls: [env.apiUrl] }),
      );
      const url = `${env.apiUrl}/things`;
      return {
        async get() {
          const { statusCode, body } = await request(url, { dispatcher });
          await okJson(statusCode, () => body.json());
        },
        close: () => dispatcher.close(),
      };
    },
  },
  {
    name: 'msal-node',
    label: 'MSAL Node + fetch',
    kind: 'peer',
    idiom: `${MSAL_IDIOM}; the authority pointed at the bench's token endpoint through MSAL's documented \`knownAuthorities\`, \`authorityMetadata\`, \`cloudDiscoveryMetadata\` and \`networkClient\` (test/helpers/msalLoopback.ts: transport only)`,
    create: msalNode,
  },
  {
    name: 'msal-node-long',
    label: 'MSAL Node + fetch, tokens 300 s longer',
    kind: 'peer',
    idiom: `The same, in S3 and the outage scenarios given tokens that live 300 s longer than everyone else's: MSAL never uses a token in the last 300 s before its expiry, so the part of each token it uses is the scenario's lifetime, as with hour-long tokens`,
    tokenTtlExtraSeconds: 300,
    create: msalNode,
  },
];

// Each adapter beside its bare client with a fixed token (a baseline) and the peer of its kind.
specs.push(
  {
    name: 'agent',
    label: 'raw undici.request on an Agent',
    kind: 'baseline',
    idiom: '`undici.request(url, { dispatcher: new Agent(), headers: { authorization } })`, fixed bearer token, `body.json()`: the bare client of `client.interceptor()`',
    async create(env) {
      const dispatcher = new Agent();
      const url = `${env.apiUrl}/things`;
      const headers = { authorization: `Bearer ${env.fixedToken}` };
      return {
        async get() {
          const { statusCode, body } = await request(url, { dispatcher, headers });
          await okJson(statusCode, () => body.json());
        },
        close: () => dispatcher.close(),
      };
    },
  },
  {
    name: 'agent-compose',
    label: 'Agent + fixed-token interceptor',
    kind: 'baseline',
    idiom: '`new Agent().compose(dispatch => (opts, handler) => dispatch({ ...opts, headers: { ...opts.headers, authorization } }, handler))`: the floor of any interceptor',
    async create(env) {
      const authorization = `Bearer ${env.fixedToken}`;
      const dispatcher = new Agent().compose((dispatch) => (opts, handler) => dispatch({ ...opts, headers: { ...(opts.headers as Record<string, string>), authorization } }, handler));
      const url = `${env.apiUrl}/things`;
      return {
        async get() {
          const { statusCode, body } = await request(url, { dispatcher });
          await okJson(statusCode, () => body.json());
        },
        close: () => dispatcher.close(),
      };
    },
  },
  {
    name: 'ours-interceptor',
    label: 'client.interceptor() (ours)',
    kind: 'ours',
    idiom: '`new Agent().compose(client.interceptor())`, `undici.request(url, { dispatcher })`, `body.json()`',
    async create(env, options) {
      const client = benchClient(env, options);
      const dispatcher = new Agent().compose(client.interceptor());
      const url = `${env.apiUrl}/things`;
      return {
        async get() {
          const { statusCode, body } = await request(url, { dispatcher });
          await okJson(statusCode, () => body.json());
        },
        waits: () => client.stats().waits,
        close: async () => {
          await dispatcher.close();
          await client.close();
        },
      };
    },
  },
  {
    name: 'ours-fetch',
    label: 'client.fetch (ours)',
    kind: 'ours',
    idiom: '`const { fetch } = client`, `fetch(url)`, `res.json()`',
    async create(env, options) {
      const client = benchClient(env, options);
      const { fetch } = client;
      const url = `${env.apiUrl}/things`;
      return {
        async get() {
          const res = await fetch(url);
          await okJson(res.status, () => res.json());
        },
        waits: () => client.stats().waits,
        close: () => client.close(),
      };
    },
  },
  {
    name: 'axios',
    label: 'raw axios',
    kind: 'baseline',
    // The header per call: with it in the instance defaults (`axios.create({ headers })`) axios measured ~40 % slower here.
    idiom: '`axios.create({ baseURL })`, `api.get(\'/things\', { headers: { Authorization } })`, fixed bearer token: the bare client of the axios adapter',
    async create(env) {
      const { default: axios } = await import('axios');
      const api = axios.create({ baseURL: env.apiUrl });
      const headers = { Authorization: `Bearer ${env.fixedToken}` };
      return {
        async get() {
          await api.get('/things', { headers });
        },
        async close() {},
      };
    },
  },
  {
    name: 'ours-axios',
    label: 'axios + attachClientCredentials (ours)',
    kind: 'ours',
    idiom: '`attachClientCredentials(axios.create({ baseURL }), client)`, `api.get(\'/things\')`',
    async create(env, options) {
      const { default: axios } = await import('axios');
      const { attachClientCredentials } = await import('../src/adapters/axios.js');
      const client = benchClient(env, options);
      const api = axios.create({ baseURL: env.apiUrl });
      attachClientCredentials(api, client);
      return {
        async get() {
          await api.get('/things');
        },
        waits: () => client.stats().waits,
        close: () => client.close(),
      };
    },
  },
);

/**
 * The pairs of the adapter targets: each of ours against its bare client with a fixed token (≥ 0.95 at the
 * concurrencies in `targets`, default both) and, where there is one, the peer of its kind (ours must be ahead).
 */
export const ADAPTER_PAIRS: readonly { ours: ContenderName; bare: ContenderName; peer?: ContenderName; targets?: readonly ('c1' | 'c64')[] }[] = [
  { ours: 'ours', bare: 'undici-dispatcher', targets: ['c64'] },
  // Against a plain Agent only to compare with the peer (composing costs something of itself): the target is against agent-compose.
  { ours: 'ours-interceptor', bare: 'agent', peer: 'undici-oidc-interceptor', targets: [] },
  { ours: 'ours-interceptor', bare: 'agent-compose' },
  { ours: 'ours-fetch', bare: 'fetch', peer: 'badgateway' },
  { ours: 'ours-axios', bare: 'axios', peer: 'axios-oauth-client' },
];

/** Every contender, baselines first. */
export const CONTENDERS: readonly ContenderSpec[] = specs;

/** The contenders that obtain tokens themselves (ours and the peers), for S2–S4. */
export const TOKEN_CONTENDERS: readonly ContenderSpec[] = specs.filter((s) => s.kind !== 'baseline' && !s.name.startsWith('ours-'));

export function contender(name: string): ContenderSpec {
  const spec = specs.find((s) => s.name === name);
  if (!spec) throw new Error(`unknown contender ${name}`);
  return spec;
}
