/**
 * Redis as deployed, for real on 127.0.0.1 with Debian's redis-server and redis-sentinel: a Cluster of three
 * primaries, a Sentinel group with a failover under load, and TLS (`rediss://`) with a local CA. Each test starts its
 * own servers on ephemeral ports and stops them. Fleets are child processes (test/fixtures/fleetWorker.ts) on
 * node-redis and ioredis.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster, Redis } from 'ioredis';
import { createClient, createSentinel } from 'redis';
import { RedisTokenStore } from '../src/stores/redis.js';
import { burst, spawnWorker, stopWorkers, sum, waitFor, type RunReport, type Worker, type WorkerConfig } from './helpers/fleet.js';
import { startStack, type Stack } from './helpers/fixtures.js';
import { startRedisCluster, startRedisSentinel, startRedisTls } from './helpers/redisTopology.js';

const TTL = 8; // seconds: tokens expire in real time during the tests (long enough that a loaded machine does not send an expired one)
// Generous: on a loaded 2-core machine a 500 ms store timeout can fire, and a process then (rightly) fetches on its own.
const STORE_TIMEOUT = 2_000;
let stack: Stack;
const workers: Worker[] = [];

before(async () => {
  stack = await startStack({ ttl: TTL });
});
after(async () => {
  await stopWorkers(workers);
  await stack?.close();
});

async function fleetOf(n: number, config: (i: number) => WorkerConfig): Promise<Worker[]> {
  const fleet = await Promise.all(Array.from({ length: n }, (_, i) => spawnWorker(config(i))));
  workers.push(...fleet);
  return fleet;
}

async function allReady(fleet: Worker[]): Promise<boolean> {
  const replies = fleet.map((w) => w.next<{ redisReady: boolean }>('status'));
  for (const w of fleet) w.send({ type: 'status' });
  return (await Promise.all(replies)).every((r) => r.redisReady);
}

const errorsOf = (reports: RunReport[]): string => JSON.stringify(reports.flatMap((r) => r.errors));
const storeErrorsOf = (reports: RunReport[]): string => `store errors: ${sum(reports, 'storeErrors')}`;

describe('Redis Cluster (three primaries)', () => {
  test('node-redis createCluster and ioredis Cluster: token and lease keys in one slot; 8 processes make 1 token request per window', async (t) => {
    const cluster = await startRedisCluster();
    t.after(() => cluster.close());
    const prefix = 'cl:';
    // The hash tag puts a token and its lease in one slot, whatever the slot.
    const probe = new Cluster(cluster.nodes);
    probe.on('error', () => undefined);
    t.after(() => probe.disconnect());
    await new Promise<void>((resolve) => (probe.status === 'ready' ? resolve() : probe.once('ready', () => resolve())));
    const store = new RedisTokenStore({ client: probe, prefix, pubsub: false });
    for (const key of ['a', 'Zm9vYmFy', 'x'.repeat(43)]) {
      const node = probe.nodes('master')[0]!;
      const [tokenSlot, leaseSlot] = await Promise.all([node.call('CLUSTER', 'KEYSLOT', store.tokenKey(key)), node.call('CLUSTER', 'KEYSLOT', store.leaseKey(key))]);
      assert.equal(tokenSlot, leaseSlot, key);
    }

    const fleet = await fleetOf(8, (i) => ({ store: i % 2 ? 'ioredis' : 'node-redis', topology: 'cluster', nodes: cluster.nodes, prefix, tokenUrl: stack.op.tokenUrl, apiUrl: stack.api.url, storeTimeout: STORE_TIMEOUT }));
    const cold = await burst(fleet, 100, stack.op);
    assert.equal(sum(cold.reports, 'failed'), 0, errorsOf(cold.reports));
    assert.equal(cold.untilEveryoneHadAToken, 1, `cold: one token request for the fleet (${storeErrorsOf(cold.reports)})`);
    assert.equal(cold.firstTokens.size, 1);
    await sleep(TTL * 1_000 + 1_200);
    const expired = await burst(fleet, 100, stack.op);
    assert.equal(sum(expired.reports, 'failed'), 0, errorsOf(expired.reports));
    assert.equal(expired.untilEveryoneHadAToken, 1, `after expiry: one more token request (${storeErrorsOf(expired.reports)})`);
    assert.equal(expired.firstTokens.size, 1);
    // The keys really are in the cluster, on the slot's primary.
    const keys = (await Promise.all(probe.nodes('master').map((n) => n.keys(`${prefix}*`)))).flat();
    assert.ok(keys.some((k) => /^cl:\{[A-Za-z0-9_-]{43}\}$/.test(k)), keys.join(','));
    t.diagnostic(`cluster: 8 processes (4 node-redis createCluster, 4 ioredis Cluster) x 100 requests: cold ${cold.untilEveryoneHadAToken} token request in ${cold.tokenMs} ms, after expiry ${expired.untilEveryoneHadAToken} in ${expired.tokenMs} ms`);
    await stopWorkers(fleet);
  });
});

describe('Redis Sentinel (a primary, a replica, three sentinels)', () => {
  test('node-redis createSentinel works (get no longer fails with a TypeError)', async (t) => {
    const group = await startRedisSentinel('cc-unit');
    t.after(() => group.close());
    const client = createSentinel({ name: group.name, sentinelRootNodes: group.sentinels });
    client.on('error', () => undefined);
    await client.connect();
    t.after(() => client.destroy());
    const store = new RedisTokenStore({ client, prefix: 'sn-unit:' });
    const token = { accessToken: 'a', tokenType: 'Bearer', expiry: Math.floor(Date.now() / 1000) + 60 };
    await store.set('k', token, 60_000);
    assert.deepEqual(await store.get('k'), token);
    assert.equal(await store.setIfNotNewer('k', { ...token, accessToken: 'older', expiry: token.expiry - 10 }, 60_000), false);
    const lease = await store.acquireLease('k', 5_000);
    assert.ok(lease);
    assert.equal(await lease.extend!(5_000), true);
    await lease.release();
    await store.delete('k', 'a');
    assert.equal(await store.get('k'), undefined);
    await store.close();
  });

  test('stop the primary under load: 0 failed requests; after the failover the fleet is back to 1 token request per window', async (t) => {
    const group = await startRedisSentinel('cc-fleet');
    t.after(() => group.close());
    const prefix = 'sn:';
    const fleet = await fleetOf(8, (i) => ({ store: i % 2 ? 'ioredis' : 'node-redis', topology: 'sentinel', sentinels: group.sentinels, sentinelName: group.name, prefix, tokenUrl: stack.op.tokenUrl, apiUrl: stack.api.url, storeTimeout: STORE_TIMEOUT }));
    const cold = await burst(fleet, 50, stack.op);
    assert.equal(sum(cold.reports, 'failed'), 0, errorsOf(cold.reports));
    assert.equal(cold.untilEveryoneHadAToken, 1, storeErrorsOf(cold.reports));

    const started = fleet.map((w) => w.next('loading'));
    for (const w of fleet) w.send({ type: 'load', concurrency: 4 });
    await Promise.all(started);
    await sleep(800);
    const oldPrimary = group.primary.port;
    const stoppedAt = Date.now();
    await group.primary.stop({ hard: true });
    await waitFor(async () => (await group.currentPrimaryPort()) !== oldPrimary, 30_000, 'the sentinels to promote the replica');
    const failoverMs = Date.now() - stoppedAt;
    await waitFor(() => allReady(fleet), 20_000, 'every worker to reach the new primary');
    await sleep(TTL * 1_000 + 1_200); // tokens expire and are shared again through the new primary
    const loadReports = fleet.map((w) => w.next<RunReport>('report'));
    for (const w of fleet) w.send({ type: 'stopLoad' });
    const load = await Promise.all(loadReports);
    assert.equal(sum(load, 'failed'), 0, errorsOf(load));
    assert.ok(sum(load, 'ok') > 500, `requests served under load: ${sum(load, 'ok')}`);

    await sleep(TTL * 1_000 + 1_200);
    const after = await burst(fleet, 50, stack.op);
    assert.equal(sum(after.reports, 'failed'), 0, errorsOf(after.reports));
    assert.equal(after.untilEveryoneHadAToken, 1, `after the failover: one token request per window again (${storeErrorsOf(after.reports)})`);
    assert.equal(after.firstTokens.size, 1);
    t.diagnostic(`sentinel: 8 processes (4 node-redis createSentinel, 4 ioredis sentinels) x 4 loops; primary SIGKILLed, replica promoted after ${failoverMs} ms; ${sum(load, 'ok')} requests, ${sum(load, 'failed')} failed; after: ${after.untilEveryoneHadAToken} token request per window`);
    await stopWorkers(fleet);
  });
});

describe('Redis over TLS (rediss://, local CA)', () => {
  let tls: Awaited<ReturnType<typeof startRedisTls>>;
  before(async () => {
    tls = await startRedisTls();
  });
  after(async () => {
    await tls?.close();
  });

  test('node-redis and ioredis over rediss:// with the CA: 4 processes make 1 token request; without the CA the connection is refused', async (t) => {
    const fleet = await fleetOf(4, (i) => ({ store: i % 2 ? 'ioredis' : 'node-redis', redisUrl: tls.url, tlsCa: tls.ca, prefix: 'tls:', tokenUrl: stack.op.tokenUrl, apiUrl: stack.api.url, storeTimeout: STORE_TIMEOUT }));
    const cold = await burst(fleet, 50, stack.op);
    assert.equal(sum(cold.reports, 'failed'), 0, errorsOf(cold.reports));
    assert.equal(cold.untilEveryoneHadAToken, 1, storeErrorsOf(cold.reports));
    assert.equal(cold.firstTokens.size, 1);
    assert.equal(sum(cold.reports, 'storeErrors'), 0);

    const untrusted = createClient({ url: tls.url, socket: { tls: true, reconnectStrategy: false } });
    untrusted.on('error', () => undefined);
    await assert.rejects(untrusted.connect(), /certificate/i);
    const io = new Redis(tls.url, { tls: { ca: tls.ca }, lazyConnect: true });
    await io.connect();
    assert.equal(await io.ping(), 'PONG');
    io.disconnect();
    t.diagnostic(`tls: 4 processes over rediss:// x 50 requests: ${cold.untilEveryoneHadAToken} token request in ${cold.tokenMs} ms`);
    await stopWorkers(fleet);
  });
});
