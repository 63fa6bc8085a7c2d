/**
 * The package as users receive it: `npm pack`, install the tarball in a scratch project, import both entry points,
 * run the bin, and check that the tarball holds no test or source-map clutter beyond dist/src.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');

test('the packed tarball installs and both entry points and the bin work', { timeout: 120_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'cc-pack-'));
  try {
    const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: root });
    const [info] = JSON.parse(stdout) as [{ filename: string; files: { path: string }[] }];
    const paths = info.files.map((f) => f.path);
    assert.ok(paths.includes('dist/src/index.js') && paths.includes('dist/src/index.d.ts'));
    assert.ok(paths.includes('dist/src/stores/redis.js') && paths.includes('dist/src/cli/main.js'));
    assert.ok(paths.every((p) => p === 'package.json' || p === 'README.md' || p.startsWith('dist/src/')), `unexpected files: ${paths.filter((p) => !p.startsWith('dist/src/')).join(', ')}`);

    await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'scratch', private: true, type: 'module' }));
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', join(dir, info.filename)], { cwd: dir });
    await writeFile(
      join(dir, 'check.mjs'),
      `import { Client, OAuthProviderError, ApiError, ErrorCode } from 'oauth-client-credentials';
       import { RedisTokenStore } from 'oauth-client-credentials/redis';
       const c = new Client({ baseUrl: 'https://api.example.com', tokenUrl: '/token', clientCredentialsAuthCredentials: { oAuthClientId: 'a', oAuthClientSecret: 'b' } });
       console.log(typeof c.request, typeof RedisTokenStore, new OAuthProviderError({ statusCode: 400, headers: {}, body: '', result: { error: 'x' } }) instanceof ApiError, ErrorCode.OAuthProvider);`,
    );
    const check = await run('node', ['check.mjs'], { cwd: dir });
    assert.equal(check.stdout.trim(), 'function function true ERR_OAUTH_PROVIDER');
    const version = await run(join(dir, 'node_modules', '.bin', 'client-credentials'), ['--version'], { cwd: dir });
    assert.match(version.stdout.trim(), /^\d+\.\d+\.\d+/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
