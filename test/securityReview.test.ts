/**
 * Security, second pass (issue 20), one test per finding, each against real servers on 127.0.0.1 (and a real
 * redis-server for store integrity): redaction before anything is published; every wire form of the secret and the
 * tokens; plain http through discovery; metadata without redirects; authenticated store entries for every client;
 * echoed `\/`-escaped tokens and deep results; the excerpt masked before it is cut; echoed client assertions; keyed CLI
 * cache names; redaction in one pass; bidi controls escaped; `*.localhost`; AggregateError; token-file ancestors.
 * (Finding 4, proxies, is in test/proxy.test.ts and test/cliDetails.test.ts.)
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac, generateKeyPairSync, randomBytes } from 'node:crypto';
import diagnosticsChannel from 'node:diagnostics_channel';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { Agent, interceptors } from 'undici';
import { createClient } from 'redis';
import {
  ApiError,
  Client,
  DIAGNOSTICS_CHANNEL_PREFIX,
  DiscoveryError,
  FileTokenStore,
  InvalidOptionError,
  MemoryTokenStore,
  OAuthProviderError,
  type ClientConfiguration,
  type OAuthToken,
} from '../src/index.js';
import { UnsafeTokenStoreFolderError } from '../src/errors.js';
import { Redactor, REDACTED } from '../src/redaction.js';
import { EntryAuth } from '../src/stores/entryAuth.js';
import { RedisTokenStore } from '../src/stores/redis.js';
import { tokenKey } from '../src/auth/tokenKey.js';
import { sendJson, startScripted, tokenScript, type Script, type ScriptedServer } from './helpers/scripted.js';
import { startRedis, type RedisHandle } from './helpers/redis.js';
import { testCertificates } from './helpers/certs.js';
import { wireForms } from './helpers/wireForms.js';

/** An Entra-ID-like secret: `~` (which URLSearchParams writes as %7E), `+`, `/`, `.`. */
const SECRET = 'Qx8~Entra.Secret~Value+With/Tilde_0123';
const CLIENT_ID = 'app-20';

const servers: ScriptedServer[] = [];
const clients: Client[] = [];
after(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(servers.map((s) => s.close()));
});

async function serve(script: Script): Promise<ScriptedServer> {
  const server = await startScripted(script);
  servers.push(server);
  return server;
}

function makeClient(config: ClientConfiguration): Client {
  const client = new Client({ retry: false, circuitBreaker: false, ...config });
  clients.push(client);
  return client;
}

/** Every text an error or a payload shows: inspect, JSON, message, stack, own fields, causes. */
function exposed(value: unknown): string {
  const parts = [inspect(value, { depth: 20, showHidden: true })];
  try {
    parts.push(JSON.stringify(value) ?? '');
  } catch {
    // circular: inspect covers it
  }
  for (let current = value, depth = 0; current instanceof Error && depth < 10; current = current.cause, depth++) {
    parts.push(current.message, current.stack ?? '');
    for (const key of Object.keys(current)) parts.push(inspect((current as unknown as Record<string, unknown>)[key], { depth: 20 }));
  }
  return parts.join('\n');
}

/** Asserts that none of the wire forms of `values` is in `text`. */
function assertNone(label: string, text: string, values: readonly string[]): void {
  for (const value of values) {
    for (const form of wireForms(value)) {
      assert.ok(!text.includes(form), `${label} shows ${JSON.stringify(form)}:\n${text.slice(0, 1500)}`);
    }
  }
}

/** A CLI run in-process with a scratch HOME (test/security.test.ts does the same). */
async function runCli(args: string[], env: Record<string, string>, options: { tty?: boolean; home?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const { run } = await import('../src/cli/run.js');
  const home = options.home ?? (await mkdtemp(join(tmpdir(), 'sec20-cli-')));
  let stdout = '';
  let stderr = '';
  try {
    const io = {
      stdout: { write: (t: string | Uint8Array) => (stdout += typeof t === 'string' ? t : Buffer.from(t).toString('utf8')), isTTY: options.tty ?? false },
      stderr: { write: (t: string) => (stderr += t), isTTY: options.tty ?? false },
      readStdin: async () => '',
      stdinIsTTY: true,
      env: { HOME: home, XDG_CACHE_HOME: home, NO_COLOR: '1', ...env },
      cwd: home,
    };
    const code = await run(args, io as never);
    return { code, stdout, stderr };
  } finally {
    if (!options.home) await rm(home, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }).catch(() => undefined);
  }
}

// Finding 1 ---------------------------------------------------------------------------------------------------------

test('1: events reach node:diagnostics_channel scrubbed, with or without client.on listeners; a token is learned before the store sees it', async () => {
  const auth = await serve(tokenScript());
  const api = await serve((_req, res) => sendJson(res, 200, { ok: true }));
  const published: { name: string; text: string }[] = [];
  const subscribers = (['callbackError', 'storeError'] as const).map((name) => {
    const listener = (message: unknown) => published.push({ name, text: exposed(message) });
    diagnosticsChannel.subscribe(DIAGNOSTICS_CHANNEL_PREFIX + name, listener);
    return () => diagnosticsChannel.unsubscribe(DIAGNOSTICS_CHANNEL_PREFIX + name, listener);
  });
  /** A store whose writes fail with an error quoting the value (as a serialiser or a driver may). */
  class QuotingStore extends MemoryTokenStore {
    override async set(_key: string, token: OAuthToken): Promise<void> {
      throw new Error(`cannot store ${JSON.stringify(token)}`);
    }
  }
  const seen: string[] = [];
  try {
    const client = makeClient({
      baseUrl: api.url,
      tokenUrl: `${auth.url}/token`,
      tokenStore: new QuotingStore(),
      clientCredentialsAuthCredentials: {
        oAuthClientId: CLIENT_ID,
        oAuthClientSecret: SECRET,
        // A callback that fails quoting the token: reported as callbackError.
        oAuthOnTokenUpdate: (token) => {
          throw new Error(`could not save ${token.accessToken} for ${SECRET}`);
        },
      },
    });
    // First without any client.on listener (the channel alone), then with one.
    await client.get('/a');
    client.clientCredentialsAuthManager.invalidate();
    const off = client.on('storeError', (event) => seen.push(exposed(event)));
    client.on('callbackError', (event) => seen.push(exposed(event)));
    await client.get('/b');
    off();
    assert.equal(auth.requests.length, 2);
    const tokens = [`tok-1-${'x'.repeat(24)}`, `tok-2-${'x'.repeat(24)}`];
    assert.ok(published.some((p) => p.name === 'storeError'), 'a storeError was published');
    assert.ok(published.some((p) => p.name === 'callbackError'), 'a callbackError was published');
    for (const { name, text } of published) assertNone(`diagnostics channel ${name}`, text, [SECRET, ...tokens]);
    for (const text of seen) assertNone('client.on', text, [SECRET, ...tokens]);
    assert.ok(published.some((p) => p.text.includes(REDACTED)), 'the payloads were scrubbed, not empty');
  } finally {
    for (const unsubscribe of subscribers) unsubscribe();
  }
});

// Finding 2 ---------------------------------------------------------------------------------------------------------

test('2: the secret as the library sends it (URLSearchParams: ~ as %7E) and in lower-case percent-encoding is redacted from every surface', async () => {
  const lower = (text: string) => text.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase());
  // The server echoes the raw form body, and its lower-cased percent-encoding, in error_description.
  const auth = await serve((_req, res, recorded) => sendJson(res, 401, { error: 'invalid_client', error_description: `got ${recorded.body} / ${lower(recorded.body)}` }));
  const events: string[] = [];
  const client = makeClient({ tokenUrl: `${auth.url}/token`, clientCredentialsAuthCredentials: { oAuthClientId: CLIENT_ID, oAuthClientSecret: SECRET, clientAuthMethod: 'client_secret_post' } });
  client.on('refreshFailed', (e) => events.push(exposed(e)));
  const error = await client.clientCredentialsAuthManager.getToken().then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof OAuthProviderError, String(error));
  assert.ok(auth.requests[0]!.body.includes('%7E'), 'the library sends ~ as %7E');
  assertNone('OAuthProviderError', exposed(error), [SECRET]);
  assertNone('errorDescription', String(error.errorDescription), [SECRET]);
  assert.match(String(error.errorDescription), /client_secret=\[redacted\]/);

  // The CLI's "server said".
  const cli = await runCli(['token', '--no-cache', '--auth-method', 'client_secret_post'], { CLIENT_CREDENTIALS_TOKEN_URL: `${auth.url}/token`, O_AUTH_CLIENT_ID: CLIENT_ID, CLIENT_CREDENTIALS_CLIENT_SECRET: SECRET });
  assert.notEqual(cli.code, 0);
  assertNone('CLI stderr', cli.stderr, [SECRET]);
});

// Finding 3 ---------------------------------------------------------------------------------------------------------

/** A metadata server for `issuer` = its own URL, serving `metadata(issuer)` at both well-known paths. */
async function metadataServer(metadata: (issuer: string) => Record<string, unknown>, token: Script = tokenScript()): Promise<ScriptedServer> {
  let self: ScriptedServer | undefined;
  const server = await serve((req, res, recorded) => {
    if (req.url?.startsWith('/.well-known/')) return sendJson(res, 200, metadata(self!.url));
    return token(req, res, recorded);
  });
  self = server;
  return server;
}

test('3: plain http off loopback is refused for issuer, a discovered token_endpoint and mtls_endpoint_aliases.token_endpoint; other schemes too', async () => {
  const credentials = { oAuthClientId: CLIENT_ID, oAuthClientSecret: SECRET };
  assert.throws(() => new Client({ issuer: 'http://as.example.test', clientCredentialsAuthCredentials: credentials }), (e: unknown) => e instanceof InvalidOptionError && e.option === 'issuer' && /allowInsecureHttp/.test(e.message));
  makeClient({ issuer: 'http://as.example.test', allowInsecureHttp: true, clientCredentialsAuthCredentials: credentials });

  const cases: { label: string; metadata: (issuer: string) => Record<string, unknown>; reason: string }[] = [
    { label: 'token_endpoint on http to another host', metadata: (issuer) => ({ issuer, token_endpoint: 'http://as.example.test/token' }), reason: 'insecure_endpoint' },
    { label: 'an ftp: mTLS alias', metadata: (issuer) => ({ issuer, token_endpoint: `${issuer}/token`, mtls_endpoint_aliases: { token_endpoint: 'ftp://as.example.test/token' } }), reason: 'invalid_metadata' },
    { label: 'an mTLS alias on http to another host', metadata: (issuer) => ({ issuer, token_endpoint: `${issuer}/token`, mtls_endpoint_aliases: { token_endpoint: 'http://mtls.example.test/token' } }), reason: 'insecure_endpoint' },
  ];
  for (const { label, metadata, reason } of cases) {
    const server = await metadataServer(metadata);
    const client = makeClient({ issuer: server.url, clientCredentialsAuthCredentials: credentials });
    await assert.rejects(client.clientCredentialsAuthManager.getToken(), (e: unknown) => {
      assert.ok(e instanceof DiscoveryError, `${label}: ${String(e)}`);
      assert.equal(e.reason, reason, label);
      return true;
    });
    assert.ok(!server.requests.some((r) => r.method === 'POST'), `${label}: no token request`);
  }
  // A loopback token endpoint on plain http is fine (it does not leave the machine).
  const fine = await metadataServer((issuer) => ({ issuer, token_endpoint: `${issuer}/token` }));
  const ok = makeClient({ issuer: fine.url, clientCredentialsAuthCredentials: credentials });
  assert.match((await ok.clientCredentialsAuthManager.getToken()).accessToken, /^tok-1-/);
});

// Finding 5 ---------------------------------------------------------------------------------------------------------

describe('5: every client authenticates its store entries (real redis-server)', () => {
  let redis: RedisHandle;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await redis.close();
  });

  test('none and tls_client_auth clients: a forged Redis entry is not used; without a key a shared store is refused before any I/O', async (t) => {
    const c = createClient({ url: redis.url });
    c.on('error', () => undefined);
    await c.connect();
    t.after(() => c.destroy());
    const auth = await serve(tokenScript());
    const api = await serve((_req, res) => sendJson(res, 200, { ok: true }));
    const certs = testCertificates();
    const variants: { label: string; config: Partial<ClientConfiguration> }[] = [
      { label: 'tls_client_auth (key from tls.key)', config: { tls: { cert: certs.clientCert, key: certs.clientKey }, clientCredentialsAuthCredentials: { oAuthClientId: 'mtls-20', clientAuthMethod: 'tls_client_auth' } } },
      { label: 'none + tokenStoreKey', config: { tokenStoreKey: 'a-fleet-wide-random-key-0123456789', clientCredentialsAuthCredentials: { oAuthClientId: 'public-20', clientAuthMethod: 'none' } } },
    ];
    for (const [i, { label, config }] of variants.entries()) {
      const prefix = `forge${i}-${Date.now()}:`;
      const store = new RedisTokenStore({ client: c, prefix });
      t.after(() => store.close());
      const first = makeClient({ baseUrl: api.url, tokenUrl: `${auth.url}/token`, tokenStore: store, ...config });
      await first.get('/x');
      const [key] = await c.keys(`${prefix}{*}`);
      assert.ok(key, `${label}: the entry was written`);
      const raw = JSON.parse((await c.get(key))!) as Record<string, unknown>;
      assert.match(String(raw.mac), /^v1\./, `${label}: the entry carries a MAC`);
      // Anyone who can write to Redis plants a token of their choosing, with and without the MAC field.
      for (const forged of [{ ...raw, accessToken: 'forged-token-20' }, { ...raw, accessToken: 'forged-token-20', mac: undefined }]) {
        await c.set(key, JSON.stringify(forged), { PX: 600_000 });
        const fresh = makeClient({ baseUrl: api.url, tokenUrl: `${auth.url}/token`, tokenStore: store, ...config });
        const seen = api.requests.length;
        await fresh.get('/y');
        assert.ok(!api.requests.slice(seen).some((r) => r.headers.authorization === 'Bearer forged-token-20'), `${label}: the forged token reached the API`);
      }
    }

    // No key material: refused at construction, naming tokenStoreKey; nothing sent, nothing read.
    const before = auth.requests.length;
    const commands = Number((await c.info('stats')).match(/total_commands_processed:(\d+)/)![1]);
    const store = new RedisTokenStore({ client: c, prefix: 'refused:' });
    t.after(() => store.close());
    for (const credentials of [{ oAuthClientId: 'public-20', clientAuthMethod: 'none' as const }, { oAuthClientId: 'mtls-20', clientAuthMethod: 'tls_client_auth' as const }]) {
      assert.throws(() => new Client({ tokenUrl: `${auth.url}/token`, tokenStore: store, clientCredentialsAuthCredentials: credentials }), (e: unknown) => e instanceof InvalidOptionError && e.option === 'tokenStoreKey');
    }
    assert.throws(() => new Client({ tokenStore: store, tokenStoreKey: 'short' }), (e: unknown) => e instanceof InvalidOptionError && e.option === 'tokenStoreKey' && !e.message.includes('short'));
    assert.equal(auth.requests.length, before);
    // (INFO itself counts as one command.)
    assert.ok(Number((await c.info('stats')).match(/total_commands_processed:(\d+)/)![1]) <= commands + 1, 'no Redis command');
    // The in-process MemoryTokenStore is not shared: no key needed.
    makeClient({ tokenUrl: `${auth.url}/token`, tokenStore: new MemoryTokenStore(), clientCredentialsAuthCredentials: { oAuthClientId: 'public-20', clientAuthMethod: 'none' } });
  });

  test('10 (store MAC): a secret client\'s MAC key is stretched (scrypt), not a fast hash of the secret a store reader could test guesses against', async (t) => {
    const c = createClient({ url: redis.url });
    c.on('error', () => undefined);
    await c.connect();
    t.after(() => c.destroy());
    const auth = await serve(tokenScript());
    const prefix = `slow-${Date.now()}:`;
    const store = new RedisTokenStore({ client: c, prefix });
    t.after(() => store.close());
    const client = makeClient({ tokenUrl: `${auth.url}/token`, tokenStore: store, clientCredentialsAuthCredentials: { oAuthClientId: CLIENT_ID, oAuthClientSecret: 'Winter2025!' } });
    await client.clientCredentialsAuthManager.getToken();
    const [key] = await c.keys(`${prefix}{*}`);
    const entry = JSON.parse((await c.get(key!))!) as OAuthToken;
    const hash = key!.slice(prefix.length).replace(/^\{|\}.*$/g, '');
    // The derivation the first pass used (HKDF of the raw secret) no longer verifies: a guess costs a scrypt.
    assert.equal((await new EntryAuth(Buffer.from('Winter2025!')).verify(hash, entry)).ok, false);
    assert.equal((await EntryAuth.fromCredentials({ clientId: CLIENT_ID, clientSecret: 'Winter2025!' })!.verify(hash, entry)).ok, true);
  });
});

// Finding 6 ---------------------------------------------------------------------------------------------------------

test('6: metadata requests never follow a redirect, even through a dispatcher composed with interceptors.redirect', async () => {
  let issuer = '';
  const evil = await serve((req, res) => {
    if (req.url?.startsWith('/.well-known/')) return sendJson(res, 200, { issuer, token_endpoint: `${evilUrl()}/token` });
    return sendJson(res, 200, { access_token: 'evil-token-0123456789', token_type: 'Bearer', expires_in: 3600 });
  });
  const evilUrl = () => evil.url;
  const real = await serve((req, res) => {
    res.writeHead(302, { location: `${evil.url}${req.url}` });
    res.end();
  });
  issuer = real.url;
  const dispatcher = new Agent().compose(interceptors.redirect({ maxRedirections: 3 }));
  try {
    const client = makeClient({ issuer, dispatcher, clientCredentialsAuthCredentials: { oAuthClientId: CLIENT_ID, oAuthClientSecret: SECRET } });
    await assert.rejects(client.clientCredentialsAuthManager.getToken(), (e: unknown) => e instanceof DiscoveryError);
    assert.ok(real.requests.length >= 1);
    assert.equal(evil.requests.length, 0, 'the redirect was followed: another origin supplied the metadata');
  } finally {
    await dispatcher.close();
  }
});

// Finding 7 ---------------------------------------------------------------------------------------------------------

test('7: a token echoed with \\/ escaping (PHP) is scrubbed from ApiError.body and CLI `call`; a result nested 12 deep is scrubbed', async () => {
  const token = 'abc/def+ghi/jkl-0123456789';
  const auth = await serve((_req, res) => sendJson(res, 200, { access_token: token, token_type: 'Bearer', expires_in: 3600 }));
  let nested: unknown = { leaked: '' };
  const api = await serve((req, res) => {
    const bearer = String(req.headers.authorization).slice('Bearer '.length);
    nested = { leaked: bearer };
    for (let i = 0; i < 12; i++) nested = { deeper: nested };
    const body = `{"echo":"${bearer.replaceAll('/', '\\/')}","nested":${JSON.stringify(nested)}}`;
    res.writeHead(req.url === '/ok' ? 200 : 403, { 'content-type': 'application/json' });
    res.end(body);
  });
  const client = makeClient({ baseUrl: api.url, tokenUrl: `${auth.url}/token`, clientCredentialsAuthCredentials: { oAuthClientId: CLIENT_ID, oAuthClientSecret: SECRET } });
  const error = await client.get('/forbidden').then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof ApiError, String(error));
  assertNone('ApiError', `${exposed(error)}\n${error.body}\n${JSON.stringify(error.result)}`, [token]);
  assert.ok(error.body.includes(REDACTED));

  const cli = await runCli(['call', 'GET', `${api.url}/ok`], { CLIENT_CREDENTIALS_TOKEN_URL: `${auth.url}/token`, O_AUTH_CLIENT_ID: CLIENT_ID, CLIENT_CREDENTIALS_CLIENT_SECRET: SECRET });
  assert.equal(cli.code, 0, cli.stderr);
  assertNone('CLI call', cli.stdout + cli.stderr, [token]);
});

// Finding 8 ---------------------------------------------------------------------------------------------------------

test('8: a secret straddling the excerpt cut is masked whole (masked first, then cut)', async () => {
  for (const pad of [620, 630, 635, 639]) {
    const auth = await serve((_req, res) => {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`${' '.repeat(pad)}${SECRET} trailing words`);
    });
    const client = makeClient({ tokenUrl: `${auth.url}/token`, clientCredentialsAuthCredentials: { oAuthClientId: CLIENT_ID, oAuthClientSecret: SECRET } });
    const error = await client.clientCredentialsAuthManager.getToken().then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof ApiError, String(error));
    assert.ok(!exposed(error).includes(SECRET.slice(0, 10)), `pad ${pad}: part of the secret survived:\n${error.message}`);
  }
});

// Finding 9 ---------------------------------------------------------------------------------------------------------

test('9: a client_assertion echoed by the server (private_key_jwt) is redacted from the error, its JSON and events', async () => {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  let assertion = '';
  const auth = await serve((_req, res, recorded) => {
    assertion = new URLSearchParams(recorded.body).get('client_assertion') ?? '';
    sendJson(res, 401, { error: 'invalid_client', error_description: `bad assertion ${assertion}`, echo: recorded.body });
  });
  const events: string[] = [];
  const client = makeClient({ tokenUrl: `${auth.url}/token`, clientCredentialsAuthCredentials: { oAuthClientId: CLIENT_ID, privateKey: pem, clientAuthMethod: 'private_key_jwt' } });
  client.on('requestRetried', (e) => events.push(exposed(e)));
  const error = await client.clientCredentialsAuthManager.getToken().then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof OAuthProviderError, String(error));
  assert.ok(assertion.split('.').length === 3, 'an assertion was sent');
  assertNone('OAuthProviderError', exposed(error) + events.join('\n'), [assertion]);
  assert.ok(!exposed(error).includes(assertion.split('.')[2]!), 'the signature is not shown');
});

// Finding 10 --------------------------------------------------------------------------------------------------------

test('10: CLI cache entry names are an HMAC under a random per-user key (0600), not a SHA-256 of public values and the secret', async () => {
  const auth = await serve(tokenScript());
  const home = await mkdtemp(join(tmpdir(), 'sec20-cache-'));
  try {
    const secret = 'Winter2025!';
    const env = { CLIENT_CREDENTIALS_TOKEN_URL: `${auth.url}/token`, O_AUTH_CLIENT_ID: CLIENT_ID, CLIENT_CREDENTIALS_CLIENT_SECRET: secret };
    const first = await runCli(['token'], env, { home });
    assert.equal(first.code, 0, first.stderr);
    const second = await runCli(['token'], env, { home });
    assert.equal(second.stdout, first.stdout, 'the second run reused the cached token');
    assert.equal(auth.requests.length, 1);
    const cacheFile = join(home, 'client-credentials', 'tokens.json');
    const names = Object.keys((JSON.parse(await readFile(cacheFile, 'utf8')) as { entries: Record<string, unknown> }).entries).filter((n) => n.startsWith('cli.'));
    assert.equal(names.length, 1, names.join(', '));
    const hash = tokenKey(`${auth.url}/token`, CLIENT_ID, { scopes: [], resource: [], audience: undefined, extra: {} }).hash;
    // The reader of the file who guesses the secret cannot confirm it from the name alone.
    const unsalted = `cli.${createHash('sha256').update(`${hash}\n${secret}`).digest('base64url')}`;
    assert.notEqual(names[0], unsalted, 'the entry name is an unsalted hash of the secret');
    const keyFile = `${cacheFile}.key`;
    const key = await readFile(keyFile);
    assert.equal(key.length, 32);
    assert.equal((await stat(keyFile)).mode & 0o777, 0o600);
    assert.equal(names[0], `cli.${createHmac('sha256', key).update(`${hash}\n${secret}`).digest('base64url')}`);
  } finally {
    await rm(home, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }).catch(() => undefined);
  }
});

// Finding 11 --------------------------------------------------------------------------------------------------------

test('11: redacting an 8 MB body costs about the same with 256 remembered tokens as with 1 (one pass)', () => {
  const chunk = `{"id":12345,"name":"${'n'.repeat(40)}","token_like":"eyJhbGciOiJSUzI1NiJ9.${'A'.repeat(60)}","url":"https:\\/\\/api.example\\/x"},`;
  const body = chunk.repeat(Math.ceil(8_300_000 / chunk.length));
  const timeWith = (tokens: number): number => {
    const redactor = new Redactor();
    redactor.add(SECRET);
    // JWT-shaped tokens as an issuer mints them: one header for all, then claims and a signature of their own.
    for (let i = 0; i < tokens; i++) redactor.addToken(`eyJhbGciOiJSUzI1NiJ9.${randomBytes(60).toString('base64url')}.${randomBytes(64).toString('base64url')}`);
    redactor.redact('warm up');
    let best = Infinity;
    for (let run = 0; run < 3; run++) {
      const started = performance.now();
      const out = redactor.redact(body);
      best = Math.min(best, performance.now() - started);
      assert.equal(out.length, body.length);
    }
    return best;
  };
  const one = timeWith(1);
  const many = timeWith(256);
  // The first pass took 14 times longer with 256 tokens; one pass stays within noise (wide margin for a busy machine).
  assert.ok(many < one * 4 + 600, // the old per-value scan took 1.5–2 s here
    `1 token: ${one.toFixed(0)} ms, 256 tokens: ${many.toFixed(0)} ms`);
});

// Finding 12 --------------------------------------------------------------------------------------------------------

test('12: CLI escapes bidi controls (U+202E, U+2066–U+2069) in what the server said', async () => {
  const BIDI = '\u202e\u2066\u2067\u2068\u2069\u200f';
  const auth = await serve((_req, res) => sendJson(res, 400, { error: 'invalid_client', error_description: `secret ok${BIDI}txt.exe` }));
  const cli = await runCli(['token', '--no-cache'], { CLIENT_CREDENTIALS_TOKEN_URL: `${auth.url}/token`, O_AUTH_CLIENT_ID: CLIENT_ID, CLIENT_CREDENTIALS_CLIENT_SECRET: SECRET }, { tty: true });
  assert.notEqual(cli.code, 0);
  assert.ok(!/[\u202a-\u202e\u2066-\u2069\u200e\u200f]/.test(cli.stderr), JSON.stringify(cli.stderr));
  assert.ok(cli.stderr.includes('\\u202e'), cli.stderr);
  const { safeJson } = await import('../src/cli/terminal.js');
  assert.equal(safeJson({ v: '\u202e' }), '{"v":"\\u202e"}');
});

// Also checked --------------------------------------------------------------------------------------------------------

test('also: *.localhost names are not loopback (DNS may answer with any address): plain http to them is refused', () => {
  for (const url of ['http://auth.localhost/token', 'http://a.b.localhost:8080/token']) {
    assert.throws(() => new Client({ tokenUrl: url, clientCredentialsAuthCredentials: { oAuthClientId: CLIENT_ID, oAuthClientSecret: SECRET } }), (e: unknown) => e instanceof InvalidOptionError && e.option === 'tokenUrl', url);
  }
  makeClient({ tokenUrl: 'http://localhost:1/token', clientCredentialsAuthCredentials: { oAuthClientId: CLIENT_ID, oAuthClientSecret: SECRET } });
});

test('also: AggregateError.errors are scrubbed (a provider failing with several causes)', async () => {
  const api = await serve((_req, res) => sendJson(res, 200, { ok: true }));
  const client = makeClient({
    baseUrl: api.url,
    clientCredentialsAuthCredentials: {
      oAuthClientId: CLIENT_ID,
      oAuthClientSecret: SECRET,
      oAuthTokenProvider: async () => {
        throw new AggregateError([new Error(`vault A refused ${SECRET}`), new Error('vault B down')], 'no vault answered');
      },
    },
  });
  const error = await client.get('/x').then(() => undefined, (e: unknown) => e);
  assert.ok(error instanceof Error, String(error));
  const text = exposed(error);
  assert.ok(text.includes('vault A refused [redacted]'), text);
  assertNone('AggregateError', text, [SECRET]);
});

test('also: FileTokenStore checks every folder above the token file (a world-writable ancestor without the sticky bit is refused)', async () => {
  const root = await mkdtemp(join(tmpdir(), 'sec20-chain-'));
  try {
    const open = join(root, 'open');
    await mkdir(join(open, 'cache'), { recursive: true, mode: 0o700 });
    await chmod(open, 0o777);
    assert.throws(() => new FileTokenStore({ path: join(open, 'cache', 'tokens.json') }), (e: unknown) => e instanceof UnsafeTokenStoreFolderError && e.reason === 'mode' && e.folder === open);
    // With the sticky bit (as /tmp), others cannot rename our folder: accepted.
    await chmod(open, 0o1777);
    const store = new FileTokenStore({ path: join(open, 'cache', 'tokens.json') });
    await store.set('k', { accessToken: 'abcdefgh', tokenType: 'Bearer', expiry: Math.floor(Date.now() / 1000) + 600 }, 600_000);
    // An ancestor owned by another user (not root) is refused.
    const foreign = join(root, 'foreign');
    await mkdir(join(foreign, 'cache'), { recursive: true, mode: 0o700 });
    const chowned = await chown(foreign, 65534, 65534).then(() => true, () => false);
    if (chowned) {
      assert.throws(() => new FileTokenStore({ path: join(foreign, 'cache', 'tokens.json') }), (e: unknown) => e instanceof UnsafeTokenStoreFolderError && e.reason === 'owner' && e.folder === foreign);
    }
    // A folder created later (first use) is checked up the chain too.
    await chmod(open, 0o777);
    const later = new FileTokenStore({ path: join(open, 'new', 'tokens.json') });
    await assert.rejects(later.get('k'), UnsafeTokenStoreFolderError);
  } finally {
    await rm(root, { recursive: true, force: true }).catch(() => undefined);
  }
});
