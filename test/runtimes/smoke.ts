/**
 * The runtime smoke suite: run by `npm run test:runtimes` under Node 20, Node 24, Deno and Bun (see run.ts), against
 * an oidc-provider and a protected API that run.ts starts on Node. Uses only the built package and web/Node APIs every
 * runtime has. Prints one line per check, `ok <name>` or `not ok <name>: <reason>`, and exits 1 when one failed.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, ErrorCode, FileTokenStore, isClientCredentialsError, type ClientConfiguration } from '../../src/index.js';

const tokenUrl = process.env.SMOKE_TOKEN_URL!;
const apiUrl = process.env.SMOKE_API_URL!;
const credentials = { oAuthClientId: 'svc', oAuthClientSecret: 'svc-secret', oAuthScopes: 'api:read' };
let failed = false;

async function check(name: string, body: () => Promise<void>): Promise<void> {
  try {
    await body();
    console.log(`ok ${name}`);
  } catch (error) {
    failed = true;
    console.log(`not ok ${name}: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
  }
}

function expect(condition: boolean, what: string): void {
  if (!condition) throw new Error(what);
}

async function withClient(config: ClientConfiguration, body: (client: Client) => Promise<void>): Promise<void> {
  const client = new Client(config);
  try {
    await body(client);
  } finally {
    await client.close();
  }
}

const base: ClientConfiguration = { baseUrl: apiUrl, tokenUrl, clientCredentialsAuthCredentials: credentials, timeout: 10_000 };

await check('client.interceptor(): an interceptor where undici is real; on Bun a typed error that names client.fetch', () =>
  withClient(base, async (client) => {
    const bun = typeof (globalThis as { Bun?: unknown }).Bun !== 'undefined';
    let interceptor: unknown;
    try {
      interceptor = client.interceptor();
    } catch (error) {
      expect(bun && isClientCredentialsError(error, ErrorCode.RuntimeUnsupported) && /client\.fetch/.test(error.message), `a RuntimeUnsupportedError on Bun only, got ${String(error)}`);
      return;
    }
    expect(!bun && typeof interceptor === 'function', 'an interceptor function (and not on Bun)');
  }),
);

await check('token from oidc-provider', () =>
  withClient(base, async (client) => {
    const token = await client.clientCredentialsAuthManager.fetchToken();
    expect(token.tokenType === 'Bearer' && token.accessToken.split('.').length === 3, 'a Bearer JWT');
  }),
);

await check('API call', () =>
  withClient(base, async (client) => {
    const response = await client.get<{ client_id: string }>('/things');
    expect(response.statusCode === 200 && response.result.client_id === 'svc', `200 for svc, got ${response.statusCode}`);
  }),
);

await check('bytes and stream responses', () =>
  withClient(base, async (client) => {
    const text = (await client.get('/things', { responseType: 'text' })).body;
    const bytes = (await client.get('/things', { responseType: 'bytes' })).body;
    expect(bytes instanceof Uint8Array && new TextDecoder().decode(bytes) === text, 'bytes equal to the text');
    const stream = (await client.get('/things', { responseType: 'stream' })).body;
    expect((await new Response(stream).text()) === text, 'the stream reads to the text');
  }),
);

await check('401 recovery', () =>
  withClient({ ...base, clientCredentialsAuthCredentials: { ...credentials, oAuthToken: { accessToken: 'rejected-by-the-api', tokenType: 'Bearer', expiresIn: 3600 } } }, async (client) => {
    const response = await client.get('/things');
    expect(response.statusCode === 200 && client.stats().unauthorizedRetries === 1, 'one retry after the 401, then 200');
  }),
);

await check('file store shared by two Clients', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'cc-smoke-'));
  try {
    const path = join(dir, 'tokens.json');
    let first = '';
    await withClient({ ...base, tokenStore: new FileTokenStore({ path }) }, async (client) => {
      await client.get('/things');
      first = (await client.clientCredentialsAuthManager.getToken()).accessToken;
    });
    await withClient({ ...base, tokenStore: new FileTokenStore({ path }) }, async (client) => {
      await client.get('/things');
      expect(client.stats().tokenRequests === 0 && client.stats().storeHits === 1, 'the second Client reads the token from the file');
      expect((await client.clientCredentialsAuthManager.getToken()).accessToken === first, 'the same token');
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

if (failed) process.exit(1);
