/**
 * The package as users receive it. From a copy of the source tree with no `dist/` (as a fresh clone has), `npm pack`
 * must build (prepack) and ship `dist/src`; the tarball, installed in a scratch project, must work with `import` and
 * `require()` of both entry points, run its bins, get a real token from oidc-provider, and type-check in a strict
 * consumer project (`strict`, `exactOptionalPropertyTypes`, `skipLibCheck: false`; nodenext and bundler; with and
 * without `@types/node`).
 *
 * One scratch install, five tsc runs: the whole test takes about a minute on a loaded 2-core machine.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { startOidcProvider, type OidcProviderHandle } from './helpers/oidc.js';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');

let dir: string;
let app: string;
let tarball: string;
let packedPaths: string[];
let op: OidcProviderHandle;

/** Copies the files git would commit (tracked, and new ones not ignored) into `to`: a fresh clone's tree. */
async function copySourceTree(to: string): Promise<void> {
  const { stdout } = await run('git', ['ls-files', '-co', '--exclude-standard', '-z'], { cwd: root, maxBuffer: 16 * 1024 * 1024 });
  for (const file of stdout.split('\0').filter(Boolean)) {
    if (!existsSync(join(root, file))) continue; // deleted in the working tree
    await mkdir(dirname(join(to, file)), { recursive: true });
    await cp(join(root, file), join(to, file));
  }
  // The dependencies are not part of a clone; `npm ci` would install the same ones.
  await symlink(join(root, 'node_modules'), join(to, 'node_modules'), 'dir');
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cc-pack-'));
  const tree = join(dir, 'tree');
  await copySourceTree(tree);
  assert.equal(existsSync(join(tree, 'dist')), false, 'the copied tree has no dist/');
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: tree, maxBuffer: 16 * 1024 * 1024 });
  const [info] = JSON.parse(stdout.slice(stdout.indexOf('\n[') + 1)) as [{ filename: string; files: { path: string }[] }];
  packedPaths = info.files.map((f) => f.path);
  tarball = join(dir, info.filename);
  app = join(dir, 'app');
  await mkdir(app);
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'scratch', private: true, type: 'module' }));
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], { cwd: app });
  op = await startOidcProvider();
});

after(async () => {
  await op?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('npm pack from a tree without dist/ builds and ships dist/src, the README, LICENSE and CHANGELOG', () => {
  for (const file of ['LICENSE', 'CHANGELOG.md', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/stores/redis.js', 'dist/src/stores/redis.d.ts', 'dist/src/cli/main.js', 'package.json', 'README.md']) {
    assert.ok(packedPaths.includes(file), `${file} is packed`);
  }
  const allowed = (p: string) => p.startsWith('dist/src/') || p.startsWith('docs/') || ['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md'].includes(p);
  assert.deepEqual(packedPaths.filter((p) => !allowed(p)), []);
  assert.ok(!packedPaths.some((p) => p.startsWith('dist/test/') || p.startsWith('dist/bench/')));
  // No source maps: they would point at src/*.ts, which is not shipped (and inlining the sources doubled the tarball).
  assert.deepEqual(packedPaths.filter((p) => p.endsWith('.map')), []);
});

test('no shipped file names a source map the package leaves out', async () => {
  const installed = join(app, 'node_modules', 'oauth-client-credentials');
  const shipped = packedPaths.filter((p) => p.endsWith('.js') || p.endsWith('.d.ts'));
  assert.ok(shipped.length > 20);
  const naming: string[] = [];
  for (const file of shipped) if ((await readFile(join(installed, file), 'utf8')).includes('sourceMappingURL')) naming.push(file);
  assert.deepEqual(naming, []);
});

test('import and require() of both entry points work in the installed package', async () => {
  await writeFile(
    join(app, 'check.mjs'),
    `import { Client, OAuthProviderError, ApiError, ErrorCode } from 'oauth-client-credentials';
     import { RedisTokenStore } from 'oauth-client-credentials/redis';
     const c = new Client({ baseUrl: 'https://api.example.com', tokenUrl: '/token', clientCredentialsAuthCredentials: { oAuthClientId: 'a', oAuthClientSecret: 'b' } });
     console.log(typeof c.request, typeof RedisTokenStore, new OAuthProviderError({ statusCode: 400, headers: {}, body: '', result: { error: 'x' } }) instanceof ApiError, ErrorCode.OAuthProvider);
     await c.close();`,
  );
  await writeFile(
    join(app, 'check.cjs'),
    `const { Client, ErrorCode } = require('oauth-client-credentials');
     const { RedisTokenStore } = require('oauth-client-credentials/redis');
     console.log(typeof Client, typeof RedisTokenStore, ErrorCode.OAuthProvider);`,
  );
  assert.equal((await run('node', ['check.mjs'], { cwd: app })).stdout.trim(), 'function function true ERR_OAUTH_PROVIDER');
  assert.equal((await run('node', ['check.cjs'], { cwd: app })).stdout.trim(), 'function function ERR_OAUTH_PROVIDER');
});

test('the installed package gets a real token from oidc-provider, in code and from both bins', async () => {
  await writeFile(
    join(app, 'token.mjs'),
    `import { Client } from 'oauth-client-credentials';
     const client = new Client({ tokenUrl: process.env.TOKEN_URL, clientCredentialsAuthCredentials: { oAuthClientId: 'svc', oAuthClientSecret: 'svc-secret', oAuthScopes: 'api:read' } });
     const token = await client.clientCredentialsAuthManager.fetchToken();
     console.log(token.tokenType, token.accessToken.split('.').length, client.clientCredentialsAuthManager.isValid(token));
     await client.close();`,
  );
  const { stdout } = await run('node', ['token.mjs'], { cwd: app, env: { ...process.env, TOKEN_URL: op.tokenUrl } });
  assert.equal(stdout.trim(), 'Bearer 3 true');

  const env = {
    ...process.env,
    CLIENT_CREDENTIALS_TOKEN_URL: op.tokenUrl,
    CLIENT_CREDENTIALS_CLIENT_ID: 'svc',
    CLIENT_CREDENTIALS_CLIENT_SECRET: 'svc-secret',
    CLIENT_CREDENTIALS_SCOPE: 'api:read',
    CLIENT_CREDENTIALS_CACHE: 'off',
  };
  const bin = (name: string) => join(app, 'node_modules', '.bin', name);
  const cli = await run(bin('oauth-client-credentials'), ['token', '--quiet'], { cwd: app, env });
  assert.match(cli.stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/);
  const version = await run(bin('client-credentials'), ['--version'], { cwd: app });
  assert.match(version.stdout.trim(), /^\d+\.\d+\.\d+/);
});

/** A consumer's code that uses the public types the way applications do; it must compile under every setting. */
const CONSUMER = `
import {
  Client, FileTokenStore, MemoryTokenStore, InvalidOptionError, ErrorCode, decodeJwt,
  type ApiResponse, type ClientConfiguration, type JsonValue, type OAuthToken, type OAuthTokenProvider, type TokenStore,
} from 'oauth-client-credentials';
import { RedisTokenStore, type RedisTokenStoreOptions } from 'oauth-client-credentials/redis';

class MapStore implements TokenStore {
  readonly #map = new Map<string, OAuthToken>();
  async get(key: string): Promise<OAuthToken | undefined> { return this.#map.get(key); }
  async set(key: string, token: OAuthToken): Promise<void> { this.#map.set(key, token); }
  async delete(key: string): Promise<void> { this.#map.delete(key); }
}

const stores: TokenStore[] = [new FileTokenStore({ path: '/tmp/tokens.json' }), new MemoryTokenStore(), new MapStore()];
const provider: OAuthTokenProvider = async (last, manager) => (last && !manager.isExpired(last) ? last : manager.fetchToken());
const config: ClientConfiguration = {
  baseUrl: 'https://api.example.com',
  tokenUrl: '/oauth2/token',
  timeout: 5_000,
  clientCredentialsAuthCredentials: { oAuthClientId: 'id', oAuthClientSecret: 'secret', oAuthScopes: ['a', 'b'], clockSkew: 30, oAuthTokenProvider: provider },
  tokenStore: stores[0]!,
  tls: { cert: new Uint8Array(1), key: 'pem' },
};
const client = new Client(config);
export async function use(): Promise<string> {
  const response: ApiResponse = await client.get('/things');
  const typed = await client.get<{ id: string }>('/things');
  const id: string = typed.result.id;
  const unknownResult: unknown = response.result;
  const bytes = await client.get('/file', { responseType: 'bytes' });
  const raw: Uint8Array = bytes.body;
  const streamed = await client.get('/file', { responseType: 'stream' });
  const stream: ReadableStream<Uint8Array> = streamed.body;
  void new Client({ proxy: 'env' });
  void raw;
  void stream;
  const token = await client.clientCredentialsAuthManager.fetchToken();
  const redisOptions: RedisTokenStoreOptions = { client: { call: async () => 'OK' } };
  void new RedisTokenStore(redisOptions);
  void decodeJwt(token.accessToken);
  const extra: Record<string, JsonValue> | undefined = token.extra;
  void extra;
  void new Client({
    tokenUrl: 'https://login.example/token',
    clientCredentialsAuthCredentials: {
      oAuthClientId: 'id', clientAssertion: async () => 'jwt', grantType: 'account_credentials', tokenParameters: { account_id: 'a' },
    },
  });
  void new Client({ tokenUrl: 'https://login.example/token', clientCredentialsAuthCredentials: { oAuthClientId: 'id', oAuthClientSecret: 's', basicEncoding: 'raw' } });
  void new Client({ tokenUrl: 'https://login.example/token', clientCredentialsAuthCredentials: { oAuthClientId: 'id', privateKey: 'pem', certificate: 'pem', certificateThumbprints: ['x5t#S256', 'x5t'], keyId: 'k' } });
  void unknownResult;
  return id + ErrorCode.InvalidOption + String(new InvalidOptionError('x', 'y').code);
}
`;

test('the shipped types compile in a strict consumer: nodenext and bundler, with and without @types/node', async () => {
  await writeFile(join(app, 'consumer.ts'), CONSUMER);
  const strict = { strict: true, exactOptionalPropertyTypes: true, skipLibCheck: false, noEmit: true, target: 'ES2022', noUncheckedIndexedAccess: true };
  const settings = {
    'nodenext-node': { module: 'nodenext', moduleResolution: 'nodenext', types: ['node'], typeRoots: [join(root, 'node_modules', '@types')], lib: ['ES2023'] },
    'nodenext-no-node': { module: 'nodenext', moduleResolution: 'nodenext', types: [], lib: ['ES2023', 'DOM'] },
    'bundler-node': { module: 'esnext', moduleResolution: 'bundler', types: ['node'], typeRoots: [join(root, 'node_modules', '@types')], lib: ['ES2023'] },
    'bundler-no-node': { module: 'esnext', moduleResolution: 'bundler', types: [], lib: ['ES2023', 'DOM'] },
  };
  const failures: string[] = [];
  for (const [name, options] of Object.entries(settings)) {
    const file = join(app, `tsconfig.${name}.json`);
    await writeFile(file, JSON.stringify({ compilerOptions: { ...strict, ...options }, files: ['consumer.ts'] }));
    try {
      await run(process.execPath, [tsc, '-p', file], { cwd: app });
    } catch (error) {
      failures.push(`${name}:\n${(error as { stdout?: string }).stdout ?? String(error)}`);
    }
  }
  assert.deepEqual(failures, []);
});
