/**
 * `npm start`: the main job on an embedded default. Starts a real authorization server (oidc-provider) and a protected
 * API on loopback, then shows the Client at work in plain words: a herd of concurrent calls sharing one token fetch,
 * an ageing token replaced once by a background refresh while calls go on without waiting, a token persisted by
 * `oAuthOnTokenUpdate` and reused by a second Client through `oAuthTokenProvider` with no fetch at all, and the
 * command-line tool against the same servers (run while step 2 waits, its output shown in step 4: the wait is idle
 * time, and `npm start` stays short).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, type OAuthToken } from '../src/index.js';
import { startOidcProvider } from '../test/helpers/oidc.js';
import { startProtectedApi } from '../test/helpers/api.js';

/**
 * Token lifetime in seconds. Not less than 3: a token handed over in a file (step 3) carries its expiry in whole
 * seconds, so it may have lost up to a second, and the library takes no token with less than a second of life left.
 */
const TTL = 3;
/** The CLI's token requests carry this user agent; the library's steps count only their own. */
const CLI_USER_AGENT = 'client-credentials-cli/';
const say = (text: string) => console.log(text);
const step = (n: number, text: string) => console.log(`\n${n}. ${text}`);

async function main(): Promise<void> {
  say('client-credentials demo: OAuth 2.0 Client Credentials against a real authorization server, all on 127.0.0.1');
  const as = await startOidcProvider({ ttl: TTL });
  const api = await startProtectedApi({ issuer: as.issuer, jwksUrl: as.jwksUrl, audience: as.resource });
  say(`   authorization server (oidc-provider): ${as.issuer}  token endpoint ${as.tokenUrl}`);
  say(`   protected API (verifies JWT access tokens with jose): ${api.url}  tokens live ${TTL} s`);
  const dir = await mkdtemp(join(tmpdir(), 'client-credentials-demo-'));
  const tokenFile = join(dir, 'token.json');
  const clients: Client[] = [];
  let pending: Promise<unknown> = Promise.resolve();
  let written: Promise<void> = Promise.resolve();
  try {
    const client = new Client({
      baseUrl: api.url,
      tokenUrl: as.tokenUrl,
      clientCredentialsAuthCredentials: {
        oAuthClientId: 'svc',
        oAuthClientSecret: 'svc-secret',
        oAuthScopes: ['api:read'],
        oAuthOnTokenUpdate: (token: OAuthToken) => {
          written = writeFile(tokenFile, JSON.stringify(token), { mode: 0o600 });
        },
      },
    });
    clients.push(client);

    // Token requests of this demo's Clients, not of the CLI running beside them.
    const libraryFetches = () => as.tokenRequests.filter((r) => !String(r.headers['user-agent'] ?? '').startsWith(CLI_USER_AGENT)).length;

    let fetched: { expiresAtMs: number } | undefined;
    client.on('tokenFetched', (info) => (fetched = info));

    step(1, 'A cold client gets 100 concurrent calls.');
    const before = libraryFetches();
    const results = await Promise.all(Array.from({ length: 100 }, () => client.get<{ items: number[]; client_id: string }>('/things')));
    const ok = results.filter((r) => r.statusCode === 200).length;
    say(`   ${ok} of 100 calls answered 200, with ${libraryFetches() - before} token fetch between them (single flight).`);
    say(`   The API saw client_id=${results[0]!.result.client_id}, scope from the token: ${JSON.stringify((results[0]!.result as { scope?: string }).scope)}.`);

    // The CLI (step 4) runs now, while step 2 waits; its lines are kept and printed in order below.
    const cliLines: string[] = [];
    const cliRun = startCliDemo(
      { tokenUrl: as.tokenUrl, baseUrl: api.url, clientId: 'svc', clientSecret: 'svc-secret' },
      (line) => cliLines.push(line),
    );
    cliRun.catch(() => undefined); // handled where it is awaited below; not an unhandled rejection meanwhile
    pending = cliRun;

    // The token turns stale in the middle of its life (the default refreshAhead): served still, and replaced in the background.
    const staleInMs = Math.max(0, fetched!.expiresAtMs - (TTL * 1000) / 2 - Date.now());
    step(2, `Wait until the token is half-way through its life (${(staleInMs / 1000).toFixed(1)} s), then call again.`);
    await sleep(staleInMs + 100);
    const beforeRefresh = libraryFetches();
    const waitsBefore = client.stats().waits;
    // A refresh in the background; a fetch the call waits for if a very busy machine overslept past the expiry.
    const replaced = new Promise<void>((resolve) => {
      const offs = [client.on('tokenRefreshed', () => done()), client.on('tokenFetched', () => done())];
      const done = () => {
        for (const off of offs) off();
        resolve();
      };
    });
    await client.get('/things'); // answered with the current token; a background refresh starts
    await Promise.race([replaced, sleep(TTL * 1000)]); // never hangs: by then the token has expired, and the next call fetches
    await client.get('/things'); // the new token
    const waited = client.stats().waits - waitsBefore;
    say(`   2 calls made ${libraryFetches() - beforeRefresh} token fetch, in the background: the ageing token was replaced once, then reused; ${waited === 0 ? 'no call waited' : `${waited} call(s) waited`}.`);

    step(3, 'oAuthOnTokenUpdate saved the token to a file; a second Client loads it through oAuthTokenProvider.');
    await written;
    const saved = JSON.parse(await readFile(tokenFile, 'utf8')) as OAuthToken;
    say(`   ${tokenFile} holds a token expiring at ${new Date((saved.expiry ?? 0) * 1000).toISOString()} (token not shown).`);
    const beforeSecond = libraryFetches();
    const second = new Client({
      baseUrl: api.url,
      tokenUrl: as.tokenUrl,
      clientCredentialsAuthCredentials: {
        oAuthClientId: 'svc',
        oAuthClientSecret: 'svc-secret',
        oAuthScopes: ['api:read'],
        oAuthTokenProvider: async (lastOAuthToken, authManager) => {
          const stored = JSON.parse(await readFile(tokenFile, 'utf8')) as OAuthToken;
          return authManager.isValid(stored) && !authManager.isExpired(stored) ? stored : (lastOAuthToken ?? authManager.fetchToken());
        },
      },
    });
    clients.push(second);
    const third = await second.get('/things');
    say(`   The second Client's call answered ${third.statusCode} with ${libraryFetches() - beforeSecond} token fetches.`);

    const stats = client.stats();
    say(`\n   First client's counters: ${plural(stats.tokenRequests, 'token request')}, ${plural(stats.cacheHits, 'cache hit')}, ${plural(stats.waits, 'call')} waited for a fetch, ${plural(stats.failures, 'failure')}.`);

    if (await cliRun) {
      step(4, 'The command-line tool, against the same servers (it ran while steps 2 and 3 did):');
      for (const line of cliLines) say(line);
    }
    say('\nDone: every call carried a valid token, and nobody had to think about tokens.');
  } finally {
    await pending.catch(() => undefined); // the CLI's children are done before the servers close
    await Promise.all(clients.map((c) => c.close()));
    await api.close();
    await as.close();
    await rm(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(`demo failed: ${(error as Error)?.message ?? String(error)}`);
    process.exit(1);
  },
);

/**
 * Runs examples/cli-demo.js against the servers, printing through `print`; resolves with false (and prints nothing)
 * when the CLI is not built, as after a build of the library alone.
 */
async function startCliDemo(options: Record<string, string>, print: (line: string) => void): Promise<boolean> {
  const cliDemo = join(import.meta.dirname, 'cli-demo.js');
  if (!existsSync(cliDemo) || !existsSync(join(import.meta.dirname, '..', 'src', 'cli', 'main.js'))) return false;
  const { runCliDemo } = (await import(cliDemo)) as { runCliDemo: (o: Record<string, string>, print: (line: string) => void) => Promise<void> };
  await runCliDemo(options, print);
  return true;
}

/** `1 cache hit`, `2 cache hits`. */
function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}
