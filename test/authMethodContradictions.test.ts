/**
 * A credential the chosen client authentication method never sends is a contradiction, refused at construction with
 * a typed error before any request: `none` with a secret (or a key), `tls_client_auth` with a secret, an explicit
 * `private_key_jwt` with a secret, an explicit `client_secret_*` with a private key. Without `clientAuthMethod`, a
 * secret and a key together stay allowed (client_secret_basic, private_key_jwt when discovery shows basic is not
 * offered). The CLI exits 2 naming the flags; the broker refuses the config naming the JSON path.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { Client, ErrorCode, InvalidOptionError, type ClientAuthMethod } from '../src/index.js';
import { parseBrokerConfig } from '../src/broker/config.js';
import { closeServer, listenLocal } from './helpers/http.js';
import { runCli } from './helpers/cliRun.js';

const SECRET = 'Sx9-secret-never-shown-0123456789';
const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const PEM = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();

let requests = 0;
let server: http.Server;
let tokenUrl = '';
let dir = '';
before(async () => {
  server = http.createServer((_req, res) => {
    requests++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: 'at', token_type: 'Bearer', expires_in: 3600 }));
  });
  tokenUrl = `${await listenLocal(server)}/token`;
  dir = await mkdtemp(path.join(tmpdir(), 'occ-authmethod-'));
});
after(async () => {
  await closeServer(server);
  await rm(dir, { recursive: true, force: true });
});

/** What each method sends: the secret, the key, or neither. */
const SENDS: Record<ClientAuthMethod, 'secret' | 'key' | 'nothing'> = {
  client_secret_basic: 'secret', client_secret_post: 'secret', client_secret_jwt: 'secret',
  private_key_jwt: 'key', tls_client_auth: 'nothing', self_signed_tls_client_auth: 'nothing', none: 'nothing',
};

describe('the library', () => {
  test('clientAuthMethod none with a secret: InvalidOptionError (ERR_INVALID_OPTION) at construction, saying what to do; no request; the secret not in the message', async () => {
    const before = requests;
    let thrown: unknown;
    try {
      new Client({ tokenUrl, clientCredentialsAuthCredentials: { oAuthClientId: 'svc', oAuthClientSecret: SECRET, clientAuthMethod: 'none' } });
    } catch (error) {
      thrown = error;
    }
    assert.ok(thrown instanceof InvalidOptionError, String(thrown));
    assert.equal(thrown.code, ErrorCode.InvalidOption);
    assert.equal(thrown.option, 'clientCredentialsAuthCredentials.oAuthClientSecret');
    assert.match(thrown.message, /none/);
    assert.match(thrown.message, /remove/);
    assert.match(thrown.message, /client_secret_basic/);
    assert.ok(!thrown.message.includes(SECRET));
    assert.equal(requests, before);
  });

  test('every explicit method × secret/key given: refused exactly when a given credential is one the method never sends (property)', async () => {
    const before = requests;
    fc.assert(
      fc.property(fc.constantFrom(...(Object.keys(SENDS) as ClientAuthMethod[])), fc.boolean(), fc.boolean(), (method, withSecret, withKey) => {
        const sends = SENDS[method];
        const credentials = {
          oAuthClientId: 'svc',
          clientAuthMethod: method,
          ...(withSecret ? { oAuthClientSecret: SECRET } : {}),
          ...(withKey ? { privateKey: PEM } : {}),
        };
        const contradiction = (withSecret && sends !== 'secret') || (withKey && sends !== 'key');
        const missing = (sends === 'secret' && !withSecret) || (sends === 'key' && !withKey);
        let error: unknown;
        try {
          new Client({ tokenUrl, clientCredentialsAuthCredentials: credentials, ...(sends === 'nothing' && method !== 'none' ? { tls: { cert: 'unused', key: 'unused' } } : {}) });
        } catch (e) {
          error = e;
        }
        if (contradiction) {
          assert.ok(error instanceof InvalidOptionError, `${method} secret=${withSecret} key=${withKey}: ${String(error)}`);
          assert.match(error.message, new RegExp(method));
          assert.ok(!error.message.includes(SECRET));
        } else if (!missing) {
          assert.ok(!(error instanceof InvalidOptionError && /never sends|sends no|not sent/.test(error.message)), `${method}: ${String(error)}`);
        }
      }),
      { numRuns: 100 },
    );
    assert.equal(requests, before);
  });

  test('without clientAuthMethod, a secret and a key together are allowed (client_secret_basic; private_key_jwt when discovery shows basic is not offered)', async () => {
    const client = new Client({ tokenUrl, clientCredentialsAuthCredentials: { oAuthClientId: 'svc', oAuthClientSecret: SECRET, privateKey: PEM } });
    assert.equal((await client.clientCredentialsAuthManager.fetchToken()).accessToken, 'at');
    await client.close();
  });
});

describe('the CLI', () => {
  test('--auth-method none with --client-secret-file: exit 2 naming both flags, nothing sent, the secret not printed', async () => {
    const file = path.join(dir, 'secret');
    await writeFile(file, `${SECRET}\n`, { mode: 0o600 });
    const before = requests;
    const run = await runCli(['token', '--token-url', tokenUrl, '--client-id', 'svc', '--auth-method', 'none', '--client-secret-file', file, '--cache', 'off']);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /none \(--auth-method\)/);
    assert.match(run.stderr, /--client-secret-file/);
    assert.ok(!run.stderr.includes(SECRET) && !run.stdout.includes(SECRET));
    assert.equal(requests, before);
  });

  test('--auth-method none with the secret in $O_AUTH_CLIENT_SECRET: exit 2 naming the variable', async () => {
    const run = await runCli(['token', '--token-url', tokenUrl, '--client-id', 'svc', '--auth-method', 'none', '--cache', 'off'], { env: { O_AUTH_CLIENT_SECRET: SECRET } });
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /O_AUTH_CLIENT_SECRET/);
    assert.ok(!run.stderr.includes(SECRET));
  });

  test('authMethod none and clientSecretFile in a --config file: exit 2 naming both keys of the file', async () => {
    const file = path.join(dir, 'secret2');
    await writeFile(file, SECRET, { mode: 0o600 });
    const config = path.join(dir, 'config.json');
    await writeFile(config, JSON.stringify({ tokenUrl, clientId: 'svc', authMethod: 'none', clientSecretFile: file }), { mode: 0o600 });
    const run = await runCli(['token', '--config', config, '--cache', 'off']);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /"authMethod"/);
    assert.match(run.stderr, /"clientSecretFile"/);
    assert.ok(!run.stderr.includes(SECRET));
  });

  test('--auth-method tls_client_auth with --private-key-file: exit 2, the TLS key goes in --key', async () => {
    const keyFile = path.join(dir, 'key.pem');
    await writeFile(keyFile, PEM, { mode: 0o600 });
    const run = await runCli(['token', '--token-url', tokenUrl, '--client-id', 'svc', '--auth-method', 'tls_client_auth', '--private-key-file', keyFile, '--cert', keyFile, '--key', keyFile, '--cache', 'off']);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /--private-key-file/);
    assert.match(run.stderr, /--key/);
  });

  test('--auth-method none alone still works (a public client)', async () => {
    const run = await runCli(['token', '--token-url', tokenUrl, '--client-id', 'svc', '--auth-method', 'none', '--cache', 'off']);
    assert.equal(run.code, 0, run.stderr);
  });
});

describe('the broker config', () => {
  test('authMethod none with clientSecretFile: refused, naming the JSON path', () => {
    const config = {
      listen: '127.0.0.1:0',
      clients: { crm: { tokenUrl, clientId: 'svc', authMethod: 'none', clientSecretFile: '/run/secrets/crm' } },
      routes: [{ path: '/crm/', upstream: 'http://127.0.0.1:9/', client: 'crm' }],
    };
    assert.throws(() => parseBrokerConfig(config, {}), (error: unknown) => error instanceof InvalidOptionError && error.option === 'clients.crm.clientSecretFile' && /none/.test(error.message));
  });

  test('a secret and privateKeyFile with no authMethod: refused, naming authMethod (the docs promise private_key_jwt, the library would send the secret)', () => {
    const config = {
      listen: '127.0.0.1:0',
      clients: { crm: { tokenUrl, clientId: 'svc', clientSecretFile: '/run/secrets/crm', privateKeyFile: '/run/secrets/crm.pem' } },
      routes: [{ path: '/crm/', upstream: 'http://127.0.0.1:9/', client: 'crm' }],
    };
    assert.throws(() => parseBrokerConfig(config, {}), (error: unknown) => error instanceof InvalidOptionError && error.option === 'clients.crm.authMethod' && /private_key_jwt/.test(error.message));
    const chosen = { ...config, clients: { crm: { ...config.clients.crm, authMethod: 'private_key_jwt', clientSecretFile: undefined } } };
    assert.equal(parseBrokerConfig(JSON.parse(JSON.stringify(chosen)), {}).clients.get('crm')!.authMethod, 'private_key_jwt');
  });
});
