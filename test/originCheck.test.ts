/**
 * The adapters' origin check (`TokenAccess.allowsUrl`) takes shortcuts on the hot path: the last allowed origin
 * matched by prefix, and `scheme://host[:port]` up to the first `/` (or the whole URL, as a path-less axios `baseURL`)
 * looked up as it is. Property: for any URL, and whatever URLs were checked before it, the answer is the WHATWG URL
 * parser's (`new URL(url).origin` is an allowed origin). Look-alikes (a longer host, a port, userinfo, `\`, `?`, `#`,
 * case, missing slashes) are generated from the allowed origins themselves.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Client } from '../src/index.js';

const ALLOWED = ['https://api.example.com', 'http://127.0.0.1:8080'];

/** The answer the shortcuts must agree with. */
function parserSays(url: string): boolean {
  try {
    return ALLOWED.includes(new URL(url).origin);
  } catch {
    return false;
  }
}

const scheme = fc.constantFrom('https://', 'http://', 'HTTPS://', 'https:/', 'https:', 'ftp://', '');
const host = fc.constantFrom('api.example.com', 'API.Example.com', 'api.example.com.', 'api.example.com.evil', 'xapi.example.com', '127.0.0.1', '127.0.0.10', 'evil');
const port = fc.constantFrom('', ':443', ':8080', ':80', ':', ':08080', ':8080x');
const userinfo = fc.constantFrom('', 'u@', 'api.example.com@', 'u:p@');
const rest = fc.constantFrom('', '/', '/things', '/a/../b', '?q=1', '#f', '\\x', '@evil.com/', '.evil/', ':1/', '%2F');
const url = fc.oneof(
  fc.tuple(scheme, userinfo, host, port, rest).map((parts) => parts.join('')),
  fc.tuple(fc.constantFrom(...ALLOWED), rest, rest).map((parts) => parts.join('')),
  fc.string({ maxLength: 40 }),
);

test('origin check: the hot-path shortcuts give the URL parser\'s answer for any URL, after any earlier URLs', async () => {
  const client = new Client({ tokenUrl: 'http://127.0.0.1:9/token', allowedOrigins: ALLOWED, clientCredentialsAuthCredentials: { oAuthClientId: 'svc', oAuthClientSecret: 'origin-check-secret' } });
  try {
    const access = client.tokenAccess();
    // The cases the shortcuts were written for, and their nearest look-alikes, in an order that primes the cache.
    for (const [candidate, allowed] of [
      ['https://api.example.com', true],
      ['https://api.example.com/things', true],
      ['https://api.example.com', true],
      ['https://api.example.com.evil', false],
      ['https://api.example.com:8443/', false],
      ['https://api.example.com@evil.com/', false],
      ['http://127.0.0.1:8080', true],
      ['http://127.0.0.1:80800', false],
      ['http://127.0.0.1:8080?x', true],
    ] as const) {
      assert.equal(access.allowsUrl(candidate), allowed, candidate);
    }
    fc.assert(
      fc.property(fc.array(url, { minLength: 1, maxLength: 6 }), (urls) => {
        for (const candidate of urls) assert.equal(access.allowsUrl(candidate), parserSays(candidate), candidate);
      }),
      { seed: 2026_12_07, numRuns: 3_000 },
    );
  } finally {
    await client.close();
  }
});
