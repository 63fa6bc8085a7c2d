/**
 * Run by run.ts under Deno with `--allow-net` only: a token request must fail at once with the typed
 * RuntimeUnsupportedError naming `--allow-env` (undici reads environment variables), not as a network error retried
 * four times. The token URL comes as an argument (reading the environment would itself need `--allow-env`). Prints
 * one JSON line: the error's name, code and message, and how long it took.
 */
import { Client, isClientCredentialsError } from '../../src/index.js';

const tokenUrl = process.argv.at(-1)!;
const started = performance.now();
const client = new Client({ tokenUrl, clientCredentialsAuthCredentials: { oAuthClientId: 'svc', oAuthClientSecret: 'svc-secret' } });
try {
  await client.clientCredentialsAuthManager.getToken();
  console.log(JSON.stringify({ name: 'no error' }));
} catch (error) {
  const e = error as Error & { code?: string };
  console.log(JSON.stringify({ name: e.name, code: e.code, branded: isClientCredentialsError(error), message: e.message, ms: Math.round(performance.now() - started) }));
} finally {
  await client.close();
}
