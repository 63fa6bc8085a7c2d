/**
 * Trailing line breaks of a secret file. RFC 6749 Appendix A.2: a client secret is `*VSCHAR` (%x20-7E), so a CR or
 * LF is never part of one; `echo`, editors, heredocs and YAML block scalars add one or more. Every trailing CR/LF is
 * removed (not only the last one); a trailing space, a legal VSCHAR, is kept. Checked end to end against a token
 * endpoint that accepts only the exact secret: the CLI (`--client-secret-file`, `$CLIENT_CREDENTIALS_CLIENT_SECRET_FILE`,
 * a config file's `clientSecretFile`, `--client-secret-stdin`) and the broker's `clientSecretFile`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { parseBrokerConfig } from '../src/broker/config.js';
import { secretText } from '../src/io/smallFile.js';
import { openBrokerClient } from '../src/broker/clients.js';
import { closeServer, listenLocal } from './helpers/http.js';
import { runCli } from './helpers/cliRun.js';

const SECRET = 'n3wl1ne-secret-Zq8';
const SPACED = 'ends-with-space ';
let seen: string[] = [];
let server: http.Server;
let tokenUrl = '';
let dir = '';

/** A token endpoint that accepts client `svc` with exactly SECRET (or `spaced` with SPACED), Basic per RFC 6749 §2.3.1. */
before(async () => {
  server = http.createServer((req, res) => {
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const [id, secret] = Buffer.from(basic ?? '', 'base64').toString('utf8').split(':').map((part) => decodeURIComponent(part.replace(/\+/g, ' ')));
    seen.push(secret ?? '');
    req.resume();
    const ok = (id === 'svc' && secret === SECRET) || (id === 'spaced' && secret === SPACED);
    if (!ok) return void res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'invalid_client' }));
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify({ access_token: 'at-ok', token_type: 'Bearer', expires_in: 3600 }));
  });
  tokenUrl = `${await listenLocal(server)}/token`;
  dir = await mkdtemp(path.join(tmpdir(), 'occ-secretnl-'));
});
after(async () => {
  await closeServer(server);
  await rm(dir, { recursive: true, force: true });
});

const ENDINGS: Array<[string, string]> = [['one LF', '\n'], ['two LF', '\n\n'], ['CRLF CRLF', '\r\n\r\n'], ['LF CR LF', '\n\r\n'], ['none', '']];

async function secretFile(name: string, content: string): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, content, { mode: 0o600 });
  return file;
}

test('property: any RFC 6749 secret (VSCHAR) followed by any run of CR and LF reads back as the secret, trailing spaces included', () => {
  const vschar = fc.integer({ min: 0x20, max: 0x7e }).map((code) => String.fromCharCode(code));
  fc.assert(
    fc.property(fc.array(vschar, { minLength: 1, maxLength: 64 }).map((chars) => chars.join('')), fc.array(fc.constantFrom('\r', '\n')).map((c) => c.join('')), (secret, breaks) => {
      assert.equal(secretText(secret + breaks), secret);
    }),
  );
});

describe('the CLI', () => {
  for (const [name, ending] of ENDINGS) {
    test(`--client-secret-file ending in ${name}: the exact secret is sent`, async () => {
      const file = await secretFile(`cli-${name.replace(/ /g, '')}`, SECRET + ending);
      seen = [];
      const run = await runCli(['token', '--token-url', tokenUrl, '--client-id', 'svc', '--client-secret-file', file, '--cache', 'off']);
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(seen, [SECRET]);
    });
  }

  test('$CLIENT_CREDENTIALS_CLIENT_SECRET_FILE, a config file\'s clientSecretFile and --client-secret-stdin with two trailing newlines: the exact secret', async () => {
    const file = await secretFile('env-two', `${SECRET}\n\n`);
    seen = [];
    const viaEnv = await runCli(['token', '--token-url', tokenUrl, '--client-id', 'svc', '--cache', 'off'], { env: { CLIENT_CREDENTIALS_CLIENT_SECRET_FILE: file } });
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
    const config = path.join(dir, 'config.json');
    await writeFile(config, JSON.stringify({ tokenUrl, clientId: 'svc', clientSecretFile: file }), { mode: 0o600 });
    const viaConfig = await runCli(['token', '--config', config, '--cache', 'off']);
    assert.equal(viaConfig.code, 0, viaConfig.stderr);
    const viaStdin = await runCli(['token', '--token-url', tokenUrl, '--client-id', 'svc', '--client-secret-stdin', '--cache', 'off'], { input: `${SECRET}\r\n\n` });
    assert.equal(viaStdin.code, 0, viaStdin.stderr);
    assert.deepEqual(seen, [SECRET, SECRET, SECRET]);
  });

  test('a trailing space is part of the secret (RFC 6749 VSCHAR): kept, with the line breaks after it removed', async () => {
    const file = await secretFile('spaced', `${SPACED}\n\n`);
    seen = [];
    const run = await runCli(['token', '--token-url', tokenUrl, '--client-id', 'spaced', '--client-secret-file', file, '--cache', 'off']);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(seen, [SPACED]);
  });

  test('a file of line breaks only is an empty secret: exit 2', async () => {
    const file = await secretFile('blank', '\n\n');
    const run = await runCli(['token', '--token-url', tokenUrl, '--client-id', 'svc', '--client-secret-file', file, '--cache', 'off']);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /empty/);
  });
});

describe('the broker', () => {
  test('clientSecretFile ending in two newlines: the exact secret is sent', async () => {
    const file = await secretFile('broker-two', `${SECRET}\r\n\n`);
    const config = parseBrokerConfig(
      { listen: '127.0.0.1:0', clients: { crm: { tokenUrl, clientId: 'svc', clientSecretFile: file } }, routes: [{ path: '/crm/', upstream: 'http://127.0.0.1:9/', client: 'crm' }] },
      {},
    );
    const opened = await openBrokerClient(config.clients.get('crm')!, { baseDir: dir, userAgent: 'test' });
    try {
      seen = [];
      assert.equal((await opened.client.clientCredentialsAuthManager.fetchToken()).accessToken, 'at-ok');
      assert.deepEqual(seen, [SECRET]);
    } finally {
      await opened.client.close();
    }
  });
});
