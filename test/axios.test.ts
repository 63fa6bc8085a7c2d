// oauth-client-credentials/axios: attachClientCredentials on a real axios instance.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import axios, { type AxiosError } from 'axios';
import { attachClientCredentials } from '../src/adapters/axios.js';
import { Client, InvalidOptionError } from '../src/index.js';
import { adapterCases, adapterClient, adapterServers, type AdapterUnderTest } from './helpers/adapterCases.js';
import { SVC_CREDENTIALS, manualClock } from './helpers/fixtures.js';

const servers = adapterServers();

const adapters: AdapterUnderTest[] = [
  {
    name: 'axios with attachClientCredentials',
    attach: (client) => {
      const instance = axios.create();
      const detach = attachClientCredentials(instance, client);
      return {
        get: async (url) => {
          try {
            const response = await instance.get(url);
            return { status: response.status, body: response.data as unknown };
          } catch (error) {
            const response = (error as AxiosError).response;
            if (!response) throw error;
            return { status: response.status, body: response.data as unknown };
          }
        },
        close: detach,
      };
    },
  },
];

adapterCases(servers, adapters);

test('axios: baseURL-relative paths, a JSON body replayed after a 401 (also when validateStatus accepts it), config.oauth, detach', async () => {
  const clock = manualClock();
  const client = adapterClient(servers, clock);
  const instance = axios.create({ baseURL: servers.stack.api.url });
  const detach = attachClientCredentials(instance, client);
  try {
    assert.equal((await instance.get('/things')).status, 200);
    servers.stack.api.revoke((await client.clientCredentialsAuthManager.getToken()).accessToken);
    const posted = await instance.post<{ body: string }>('/echo', { hello: 'world' });
    assert.equal(posted.status, 200);
    assert.deepEqual(JSON.parse(posted.data.body), { hello: 'world' });
    assert.equal(client.stats().unauthorizedRetries, 1);

    clock.advance(5_000); // one refusal per key per 5 s re-fetches
    servers.stack.api.revoke((await client.clientCredentialsAuthManager.getToken()).accessToken);
    const lenient = await instance.get('/things', { validateStatus: () => true });
    assert.equal(lenient.status, 200);
    assert.equal(client.stats().unauthorizedRetries, 2);

    const scoped = await instance.get<{ scope: string }>('/things', { oauth: { scopes: 'api:write' } });
    assert.equal(scoped.data.scope, 'api:write');

    const seen = servers.stack.api.requests.length;
    await assert.rejects(instance.get('/things', { oauth: { retryOnUnauthorized: false }, headers: { Authorization: 'Bearer mine' } }), (e: AxiosError) => e.response?.status === 401);
    assert.equal(servers.stack.api.requests.length - seen, 1);
    assert.equal(servers.stack.api.requests[seen]!.headers.authorization, 'Bearer mine');

    detach();
    await assert.rejects(instance.get('/things'), (e: AxiosError) => e.response?.status === 401);
    assert.equal(servers.stack.api.requests.at(-1)!.headers.authorization, undefined);
  } finally {
    await client.close();
  }
});

test('axios: attaching needs an allowed origin', async () => {
  const bare = new Client({ tokenUrl: servers.stack.op.tokenUrl, clientCredentialsAuthCredentials: SVC_CREDENTIALS });
  try {
    assert.throws(() => attachClientCredentials(axios.create(), bare), InvalidOptionError);
  } finally {
    await bare.close();
  }
});
