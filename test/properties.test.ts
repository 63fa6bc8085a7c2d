/**
 * Property-based security tests (fast-check, fixed seeds, each bounded to a few seconds): hostile token responses
 * through a real local token server, hostile values planted in real token stores, hostile caller input. Properties:
 * the outcome is a usable token (or response) or a typed ClientCredentialsError; an unusable token is never cached
 * or stored; neither the client secret nor an access token appears in any error (message, stack, toJSON, cause
 * chain) or event payload; servers that echo the secret, tokens and client assertions in every wire encoding reach
 * no error, event, diagnostics channel or CLI output.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import diagnosticsChannel from 'node:diagnostics_channel';
import { inspect } from 'node:util';
import fc from 'fast-check';
import { Client, ClientCredentialsError, DIAGNOSTICS_CHANNEL_PREFIX, FileTokenStore, MemoryTokenStore, type ClientEventName, type OAuthToken } from '../src/index.js';
import { basicCredentials, formEncode } from '../src/redaction.js';
import { tokenFieldsProblem } from '../src/tokenValidation.js';
import { sendJson, startScripted, type ScriptedServer } from './helpers/scripted.js';
import { basicForms, wireForms } from './helpers/wireForms.js';

const SECRET = 'Prop+Secret/9d2c"71:ab';
const CLIENT_ID = 'prop';
const SECRET_FORMS = [SECRET, formEncode(SECRET), encodeURIComponent(SECRET), JSON.stringify(SECRET).slice(1, -1), basicCredentials(CLIENT_ID, SECRET)];
const EVENTS: ClientEventName[] = ['tokenFetched', 'tokenRefreshed', 'refreshFailed', 'tokenInvalidated', 'requestRetried', 'unauthorizedRetried', 'circuitOpen', 'circuitClosed', 'tokenWait', 'callbackError', 'storeError'];
/** Each property runs at most this long (then passes with the runs done so far). */
const TIME_LIMIT_MS = 4_000;

/** What the hostile token server sends next. */
let next: { status: number; headers: Record<string, string>; body: Uint8Array } = { status: 200, headers: {}, body: new Uint8Array() };
let tokenServer: ScriptedServer;
let api: ScriptedServer;
let work: string;

before(async () => {
  tokenServer = await startScripted((_req, res) => {
    try {
      res.writeHead(next.status, next.headers);
    } catch {
      res.writeHead(next.status);
    }
    res.end(next.body);
  });
  api = await startScripted((req, res) => sendJson(res, 200, { ok: true, auth: req.headers.authorization ?? null }));
  work = await mkdtemp(join(tmpdir(), 'props-'));
});
after(async () => {
  await tokenServer.close();
  await api.close();
  // A FileTokenStore may still be finishing a write of a closed Client's: retry the removal.
  await rm(work, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }).catch(() => undefined);
});

/** Everything an error or a payload exposes, as text. */
function exposed(value: unknown): string {
  const parts = [inspect(value, { depth: 12 })];
  let current: unknown = value;
  for (let i = 0; i < 8 && current instanceof Error; i++) {
    parts.push(current.message, current.stack ?? '');
    const toJSON = (current as { toJSON?: () => unknown }).toJSON;
    if (typeof toJSON === 'function') parts.push(JSON.stringify(toJSON.call(current)));
    current = current.cause;
  }
  return parts.join('\n');
}

function assertNoCredential(label: string, value: unknown, tokens: Iterable<string>): void {
  const text = exposed(value);
  for (const form of SECRET_FORMS) assert.ok(!text.includes(form), `${label} exposes the secret:\n${text.slice(0, 1500)}`);
  for (const token of tokens) if (token.length >= 8) assert.ok(!text.includes(token), `${label} exposes an access token:\n${text.slice(0, 1500)}`);
}

/** A Client on the hostile token server recording its events and the tokens it held. */
function observedClient(extra: Partial<ConstructorParameters<typeof Client>[0]> = {}) {
  const held = new Set<string>();
  const events: { name: string; event: unknown }[] = [];
  const client = new Client({
    baseUrl: api.url,
    tokenUrl: `${tokenServer.url}/token`,
    retry: false,
    circuitBreaker: false,
    tokenRequestTimeout: 5_000,
    ...extra,
    clientCredentialsAuthCredentials: {
      oAuthClientId: CLIENT_ID,
      oAuthClientSecret: SECRET,
      oAuthOnTokenUpdate: (token: OAuthToken) => held.add(token.accessToken),
    },
  });
  for (const name of EVENTS) client.on(name, (event) => events.push({ name, event }));
  return { client, held, events };
}

/** Strings an attacker likes: control characters, non-Latin-1, broken UTF-8 stand-ins, and the secret's forms. */
const hostileString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ maxLength: 40 }),
  fc.constantFrom(...SECRET_FORMS, 'a\r\nb', 'tok\u0000en', '\u001b[2J', '\ufffd\ufffd', 'Bearer', 'bearer', 'abc.def.ghi', '', ' ', 'é'),
  fc.stringMatching(/^[A-Za-z0-9\-._~+/]{1,30}=*$/),
);

const hostileValue = fc.oneof(hostileString, fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 2 }));

const hostileTokenObject = fc.record(
  {
    access_token: hostileValue,
    token_type: hostileValue,
    expires_in: fc.oneof(fc.integer({ min: -10, max: 1e9 }), fc.double(), fc.constantFrom('3600', '1e3', 'NaN', '-1', 0.001, 1e308), hostileString),
    scope: hostileValue,
    refresh_token: hostileValue,
    error: hostileValue,
    error_description: hostileString,
  },
  { requiredKeys: [] },
);

const hostileResponse = fc.record({
  status: fc.oneof(fc.constant(200), fc.constantFrom(201, 204, 301, 302, 303, 307, 308, 400, 401, 403, 404, 429, 500, 502, 503), fc.integer({ min: 200, max: 599 })),
  headers: fc.record(
    {
      'content-type': fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/html', 'application/x-www-form-urlencoded', 'text/plain\u0001'),
      location: fc.constantFrom('http://127.0.0.1:1/evil', '/elsewhere', 'not a url', `http://u:${SECRET}@127.0.0.1:2/`),
      'retry-after': fc.constantFrom('0', '1', 'soon'),
      'www-authenticate': hostileString,
    },
    { requiredKeys: [] },
  ),
  body: fc.oneof(
    hostileTokenObject.map((o) => new TextEncoder().encode(JSON.stringify(o))),
    fc.uint8Array({ maxLength: 200 }),
    hostileTokenObject.map((o) => {
      // valid JSON with a raw byte sequence spliced in (broken UTF-8)
      const text = JSON.stringify(o);
      const bytes = new TextEncoder().encode(text);
      const out = new Uint8Array(bytes.length + 2);
      out.set(bytes.subarray(0, Math.floor(bytes.length / 2)));
      out.set([0xc3, 0x28], Math.floor(bytes.length / 2));
      out.set(bytes.subarray(Math.floor(bytes.length / 2)), Math.floor(bytes.length / 2) + 2);
      return out;
    }),
  ),
});

test('hostile token responses: a usable token or a typed error; nothing unusable cached or stored; no credential leaks', async () => {
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(hostileResponse, async (response) => {
      runs++;
      next = response;
      const store = new MemoryTokenStore();
      const { client, held, events } = observedClient({ tokenStore: store });
      try {
        let token: OAuthToken | undefined;
        let failure: unknown;
        try {
          token = await client.clientCredentialsAuthManager.getToken();
        } catch (error) {
          failure = error;
        }
        if (token) {
          assert.equal(tokenFieldsProblem(token), undefined, 'an unusable token was handed out');
          const res = await client.get('/check');
          assert.equal(res.statusCode, 200);
        } else {
          assert.ok(failure instanceof ClientCredentialsError, `untyped failure: ${inspect(failure)}`);
          assert.equal(store.size, 0, 'a failed token response left something in the store');
          const before = tokenServer.requests.length;
          await client.clientCredentialsAuthManager.getToken().catch(() => undefined);
          // One request; two when the server refused the client (401/403) and the raw Basic form was tried too.
          const sent = tokenServer.requests.length - before;
          assert.ok(sent === 1 || (sent === 2 && (response.status === 401 || response.status === 403 || response.status < 300)), `a failed token response was cached (${sent} requests)`);
          assertNoCredential('failure', failure, held);
        }
        for (const { name, event } of events) assertNoCredential(`event ${name}`, event, held);
      } finally {
        await client.close();
      }
    }),
    // A failed response makes the second call of a run wait for the per-key pace (about 1 s): a longer budget.
    { seed: 1010, numRuns: 300, interruptAfterTimeLimit: 4 * TIME_LIMIT_MS },
  );
  assert.ok(runs >= 10, `only ${runs} runs`);
});

const hostileStored = fc.record(
  {
    accessToken: hostileValue,
    tokenType: hostileValue,
    expiry: fc.oneof(fc.integer({ min: 0, max: 4e9 }), fc.double(), fc.constantFrom(9e15, -1, '9999999999'), hostileValue),
    expiresIn: fc.oneof(fc.integer({ min: -10, max: 1e6 }), hostileValue),
    scope: hostileValue,
    refreshIn: hostileValue,
  },
  { requiredKeys: [] },
);

/** A MemoryTokenStore that remembers the key the Client writes under, so a test can plant values there. */
class KeyedMemoryStore extends MemoryTokenStore {
  lastKey: string | undefined;
  override async set(key: string, token: OAuthToken, ttlMs: number): Promise<void> {
    this.lastKey = key;
    return super.set(key, token, ttlMs);
  }
}

async function plantedKey(): Promise<string> {
  next = { status: 200, headers: { 'content-type': 'application/json' }, body: new TextEncoder().encode(JSON.stringify({ access_token: 'seed-token-abcdefgh', token_type: 'Bearer', expires_in: 3600 })) };
  const store = new KeyedMemoryStore();
  const { client } = observedClient({ tokenStore: store });
  await client.clientCredentialsAuthManager.getToken();
  await client.close();
  return store.lastKey!;
}

test('hostile values in a real MemoryTokenStore and FileTokenStore: never used unless usable; typed errors only', async () => {
  const key = await plantedKey();
  next = { status: 200, headers: { 'content-type': 'application/json' }, body: new TextEncoder().encode(JSON.stringify({ access_token: 'fresh-token-abcdefgh', token_type: 'Bearer', expires_in: 3600 })) };
  const filePath = join(work, 'tokens.json');
  let fileTemplate: Record<string, unknown> | undefined;
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(hostileStored, fc.boolean(), async (planted, useFile) => {
      runs++;
      let store: MemoryTokenStore | FileTokenStore;
      if (useFile) {
        if (!fileTemplate) {
          const seeding = new FileTokenStore({ path: filePath });
          const { client } = observedClient({ tokenStore: seeding });
          await client.clientCredentialsAuthManager.getToken();
          await client.close();
          fileTemplate = JSON.parse(await readFile(filePath, 'utf8')) as Record<string, unknown>;
        }
        // Replace the stored entry's token by the hostile value, keeping the file's own envelope.
        const text = JSON.stringify(fileTemplate);
        const hostileJson = JSON.stringify(planted);
        await writeFile(filePath, text.replace(/\{"accessToken":"fresh-token-abcdefgh"[^{}]*\}/, hostileJson));
        store = new FileTokenStore({ path: filePath });
      } else {
        store = new MemoryTokenStore();
        await store.set(key, planted as never, 60_000);
      }
      const { client, held, events } = observedClient({ tokenStore: store });
      try {
        let token: OAuthToken | undefined;
        try {
          token = await client.clientCredentialsAuthManager.getToken();
        } catch (error) {
          assert.ok(error instanceof ClientCredentialsError, `untyped failure: ${inspect(error)}`);
          assertNoCredential('failure', error, held);
        }
        if (token) {
          assert.equal(tokenFieldsProblem(token), undefined, 'an unusable stored token was handed out');
          if (tokenFieldsProblem(planted as { accessToken?: unknown }) !== undefined) assert.notEqual(token.accessToken, (planted as { accessToken?: unknown }).accessToken);
          assert.equal((await client.get('/check')).statusCode, 200);
        }
        for (const { name, event } of events) assertNoCredential(`event ${name}`, event, held);
      } finally {
        await client.close();
      }
    }),
    { seed: 1011, numRuns: 200, interruptAfterTimeLimit: TIME_LIMIT_MS },
  );
  assert.ok(runs >= 10, `only ${runs} runs`);
});

const hostileOptions = fc.record(
  {
    method: fc.oneof(fc.constantFrom('GET', 'post', 'PATCH', 'G ET', 'GET\r\n', '', 'DELETE'), hostileValue),
    path: fc.oneof(
      fc.constantFrom('/ok', 'ok', '', '/a b', '//x', '/\r\n', 'http://127.0.0.1:1/x', `http://u:${SECRET}@[::1`, `https://u:${encodeURIComponent(SECRET)}@bad host/`),
      hostileString,
      hostileValue,
    ),
    headers: fc.oneof(fc.dictionary(hostileString, hostileString, { maxKeys: 3 }), hostileValue),
    query: fc.oneof(fc.dictionary(fc.string({ maxLength: 5 }), fc.oneof(hostileString, fc.integer()), { maxKeys: 2 }), hostileValue),
    signal: fc.oneof(fc.constant(undefined), hostileValue),
    timeout: fc.oneof(fc.constant(undefined), fc.integer({ min: -5, max: 10_000 }), hostileValue),
    auth: fc.oneof(fc.constant(undefined), fc.boolean(), hostileValue),
    body: fc.oneof(fc.constant(undefined), hostileString, hostileValue),
  },
  { requiredKeys: [] },
);

test('hostile caller input: a response or a typed error, caller mistakes before any I/O, no credential in any error', async () => {
  next = { status: 200, headers: { 'content-type': 'application/json' }, body: new TextEncoder().encode(JSON.stringify({ access_token: 'caller-token-abcdefgh', token_type: 'Bearer', expires_in: 3600 })) };
  const { client, held, events } = observedClient({ circuitBreaker: { failureThreshold: 1, cooldown: 60_000 } });
  let runs = 0;
  try {
    await fc.assert(
      fc.asyncProperty(hostileOptions, async (options) => {
        runs++;
        const apiBefore = api.requests.length;
        const tokenBefore = tokenServer.requests.length;
        try {
          const res = await client.request(options as Parameters<Client["request"]>[0]);
          assert.equal(typeof res.statusCode, 'number');
        } catch (error) {
          assert.ok(error instanceof ClientCredentialsError, `untyped failure for ${inspect(options)}: ${inspect(error)}`);
          if (error.code === 'ERR_INVALID_OPTION') {
            assert.equal(api.requests.length, apiBefore, 'a caller mistake reached the API');
            assert.equal(tokenServer.requests.length, tokenBefore, 'a caller mistake reached the token endpoint');
          }
          assertNoCredential('failure', error, held);
        }
        assert.equal(client.stats().circuitOpen, false, 'caller mistakes opened the circuit');
      }),
      { seed: 1012, numRuns: 400, interruptAfterTimeLimit: TIME_LIMIT_MS },
    );
  } finally {
    await client.close();
  }
  for (const { name, event } of events) assertNoCredential(`event ${name}`, event, held);
  assert.ok(runs >= 10, `only ${runs} runs`);
});

// Issue 20: servers that echo the secret and the tokens, in every encoding ----------------------------------------------

/** Secrets with the characters every encoding changes (`~` is `%7E` only in URLSearchParams), 8 or more long. */
const echoSecret = fc
  .string({ unit: fc.constantFrom(...'aZ09~+/ %"\\:=&?#.-_!*\'()éあ'.split('')), minLength: 8, maxLength: 24 })
  .filter((s) => s.trim() === s && !s.includes('redacted'));
/** RFC 6750 b64tokens of 8 characters or more (shorter ones are redacted only as whole values). */
const echoToken = fc.stringMatching(/^[A-Za-z0-9\-._~+/]{8,40}=*$/);
/** How the server repeats what it got: which encodings of which values, in which kind of body. */
const echoPlan = fc.record({
  method: fc.constantFrom('client_secret_basic', 'client_secret_post', 'client_secret_jwt'),
  encodings: fc.subarray([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], { minLength: 1 }),
  where: fc.constantFrom('token-endpoint-json', 'token-endpoint-text', 'api-403', 'api-200-json'),
});

/** One echo server for the token endpoint and the API, answering as the current plan says. */
let echo: { secret: string; token: string; encodings: number[]; where: string } = { secret: '', token: '', encodings: [], where: '' };
let echoServer: ScriptedServer;
before(async () => {
  echoServer = await startScripted((req, res, recorded) => {
    const values = req.url?.startsWith('/token')
      ? [echo.secret, recorded.body, String(req.headers.authorization ?? ''), new URLSearchParams(recorded.body).get('client_assertion') ?? '']
      : [echo.token, String(req.headers.authorization ?? '')];
    const forms = values.filter(Boolean).flatMap((value) => {
      const all = wireForms(value);
      return echo.encodings.map((i) => all[i % all.length]!);
    });
    const text = forms.join(' | ');
    if (req.url?.startsWith('/token')) {
      if (echo.where === 'token-endpoint-json') return sendJson(res, 401, { error: 'invalid_client', error_description: text, echo: forms });
      if (echo.where === 'token-endpoint-text') {
        res.writeHead(500, { 'content-type': 'text/plain' });
        return void res.end(text);
      }
      return sendJson(res, 200, { access_token: echo.token, token_type: 'Bearer', expires_in: 3600 });
    }
    // The API: PHP-style JSON (`\/`), the echoes also nested deep in the result.
    let nested: unknown = forms;
    for (let i = 0; i < 10; i++) nested = { deeper: nested };
    res.writeHead(echo.where === 'api-403' ? 403 : 200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ said: text, nested }).replaceAll('/', '\\/'));
  });
});
after(async () => {
  await echoServer.close();
});

/** Every wire form of the secret (and its Basic credentials), the token and each assertion the server saw. */
function forbidden(secret: string, token: string): string[] {
  const assertions = echoServer.requests.map((r) => new URLSearchParams(r.body).get('client_assertion')).filter((a): a is string => !!a);
  return [...wireForms(secret), ...basicForms(CLIENT_ID, secret), ...wireForms(token), ...assertions.flatMap(wireForms)];
}

function assertAbsent(label: string, text: string, values: readonly string[]): void {
  for (const value of values) assert.ok(!text.includes(value), `${label} shows ${JSON.stringify(value)}:\n${text.slice(0, 1500)}`);
}

test('echoing servers: the secret, tokens and assertions in every encoding reach no error, JSON, inspect, event or diagnostics channel', async () => {
  const published: string[] = [];
  const onMessage = (message: unknown) => published.push(exposed(message) + JSON.stringify(message));
  for (const name of EVENTS) diagnosticsChannel.subscribe(DIAGNOSTICS_CHANNEL_PREFIX + name, onMessage);
  let runs = 0;
  try {
    await fc.assert(
      fc.asyncProperty(echoSecret, echoToken, echoPlan, async (secret, token, plan) => {
        runs++;
        echo = { secret, token, encodings: plan.encodings, where: plan.where };
        published.length = 0;
        const seen = echoServer.requests.length;
        const events: string[] = [];
        const client = new Client({
          baseUrl: echoServer.url,
          tokenUrl: `${echoServer.url}/token`,
          retry: { maxAttempts: 2, baseDelay: 1, maxDelay: 1 },
          circuitBreaker: false,
          clientCredentialsAuthCredentials: { oAuthClientId: CLIENT_ID, oAuthClientSecret: secret, clientAuthMethod: plan.method as 'client_secret_basic' },
        });
        for (const name of EVENTS) client.on(name, (event) => events.push(exposed(event) + JSON.stringify(event)));
        try {
          let outcome: unknown;
          try {
            outcome = await client.get('/echo');
          } catch (error) {
            outcome = error;
            assert.ok(error instanceof ClientCredentialsError, `untyped failure: ${inspect(error)}`);
          }
          const values = forbidden(secret, token);
          assert.ok(echoServer.requests.length > seen);
          // A successful response is the caller's own data, handed over as it came; an error is ours, and scrubbed.
          if (outcome instanceof Error) assertAbsent('error', `${exposed(outcome)}\n${JSON.stringify(outcome)}`, values);
          for (const text of events) assertAbsent('event', text, values);
          for (const text of published) assertAbsent('diagnostics channel', text, values);
        } finally {
          await client.close();
        }
      }),
      { seed: 2020, numRuns: 300, interruptAfterTimeLimit: TIME_LIMIT_MS },
    );
  } finally {
    for (const name of EVENTS) diagnosticsChannel.unsubscribe(DIAGNOSTICS_CHANNEL_PREFIX + name, onMessage);
  }
  assert.ok(runs >= 10, `only ${runs} runs`);
});

test('echoing servers: the secret, tokens and assertions in every encoding never reach the CLI\'s output (token, call, --json)', async () => {
  const { run } = await import('../src/cli/run.js');
  const home = await mkdtemp(join(tmpdir(), 'props-cli-'));
  let runs = 0;
  try {
    await fc.assert(
      fc.asyncProperty(echoSecret, echoToken, echoPlan, fc.boolean(), async (secret, token, plan, json) => {
        runs++;
        echo = { secret, token, encodings: plan.encodings, where: plan.where };
        let output = '';
        const io = {
          stdout: { write: (t: string | Uint8Array) => (output += typeof t === 'string' ? t : Buffer.from(t).toString('utf8')), isTTY: false },
          stderr: { write: (t: string) => (output += t), isTTY: false },
          readStdin: async () => '',
          stdinIsTTY: true,
          env: { HOME: home, XDG_CACHE_HOME: home, NO_COLOR: '1', CLIENT_CREDENTIALS_TOKEN_URL: `${echoServer.url}/token`, O_AUTH_CLIENT_ID: CLIENT_ID, CLIENT_CREDENTIALS_CLIENT_SECRET: secret },
          cwd: home,
        };
        const args = plan.where.startsWith('api') ? ['call', 'GET', `${echoServer.url}/echo`] : ['token'];
        await run([...args, '--no-cache', '--retries', '0', '--auth-method', plan.method, ...(json ? ['--json'] : [])], io as never);
        // `token` prints the token on purpose: only the other values are checked there.
        const values = args[0] === 'token' && plan.where === 'api-200-json' ? forbidden(secret, 'x') : forbidden(secret, token);
        assertAbsent(`CLI ${args[0]}${json ? ' --json' : ''}`, output, values);
      }),
      { seed: 2021, numRuns: 60, interruptAfterTimeLimit: TIME_LIMIT_MS },
    );
  } finally {
    await rm(home, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }).catch(() => undefined);
  }
  assert.ok(runs >= 5, `only ${runs} runs`);
});
