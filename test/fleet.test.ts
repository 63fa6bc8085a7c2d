/**
 * Fleet-wide single flight, with real processes: child processes (test/fixtures/fleetWorker.ts) share tokens through
 * a real redis-server or one file, against oidc-provider and a protected API. Figures are printed as diagnostics
 * (`node --test dist/test/fleet.test.js`) and quoted in docs/fleet.md.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from 'redis';
import { startFaultProxy } from './helpers/faultProxy.js';
import { startStack, type Stack } from './helpers/fixtures.js';
import { startRedis, type RedisHandle } from './helpers/redis.js';
import { burst, distinctTokens, spawnWorker, stopWorkers, sum, waitFor, type RunReport, type Worker, type WorkerConfig } from './helpers/fleet.js';

/** Moves every worker's wall clock `ms` ahead (their waits stay on real time). */
async function advance(workers: Worker[], ms: number): Promise<void> {
  const replies = workers.map((w) => w.next('advanced'));
  for (const w of workers) w.send({ type: 'advance', ms });
  await Promise.all(replies);
}

describe('fleet on Redis (child processes)', () => {
  // Tokens live 60 s in real time, so no token expires by accident on a loaded machine; the workers' clocks are moved
  // past the expiry when a test wants it expired.
  const TTL = 60;
  let redis: RedisHandle;
  let stack: Stack;
  const workers: Worker[] = [];

  before(async () => {
    redis = await startRedis();
    stack = await startStack({ ttl: TTL });
  });
  after(async () => {
    await stopWorkers(workers);
    await stack?.close();
    await redis?.close();
  });

  test('8 processes × 200 concurrent requests make 1 token request cold, and 1 more after expiry (node-redis and ioredis mixed)', async (t) => {
    const config = (i: number): WorkerConfig => ({ store: i % 2 ? 'ioredis' : 'node-redis', redisUrl: redis.url, prefix: 'fleet-a:', tokenUrl: stack.op.tokenUrl, apiUrl: stack.api.url });
    const fleet = await Promise.all(Array.from({ length: 8 }, (_, i) => spawnWorker(config(i))));
    workers.push(...fleet);
    const before = stack.op.tokenRequests.length;

    const cold = await burst(fleet, 200, stack.op);
    assert.equal(sum(cold.reports, 'failed'), 0, JSON.stringify(cold.reports.flatMap((r) => r.errors)));
    assert.equal(sum(cold.reports, 'ok'), 1_600);
    assert.equal(cold.untilEveryoneHadAToken, 1, 'cold: exactly one token request for the whole fleet');
    assert.equal(cold.firstTokens.size, 1, 'every process got the same token');

    // Every token is now past its expiry.
    await advance(fleet, (TTL + 1) * 1_000);
    const expired = await burst(fleet, 200, stack.op);
    assert.equal(sum(expired.reports, 'failed'), 0, JSON.stringify(expired.reports.flatMap((r) => r.errors)));
    assert.equal(expired.untilEveryoneHadAToken, 1, 'after expiry: exactly one more token request');
    assert.equal(expired.firstTokens.size, 1);
    assert.ok(![...cold.firstTokens].some((token) => expired.firstTokens.has(token)), 'a new token after expiry');
    t.diagnostic(
      `fleet: 8 processes x 200 concurrent requests; cold: ${cold.untilEveryoneHadAToken} token request, every process had the token after ${cold.tokenMs} ms, burst ${cold.ms} ms; ` +
        `after expiry: ${expired.untilEveryoneHadAToken} token request, ${expired.tokenMs} ms; token requests in total ${stack.op.tokenRequests.length - before}`,
    );
    await stopWorkers(fleet);
  });

  test('a lease holder killed mid-fetch is taken over within the lease time; a live slow holder keeps its lease', async (t) => {
    const LEASE = 1_500;
    // Its own proxy, so that the request it holds back ends with this test.
    const proxy = await startFaultProxy(stack.op.issuer);
    t.after(() => proxy.close());
    const prefix = 'fleet-b:';
    const config: WorkerConfig = { store: 'node-redis', redisUrl: redis.url, prefix, tokenUrl: `${proxy.url}/token`, apiUrl: stack.api.url, leaseTtl: LEASE, leaseWait: 30_000 };
    const fleet = await Promise.all(Array.from({ length: 4 }, () => spawnWorker(config)));
    workers.push(...fleet);
    const inspector = createClient({ url: redis.url });
    inspector.on('error', () => undefined);
    await inspector.connect();
    t.after(() => inspector.destroy());

    // The token endpoint never answers (the holder's hedges, one beside its first request after a second, then one
    // every 0.75 s, hang too) until the holder is killed.
    await proxy.setShape({ kind: 'hang' });
    const before = stack.op.tokenRequests.length;
    const replies = fleet.map((w) => w.next<RunReport>('report').catch((error: Error) => error));
    for (const w of fleet) w.send({ type: 'burst', n: 20 });

    await waitFor(() => proxy.requests === 1, 10_000, 'the lease holder to send its token request');
    const leaseKeys = await inspector.keys(`${prefix}*:lease`);
    assert.equal(leaseKeys.length, 1);
    assert.match(leaseKeys[0]!, /^fleet-b:\{[A-Za-z0-9_-]{43}\}:lease$/);
    const owner = await inspector.get(leaseKeys[0]!);
    const holderPid = Number(owner!.split(':')[1]);
    const holder = fleet.find((w) => w.pid === holderPid);
    assert.ok(holder, `the lease owner ${owner} is one of the workers`);

    await sleep(LEASE * 2.5); // a live holder renews its lease: nobody takes over
    assert.equal(await inspector.get(leaseKeys[0]!), owner, 'no takeover while the holder is alive');
    assert.ok(proxy.requests <= 1 + Math.ceil((LEASE * 2.5) / 750) + 1, `${proxy.requests} token requests from the holder alone`);

    holder.child.kill('SIGKILL');
    const killedAt = Date.now();
    const hung = proxy.requests;
    await proxy.setShape(undefined);
    await waitFor(() => stack.op.tokenRequests.length > before, LEASE * 4, 'another process to take over');
    const takeoverMs = stack.op.tokenRequests[before]!.at - killedAt;
    const results = await Promise.all(replies);
    const survivors = results.filter((r): r is RunReport => !(r instanceof Error));
    assert.equal(survivors.length, 3);
    assert.equal(sum(survivors, 'failed'), 0, JSON.stringify(survivors.flatMap((r) => r.errors)));
    assert.equal(sum(survivors, 'ok'), 60);
    assert.equal(distinctTokens(survivors).size, 1);
    assert.equal(stack.op.tokenRequests.length - before, 1, 'one takeover request reached the server');
    assert.equal(proxy.requests - hung, 1, 'one takeover request, nothing else');
    assert.ok(takeoverMs <= LEASE + 500, `takeover after ${takeoverMs} ms, lease ${LEASE} ms`);
    t.diagnostic(`fleet: lease ${LEASE} ms, holder killed mid-fetch, takeover after ${takeoverMs} ms`);
    await stopWorkers(fleet);
  });

  test('Redis stopped under load: 0 failed requests; restarted: the fleet shares tokens again', async (t) => {
    const config = (i: number): WorkerConfig => ({ store: i % 2 ? 'ioredis' : 'node-redis', redisUrl: redis.url, prefix: 'fleet-c:', tokenUrl: stack.op.tokenUrl, apiUrl: stack.api.url });
    const fleet = await Promise.all(Array.from({ length: 8 }, (_, i) => spawnWorker(config(i))));
    workers.push(...fleet);
    const status = async (): Promise<boolean> => {
      const replies = fleet.map((w) => w.next<{ redisReady: boolean }>('status'));
      for (const w of fleet) w.send({ type: 'status' });
      return (await Promise.all(replies)).every((r) => r.redisReady);
    };

    const started = fleet.map((w) => w.next('loading'));
    for (const w of fleet) w.send({ type: 'load', concurrency: 5 });
    await Promise.all(started);
    await sleep(1_000);
    await redis.stop({ hard: true });
    const downAt = stack.op.tokenRequests.length;
    await advance(fleet, (TTL + 1) * 1_000); // the tokens expire while Redis is down
    await sleep(1_500);
    const duringOutage = stack.op.tokenRequests.length - downAt;
    await redis.start();
    await waitFor(status, 10_000, 'every worker to reconnect');
    await sleep(1_500); // past the store's back-off
    const loadReports = fleet.map((w) => w.next<RunReport>('report'));
    for (const w of fleet) w.send({ type: 'stopLoad' });
    const load = await Promise.all(loadReports);
    assert.equal(sum(load, 'failed'), 0, JSON.stringify(load.flatMap((r) => r.errors)));
    assert.ok(sum(load, 'ok') > 100, `requests served under load: ${sum(load, 'ok')}`);
    assert.ok(sum(load, 'storeErrors') > 0, 'the outage was noticed');
    assert.ok(duringOutage >= 1, 'processes fetched for themselves during the outage');

    await advance(fleet, (TTL + 1) * 1_000); // every token expires again
    const shared = await burst(fleet, 50, stack.op);
    assert.equal(sum(shared.reports, 'failed'), 0);
    assert.equal(shared.untilEveryoneHadAToken, 1, 'after the restart the fleet makes one token request again');
    assert.equal(shared.firstTokens.size, 1);
    t.diagnostic(`fleet: Redis down 1.5 s under load, tokens expiring meanwhile (8 processes x 5 loops): ${sum(load, 'ok')} requests, ${sum(load, 'failed')} failed, ${duringOutage} token requests during the outage; after restart and expiry: ${shared.untilEveryoneHadAToken} token request for the fleet`);
    await stopWorkers(fleet);
  });
});

describe('fleet on one file (child processes)', () => {
  let stack: Stack;
  let dir: string;
  const workers: Worker[] = [];

  before(async () => {
    stack = await startStack({ ttl: 60 });
    dir = await mkdtemp(path.join(tmpdir(), 'cc-fleet-'));
  });
  after(async () => {
    await stopWorkers(workers);
    await stack?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('FileTokenStore: 4 processes cold make 1 token request; a corrupt file is ignored and overwritten', async (t) => {
    const filePath = path.join(dir, 'cache', 'tokens.json');
    const config: WorkerConfig = { store: 'file', filePath, tokenUrl: stack.op.tokenUrl, apiUrl: stack.api.url };
    let fleet = await Promise.all(Array.from({ length: 4 }, () => spawnWorker(config)));
    workers.push(...fleet);
    const cold = await burst(fleet, 50, stack.op);
    assert.equal(sum(cold.reports, 'failed'), 0, JSON.stringify(cold.reports.flatMap((r) => r.errors)));
    assert.equal(cold.total, 1);
    assert.equal(distinctTokens(cold.reports).size, 1);
    assert.equal((await stat(filePath)).mode & 0o777, 0o600);
    await stopWorkers(fleet);

    await writeFile(filePath, '{"version":1,"entries":{"x": tru', { mode: 0o600 });
    fleet = await Promise.all(Array.from({ length: 4 }, () => spawnWorker(config)));
    workers.push(...fleet);
    const again = await burst(fleet, 50, stack.op);
    assert.equal(sum(again.reports, 'failed'), 0, JSON.stringify(again.reports.flatMap((r) => r.errors)));
    assert.equal(again.total, 1, 'the corrupt file cost exactly one token request');
    assert.equal(distinctTokens(again.reports).size, 1);
    assert.ok(!distinctTokens(cold.reports).has([...distinctTokens(again.reports)][0]!), 'the corrupt file was not read as a token');
    const data = JSON.parse(await readFile(filePath, 'utf8')) as { version: number; entries: Record<string, unknown> };
    assert.equal(data.version, 1);
    assert.equal(Object.keys(data.entries).length, 1);
    assert.equal((await stat(filePath)).mode & 0o777, 0o600);
    t.diagnostic(`file: 4 processes x 50 concurrent requests; cold: ${cold.total} token request, burst ${cold.ms} ms; corrupt file: ${again.total} token request, burst ${again.ms} ms`);
    await stopWorkers(fleet);
  });
});
