// The adapters never send the token over plain http to another machine unless `allowInsecureHttp` says so:
// refused when the adapter is made, before any I/O, as client.request refuses such a call.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import axios from 'axios';
import { attachClientCredentials } from '../src/adapters/axios.js';
import { Client, InvalidOptionError, type ClientConfiguration } from '../src/index.js';

const CREDENTIALS = { oAuthClientId: 'svc', oAuthClientSecret: 'adapter-security-secret' };
// No server listens on these: a request would fail as a network error, not as the typed refusal asserted here.
const TOKEN_URL = 'http://127.0.0.1:9/token';

const adapters: [string, (client: Client) => unknown][] = [
  ['client.fetch', (client) => client.fetch],
  ['client.interceptor()', (client) => client.interceptor()],
  ['attachClientCredentials()', (client) => attachClientCredentials(axios.create(), client)],
];

function isInsecureRefusal(error: unknown): boolean {
  return error instanceof InvalidOptionError && error.option === 'allowInsecureHttp' && /plain http to http:\/\/192\.0\.2\.2:47113/.test(error.message);
}

for (const [name, make] of adapters) {
  test(`${name}: an allowed origin on plain http to another machine is refused without allowInsecureHttp`, async () => {
    const configs: Partial<ClientConfiguration>[] = [{ baseUrl: 'http://192.0.2.2:47113/v1' }, { allowedOrigins: ['https://api.example.com', 'http://192.0.2.2:47113'] }];
    for (const config of configs) {
      const client = new Client({ tokenUrl: TOKEN_URL, clientCredentialsAuthCredentials: CREDENTIALS, ...config });
      try {
        assert.throws(() => make(client), isInsecureRefusal);
        assert.equal(client.stats().tokenRequests, 0);
      } finally {
        await client.close();
      }
    }
    // Loopback over http, https anywhere, or the option set: accepted.
    for (const config of [{ baseUrl: 'http://127.0.0.1:47113' }, { baseUrl: 'https://192.0.2.2:47113' }, { baseUrl: 'http://192.0.2.2:47113', allowInsecureHttp: true }]) {
      const client = new Client({ tokenUrl: TOKEN_URL, clientCredentialsAuthCredentials: CREDENTIALS, ...config });
      try {
        make(client);
      } finally {
        await client.close();
      }
    }
  });
}
