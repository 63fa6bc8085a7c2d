/**
 * `npm start`: builds with tsconfig.demo.json (the few files it names, no type-check, imports not followed) into a
 * folder of its own and runs the demo from there, as a fresh clone would. The build must emit the same JavaScript
 * as the type-checked build (dist/), and the demo must show what it promises: one token fetch for 100 concurrent
 * calls, one background refresh that no call waits for, none for the second Client, the CLI against the same servers with the scope the library
 * asked for, and no secret or whole token printed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DIST = join(ROOT, 'dist');
/** Inside the repository, so that the demo resolves node_modules as `npm start` does. */
const OUT = join(DIST, '.demo-test-build');

function run(args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd, env: { PATH: process.env['PATH'] ?? '', NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function jsFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile() && e.name.endsWith('.js')).map((e) => join(e.parentPath, e.name));
}

let built: { code: number | null; stdout: string; stderr: string };
let demo: { code: number | null; stdout: string; stderr: string };

before(async () => {
  await rm(OUT, { recursive: true, force: true });
  built = await run([join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.demo.json', '--outDir', OUT], ROOT);
  if (built.code === 0) demo = await run([join(OUT, 'examples', 'demo.js')], ROOT);
});

after(async () => {
  await rm(OUT, { recursive: true, force: true });
});

describe('npm start', () => {
  test('tsconfig.demo.json builds without errors, and emits the JavaScript the type-checked build emits', async () => {
    assert.equal(built.code, 0, built.stdout + built.stderr);
    const files = await jsFiles(OUT);
    assert.ok(files.some((f) => f.endsWith(join('examples', 'demo.js'))) && files.some((f) => f.endsWith(join('src', 'cli', 'main.js'))));
    for (const file of files) {
      const name = relative(OUT, file);
      const ours = await readFile(file, 'utf8');
      const checked = (await readFile(join(DIST, name), 'utf8')).replace(/\n\/\/# sourceMappingURL=.*\n?$/, '\n');
      assert.equal(ours, checked, `${name} differs from the type-checked build's`);
    }
  });

  test('the demo runs and shows each step', () => {
    assert.equal(demo?.code, 0, `${demo?.stdout}\n${demo?.stderr}`);
    const out = demo.stdout;
    const steps = ['\n1. ', '\n2. ', '\n3. ', '\n4. ', '\nDone: '].map((s) => out.indexOf(s));
    assert.ok(steps.every((at, i) => at > 0 && (i === 0 || at > steps[i - 1]!)), `steps 1-4 and Done, in order:\n${out}`);
    assert.match(out, /100 of 100 calls answered 200, with 1 token fetch between them \(single flight\)/);
    assert.match(out, /2 calls made 1 token fetch, in the background: the ageing token was replaced once, then reused; no call waited/);
    assert.match(out, /The second Client's call answered 200 with 0 token fetches/);
    assert.match(out, /First client's counters: 2 token requests/);
  });

  test('the library and the CLI show the same scope (the CLI asks for api:read too)', () => {
    const out = demo.stdout;
    assert.match(out, /scope from the token: "api:read"/);
    assert.match(out, /CLIENT_CREDENTIALS_SCOPE=api:read/);
    assert.match(out, /npx oauth-client-credentials token +# exit 0, \d+ ms: fetched/);
    assert.match(out, /npx oauth-client-credentials token --verbose +# exit 0, \d+ ms: /);
    assert.match(out, /inspect - +# exit 0\n[^$]*\n +scope +api:read\n/);
    assert.match(out, /call GET \/things -i +# exit 0, \d+ ms\n +HTTP\/1\.1 200 OK\n/);
    assert.ok(out.includes('"scope":"api:read"'), 'the API echoes the scope of the CLI\'s token');
    assert.ok(!out.includes('"scope":null') && !out.includes('"scope": null'));
    assert.match(out, /call GET \/status\/404 +# exit 1\n/);
  });

  test('no secret and no whole token in the output', () => {
    const all = demo.stdout + demo.stderr;
    assert.ok(!all.includes('svc-secret'));
    assert.deepEqual(all.match(/eyJ[\w-]{20,}\.[\w-]+\.[\w-]+/g), null, 'tokens are shown shortened');
  });
});
