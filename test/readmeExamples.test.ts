/**
 * The README's version of the seed's token provider example checks `isExpired` on the stored token: with an expired
 * token in the "database", it fetches a new one, where the verbatim seed example fails for good with
 * ERR_TOKEN_EXPIRED (the README used to show only the latter).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, TokenExpiredError, type OAuthToken } from '../src/index.js';
import { customTokenProvider, customTokenProviderChecked } from './types/seed-examples.js';
import { startStack, type Stack } from './helpers/fixtures.js';

let stack: Stack;
const globals = globalThis as { loadTokenFromDatabase?: () => OAuthToken | undefined };

before(async () => {
  stack = await startStack({ clients: [{ client_id: 'OAuthClientId', client_secret: 'OAuthClientSecret' }] });
});
after(async () => {
  delete globals.loadTokenFromDatabase;
  await stack.close();
});

test('with an expired stored token, the README provider fetches a new one; the verbatim seed example cannot recover', async () => {
  const expired: OAuthToken = { accessToken: 'expired-token', tokenType: 'Bearer', expiresIn: 60, expiry: Math.floor(Date.now() / 1000) - 120 };
  globals.loadTokenFromDatabase = () => expired;

  const checked = customTokenProviderChecked(stack.api.url, stack.op.tokenUrl);
  try {
    const before = stack.op.tokenRequests.length;
    assert.equal((await checked.get('/things')).statusCode, 200);
    assert.equal(stack.op.tokenRequests.length, before + 1);
  } finally {
    await checked.close();
  }

  const verbatim = customTokenProvider(stack.api.url, stack.op.tokenUrl);
  try {
    await assert.rejects(verbatim.get('/things'), (e: unknown) => e instanceof TokenExpiredError && e.code === ErrorCode.TokenExpired);
  } finally {
    await verbatim.close();
  }
});
