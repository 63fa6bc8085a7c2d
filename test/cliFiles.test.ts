/**
 * The files the CLI's flags name must be small regular files: a FIFO (with or without a writer), a device or a file
 * past the limit is refused at once, exit code 2, with `cannot read the … file …: <why>` and no token request,
 * instead of waiting for a writer that never comes (plain `readFile` of a FIFO blocks in `open`) or reading without
 * end. The built CLI runs as a subprocess against oidc-provider.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, open, rm, truncate, writeFile } from 'node:fs/promises';
import { generateKeyPairSync } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startOidcProvider, type OidcProviderHandle } from './helpers/oidc.js';
import { runCli, type Run } from './helpers/cliRun.js';

/** Far above a refused run (well under a second) and far below the test's own timeout: a hang is a failure, not a stall. */
const HANG_MS = 20_000;

let op: OidcProviderHandle;
let work: string;
let fifo: string;
let secretFile: string;

before(async () => {
  op = await startOidcProvider({ ttl: 300 });
  work = await mkdtemp(join(tmpdir(), 'cli-files-'));
  fifo = join(work, 'a.fifo');
  execFileSync('mkfifo', [fifo]);
  secretFile = join(work, 'secret');
  await writeFile(secretFile, 'svc-secret\n', { mode: 0o600 });
});

after(async () => {
  await op.close();
  await rm(work, { recursive: true, force: true });
});

function cli(args: string[]): Promise<Run> {
  return runCli(args, { env: { HOME: work, CLIENT_CREDENTIALS_CACHE: 'off', NO_COLOR: '1' }, timeoutMs: HANG_MS });
}

const token = ['token', '--client-id', 'svc'];
/** A JWT for `inspect --verify` to get as far as reading `--ca` (its signature is never checked: the read fails first). */
const JWT = [{ alg: 'RS256', typ: 'at+jwt' }, { sub: 'svc', exp: 4_102_444_800 }].map((part) => Buffer.from(JSON.stringify(part)).toString('base64url')).join('.') + '.c2ln';
const withToken = () => [...token, '--token-url', op.tokenUrl];

describe('files named by flags', () => {
  test('a regular secret file still works (the control: the same command with a FIFO is refused below)', async () => {
    const run = await cli([...withToken(), '--client-secret-file', secretFile]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.trim().split('.').length, 3);
  });

  // Each of these read the file with a plain readFile before: a FIFO with no writer hung the command.
  const cases: { name: string; args: () => string[]; message: RegExp }[] = [
    { name: '--client-secret-file', args: () => [...withToken(), '--client-secret-file', fifo], message: /cannot read the client secret file .*a\.fifo \(--client-secret-file\): not a regular file/ },
    { name: '--config', args: () => [...token, '--config', fifo], message: /cannot read the config file .*a\.fifo: not a regular file/ },
    { name: '--private-key-file', args: () => [...withToken(), '--private-key-file', fifo], message: /cannot read the private key file .*a\.fifo: not a regular file/ },
    { name: '--cert', args: () => [...withToken(), '--client-secret-file', secretFile, '--cert', fifo, '--key', secretFile], message: /cannot read the client certificate file .*a\.fifo: not a regular file/ },
    { name: '--ca', args: () => [...withToken(), '--client-secret-file', secretFile, '--ca', fifo], message: /cannot read the CA certificate file .*a\.fifo: not a regular file/ },
    { name: 'call --data @FILE', args: () => ['call', 'POST', `${op.issuer}/x`, '--token-url', op.tokenUrl, '--client-id', 'svc', '--client-secret-file', secretFile, '--data', `@${fifo}`], message: /cannot read --data file .*a\.fifo: not a regular file/ },
    { name: 'inspect --verify --ca', args: () => ['inspect', '--verify', '--issuer', op.issuer, '--ca', fifo, JWT], message: /cannot read the CA certificate file .*a\.fifo: not a regular file/ },
  ];
  for (const { name, args, message } of cases) {
    test(`${name} naming a FIFO with no writer: refused at once, exit 2, no token request`, async () => {
      const before = op.tokenRequests.length;
      const run = await cli(args());
      assert.equal(run.killed, false, `${name} hung on the FIFO`);
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, message);
      assert.equal(op.tokenRequests.length, before);
    });
  }

  test('a FIFO with a writer that never closes (`<(command)`) is refused too, and the hint names the stdin way', async () => {
    // Opened read-write, so that the CLI's open finds a writer; the CLI must refuse without reading to an end that never comes.
    const writer = await open(fifo, 'r+');
    try {
      const run = await cli([...withToken(), '--client-secret-file', fifo]);
      assert.equal(run.killed, false);
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, /not a regular file/);
      assert.match(run.stderr, /--client-secret-stdin/);
    } finally {
      await writer.close();
    }
  });

  test('a device and a file past the limit are refused: /dev/zero as the secret, a 2 MiB config, a sparse 100 MiB body', async () => {
    const bigConfig = join(work, 'big.json');
    await writeFile(bigConfig, '');
    await truncate(bigConfig, 2 * 1_048_576);
    const bigBody = join(work, 'big.body');
    await writeFile(bigBody, '');
    await truncate(bigBody, 100 * 1_048_576);
    const before = op.tokenRequests.length;
    const zero = await cli([...withToken(), '--client-secret-file', '/dev/zero']);
    assert.equal(zero.code, 2, zero.stderr);
    assert.match(zero.stderr, /cannot read the client secret file \/dev\/zero .*not a regular file/);
    const config = await cli([...token, '--config', bigConfig]);
    assert.equal(config.code, 2, config.stderr);
    assert.match(config.stderr, /cannot read the config file .*big\.json: larger than 1048576 bytes/);
    const body = await cli(['call', 'POST', `${op.issuer}/x`, '--token-url', op.tokenUrl, '--client-id', 'svc', '--client-secret-file', secretFile, '--data', `@${bigBody}`]);
    assert.equal(body.code, 2, body.stderr);
    assert.match(body.stderr, /cannot read --data file .*big\.body: larger than 67108864 bytes/);
    assert.equal(op.tokenRequests.length, before);
  });
});

describe('files written on Windows', () => {
  const BOM = '\uFEFF';
  const utf16 = (text: string): Buffer => Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]);

  test('a secret file with a UTF-8 byte order mark and a CRLF ending (Notepad before Windows 10 1903) gives the secret itself', async () => {
    const path = join(work, 'secret-bom');
    await writeFile(path, `${BOM}svc-secret\r\n`, { mode: 0o600 });
    const run = await cli([...withToken(), '--client-secret-file', path]);
    assert.equal(run.code, 0, run.stderr);
    assert.ok(run.stdout.trim().length > 0);
  });

  test('a config file with a UTF-8 byte order mark (PowerShell 5 `Set-Content -Encoding utf8`) is read as JSON', async () => {
    const path = join(work, 'config-bom.json');
    await writeFile(path, `${BOM}{ "tokenUrl": "${op.tokenUrl}", "clientId": "svc" }\r\n`);
    const run = await cli(['token', '--config', path, '--client-secret-file', secretFile]);
    assert.equal(run.code, 0, run.stderr);
  });

  test('a UTF-16 secret or config file (PowerShell 5 `>` and `Out-File`) is refused, saying so, instead of sending mangled bytes', async () => {
    const secret = join(work, 'secret-utf16');
    await writeFile(secret, utf16('svc-secret\r\n'), { mode: 0o600 });
    let run = await cli([...withToken(), '--client-secret-file', secret]);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /client secret file .*UTF-16/);
    const config = join(work, 'config-utf16.json');
    await writeFile(config, utf16(`{ "tokenUrl": "${op.tokenUrl}", "clientId": "svc" }\r\n`));
    run = await cli(['token', '--config', config, '--client-secret-file', secretFile]);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /config file .*UTF-16/);
  });
});

describe('files that others may read', () => {
  test('a client secret file or private key file that group or others may read gets a warning naming chmod 600 (as a config file holding clientSecret does); 0600 gets none; the token is still fetched', async () => {
    const readable = join(work, 'secret-0644');
    await writeFile(readable, 'svc-secret\n', { mode: 0o644 });
    await chmod(readable, 0o644);
    const warned = await cli([...withToken(), '--client-secret-file', readable]);
    assert.equal(warned.code, 0, warned.stderr);
    assert.match(warned.stderr, new RegExp(`warning: the client secret file ${readable.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} may be read by other users; run: chmod 600 `));
    const quiet = await cli([...withToken(), '--client-secret-file', secretFile]);
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.doesNotMatch(quiet.stderr, /chmod/);
    const key = join(work, 'key-0640.pem');
    await writeFile(key, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o640 });
    await chmod(key, 0o640);
    const keyRun = await cli(['token', '--client-id', 'svc', '--token-url', op.tokenUrl, '--private-key-file', key]);
    assert.match(keyRun.stderr, /warning: the private key file .* may be read by other users; run: chmod 600 /);
  });
});
