/**
 * A permission the runtime withholds is not a network fault: the transport turns Deno's `NotCapable` (and
 * `PermissionDenied`, and Node's `ERR_ACCESS_DENIED`) into RuntimeUnsupportedError naming the fix, which the token
 * fetcher does not retry. Deno itself is run by `npm run test:runtimes` (test/runtimes/run.ts, `--allow-net` only);
 * here the errors have the shape those runtimes give them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, NetworkError, RuntimeUnsupportedError } from '../src/index.js';
import { isRetryable } from '../src/auth/resilience.js';
import { mapTransportError } from '../src/http/transport.js';

/** An error as Deno 2 throws it when an env read is refused (`Deno.errors.NotCapable`). */
function denoNotCapable(): Error {
  const error = new Error('Requires env access to "JEST_WORKER_ID", run again with the --allow-env flag');
  error.name = 'NotCapable';
  return error;
}

const request = { method: 'POST', url: 'https://auth.example.com/token', headers: {}, timeout: 1_000 } as Parameters<typeof mapTransportError>[1];

test('a Deno permission refusal, bare or wrapped, becomes RuntimeUnsupportedError naming --allow-env, and is not retried', () => {
  for (const raw of [denoNotCapable(), new TypeError('fetch failed', { cause: denoNotCapable() })]) {
    const mapped = mapTransportError(raw, request);
    assert.ok(mapped instanceof RuntimeUnsupportedError, String(mapped));
    assert.equal((mapped as RuntimeUnsupportedError).code, ErrorCode.RuntimeUnsupported);
    assert.match(mapped.message, /^POST https:\/\/auth\.example\.com\/token failed: Deno denied a permission .*--allow-env.*Retrying cannot help\.$/);
    assert.equal(isRetryable(mapped), false);
  }
  const older = Object.assign(new Error('Requires net access'), { name: 'PermissionDenied' });
  assert.ok(mapTransportError(older, request) instanceof RuntimeUnsupportedError);
});

test('Node\'s permission model refusal is typed too; a real network error stays a retried NetworkError', () => {
  const node = Object.assign(new Error('Access to this API has been restricted'), { code: 'ERR_ACCESS_DENIED' });
  const mapped = mapTransportError(node, request);
  assert.ok(mapped instanceof RuntimeUnsupportedError);
  assert.match(mapped.message, /Node\.js denied a permission/);
  const refused = mapTransportError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), request);
  assert.ok(refused instanceof NetworkError);
  assert.equal(isRetryable(refused), true);
});
