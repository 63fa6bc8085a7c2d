// Issue 18: the outage guarantee for every outage shape, not only answered errors: the token endpoint unavailable
// (errors, resets, refused connections, requests that are never answered) for less than half a token's lifetime,
// starting at any moment of its life, fails no request; after any outage the first caller succeeds within about a
// second of recovery. The faults are real: a TCP-level proxy in front of oidc-provider answers 503, resets, stops
// listening, or accepts and never answers. Swept on an injected clock (fault kind × phase × outage length), then in
// real time with 4 s tokens (the bench's S7 and S8 shapes, hanging instead of answering 503).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Client, MemoryTokenStore, type ClientConfiguration } from '../src/index.js';
import type { OutageShape } from './helpers/faultProxy.js';
import { SVC_CREDENTIALS, startStack, tokenRequestCounter, waitUntil, type Stack } from './helpers/fixtures.js';

/** A virtual clock: wall and monotonic time move only when the test moves them. */
function virtualClock(start = Math.floor(Date.now() / 1000) * 1000) {
  let t = start;
  return { now: () => t, monotonic: () => t, advance: (ms: number) => (t += ms) };
}

const SHAPES: Record<string, OutageShape> = {
  '503': { kind: 'status', status: 503 },
  reset: { kind: 'reset' },
  refused: { kind: 'refuse' },
  hang: { kind: 'hang' },
};

let stack: Stack; // 8 s tokens: stale at 4 s, expired at 8 s

before(async () => {
  stack = await startStack({ ttl: 8 });
});
after(async () => {
  await stack.proxy.setShape(undefined);
  await stack.close();
});

/**
 * One run on an injected clock: `concurrency` callers every `stepMs` for `runS` seconds, the outage from `outageStartS`
 * for `outageS`. Between steps, background work is let settle (a hung background attempt ends at its bound, about a
 * second of real time). Returns the failed calls, and the virtual ms from the end of the outage to the first success.
 */
async function sweepRun(shape: OutageShape, o: { outageStartS: number; outageS: number; runS: number; stepMs: number; concurrency: number; config?: Partial<ClientConfiguration> }) {
  const clock = virtualClock();
  const client = new Client({ tokenUrl: stack.proxiedTokenUrl, clock, retry: { baseDelay: 1, maxDelay: 2 }, clientCredentialsAuthCredentials: SVC_CREDENTIALS, ...o.config });
  const manager = client.clientCredentialsAuthManager;
  let failed = 0;
  let down = false;
  let settled = 0;
  const errors: string[] = [];
  client.on('tokenRefreshed', () => settled++);
  client.on('refreshFailed', () => settled++);
  const start = clock.now();
  const end = start + (o.outageStartS + o.outageS) * 1000;
  let firstSuccessAfter: number | undefined;
  try {
    for (let at = 0; at <= o.runS * 1000; at += o.stepMs) {
      const nowDown = at >= o.outageStartS * 1000 && clock.now() < end;
      if (nowDown !== down) await stack.proxy.setShape(nowDown ? shape : undefined);
      down = nowDown;
      const results = await Promise.allSettled(Array.from({ length: o.concurrency }, () => manager.getToken()));
      for (const r of results) if (r.status === 'rejected') errors.push(`${at} ms: ${String(r.reason)}`);
      failed += results.filter((r) => r.status === 'rejected').length;
      if (!down && clock.now() >= end && firstSuccessAfter === undefined && results.some((r) => r.status === 'fulfilled')) firstSuccessAfter = clock.now() - end;
      await waitUntil(() => settled >= client.stats().backgroundRefreshes, 10_000);
      clock.advance(o.stepMs);
    }
  } finally {
    await stack.proxy.setShape(undefined);
    await client.close();
  }
  return { failed, errors, firstSuccessAfter };
}

describe('the guarantee for every outage shape, on an injected clock (8 s tokens)', () => {
  for (const [name, shape] of Object.entries(SHAPES)) {
    const fractions = name === 'hang' ? [0.3, 0.49] : [0.1, 0.3, 0.49];
    const phases = name === 'hang' ? 8 : 16;
    test(`${name}: outages of ${fractions.map((f) => `${f * 100} %`).join(', ')} of the lifetime, starting at ${phases} phases of the token's life, fail no request`, async (t) => {
      const L = 8;
      for (const fraction of fractions) {
        for (let phase = 0; phase < phases; phase++) {
          const outageStartS = L + (phase * L) / phases;
          const run = await sweepRun(shape, { outageStartS, outageS: fraction * L, runS: 3 * L, stepMs: 250, concurrency: 4 });
          assert.equal(run.failed, 0, `${name}, ${fraction * 100} %, phase ${phase}: ${run.failed} failed: ${run.errors.slice(0, 3).join('; ')}`);
        }
      }
      t.diagnostic(`${name}: ${fractions.length * phases} runs, 0 failed calls`);
    });
  }

  for (const name of ['503', 'reset', 'refused']) {
    test(`${name}: an outage longer than the token lives (1.5 lifetimes): the first caller after recovery succeeds within a second`, async () => {
      for (const phase of [0, 3, 6]) {
        const run = await sweepRun(SHAPES[name]!, { outageStartS: 8 + phase, outageS: 12, runS: 30, stepMs: 1_000, concurrency: 4 });
        assert.ok(run.firstSuccessAfter !== undefined && run.firstSuccessAfter <= 1_000, `phase ${phase}: first success ${run.firstSuccessAfter} ms after recovery`);
      }
    });
  }
});

describe('issue 18 defects (each failed on main 78eb502)', () => {
  test('Retry-After: 0 keeps the pacing: a caller in a loop for 3 s makes about 8 token requests, not 500', async () => {
    const client = new Client({ tokenUrl: stack.proxiedTokenUrl, clientCredentialsAuthCredentials: SVC_CREDENTIALS });
    const count = tokenRequestCounter(stack.op);
    const proxied = stack.proxy.requests;
    await stack.proxy.setShape({ kind: 'status', status: 503, headers: { 'retry-after': '0' } });
    try {
      const started = Date.now();
      while (Date.now() - started < 3_000) await client.clientCredentialsAuthManager.getToken().catch(() => undefined);
      const requests = stack.proxy.requests - proxied;
      assert.ok(requests <= 12, `${requests} token requests in 3 s`);
      assert.equal(count(), 0);
    } finally {
      await stack.proxy.setShape(undefined);
      await client.close();
    }
  });

  test('a background refresh honours Retry-After: told 10 s, it does not ask again for 3.1 s while the stale token is served', async () => {
    const clock = virtualClock();
    const client = new Client({ tokenUrl: stack.proxiedTokenUrl, clock, clientCredentialsAuthCredentials: SVC_CREDENTIALS });
    let failures = 0;
    client.on('refreshFailed', () => failures++);
    try {
      const token = await client.clientCredentialsAuthManager.getToken();
      clock.advance(4_000); // stale
      await stack.proxy.setShape({ kind: 'status', status: 503, headers: { 'retry-after': '10' } });
      const proxied = stack.proxy.requests;
      for (let i = 0; i < 31; i++) {
        assert.equal((await client.clientCredentialsAuthManager.getToken()).accessToken, token.accessToken);
        await waitUntil(() => failures >= client.stats().backgroundRefreshes);
        clock.advance(100);
      }
      assert.equal(stack.proxy.requests - proxied, 1, 'one background attempt, then the 10 s the server asked for');
    } finally {
      await stack.proxy.setShape(undefined);
      await client.close();
    }
  });

  test('50 keys serving stale tokens in an outage: about one token request per second per key (it was 2.7)', async () => {
    const clock = virtualClock();
    const client = new Client({ tokenUrl: stack.proxiedTokenUrl, clock, maxCachedTokens: 100, clientCredentialsAuthCredentials: SVC_CREDENTIALS });
    let settled = 0;
    client.on('refreshFailed', () => settled++);
    const keys = Array.from({ length: 50 }, (_, i) => ({ audience: `https://api-${i}.example` }));
    try {
      await Promise.all(keys.map((k) => client.clientCredentialsAuthManager.getToken(k)));
      clock.advance(4_000); // every token stale, 4 s left
      await stack.proxy.setShape({ kind: 'status', status: 503 });
      const proxied = stack.proxy.requests;
      for (let step = 0; step < 30; step++) { // 3 virtual seconds, every key asked every 100 ms
        await Promise.all(keys.map((k) => client.clientCredentialsAuthManager.getToken(k)));
        await waitUntil(() => settled >= client.stats().backgroundRefreshes, 10_000);
        clock.advance(100);
      }
      const perKeyPerSecond = (stack.proxy.requests - proxied) / 50 / 3;
      assert.ok(perKeyPerSecond <= 1.1, `${perKeyPerSecond.toFixed(2)} token requests per key per second`);
    } finally {
      await stack.proxy.setShape(undefined);
      await client.close();
    }
  });

  test('the breaker never fails a caller after recovery: 49 % outages of 8 s tokens at 40 phases, 0 ERR_CIRCUIT_OPEN', async () => {
    for (let phase = 0; phase < 40; phase++) {
      const run = await sweepRun(SHAPES['503']!, { outageStartS: 8 + (phase * 8) / 40, outageS: 3.92, runS: 20, stepMs: 100, concurrency: 2 });
      assert.equal(run.failed, 0, `phase ${phase}: ${run.errors.slice(0, 3).join('; ')}`);
    }
  });
});

describe('real time, 4 s tokens, token endpoint hanging (the bench S7 and S8 shapes)', () => {
  let short: Stack;
  before(async () => {
    short = await startStack({ ttl: 4 });
  });
  after(async () => {
    await short.proxy.setShape(undefined);
    await short.close();
  });

  /** 16 callers for `runMs`; the endpoint hangs from `fromMs` to `toMs` after the first token. */
  async function hangRun(fromMs: number, toMs: number, runMs: number) {
    const client = new Client({ baseUrl: short.api.url, tokenUrl: short.proxiedTokenUrl, clientCredentialsAuthCredentials: SVC_CREDENTIALS });
    const count = tokenRequestCounter(short.op);
    const proxied = short.proxy.requests;
    const errors: string[] = [];
    const successes: number[] = [];
    let running = 0;
    try {
      await client.clientCredentialsAuthManager.getToken();
      const t0 = Date.now();
      const timers = [setTimeout(() => void short.proxy.setShape({ kind: 'hang' }), fromMs), setTimeout(() => void short.proxy.setShape(undefined), toMs)];
      const loops = Promise.all(Array.from({ length: 16 }, async () => {
        running++;
        try {
          while (Date.now() - t0 < runMs) {
            try {
              await client.get('/things');
              successes.push(Date.now() - t0);
            } catch (error) {
              errors.push(`${Date.now() - t0} ms: ${String(error)}`);
            }
            await new Promise((r) => setTimeout(r, 5));
          }
        } finally {
          running--;
        }
      }));
      await Promise.race([loops, new Promise((r) => setTimeout(r, runMs + 3_000))]);
      for (const timer of timers) clearTimeout(timer);
      return { errors, successes, stuck: running, tokenRequests: short.proxy.requests - proxied, issued: count() };
    } finally {
      await short.proxy.setShape(undefined);
      await client.close();
    }
  }

  test('brief hang, 2.5–4.5 s, 16 callers for 8 s: 0 failed (it was: every caller stuck from 6 s)', async (t) => {
    const run = await hangRun(2_500, 4_500, 8_000);
    assert.deepEqual(run.errors.slice(0, 3), []);
    assert.equal(run.stuck, 0);
    assert.ok(run.successes.some((s) => s > 7_000), 'callers are served to the end');
    t.diagnostic(`brief hang: ${run.successes.length} requests, 0 failed, ${run.tokenRequests} token requests`);
  });

  test('long hang, 2.5–7 s, 16 callers for 9 s: the first success after the hang ends comes within about a second, nobody stuck, few token requests', async (t) => {
    const run = await hangRun(2_500, 7_000, 9_000);
    const first = run.successes.filter((s) => s >= 7_000).sort((a, b) => a - b)[0];
    assert.ok(first !== undefined && first - 7_000 <= 1_500, `first success ${first === undefined ? 'never' : `${first - 7_000} ms`} after the hang`);
    assert.equal(run.stuck, 0);
    assert.ok(run.tokenRequests <= 20, `${run.tokenRequests} token requests`);
    t.diagnostic(`long hang: first success ${first! - 7_000} ms after the endpoint was back; ${run.tokenRequests} token requests; ${run.errors.length} failed`);
  });

  test('cold hang: no token yet and the endpoint hangs for 2 s: the first success comes within about a second of its return (it was 30.1 s)', async () => {
    const client = new Client({ tokenUrl: short.proxiedTokenUrl, clientCredentialsAuthCredentials: SVC_CREDENTIALS });
    try {
      await short.proxy.setShape({ kind: 'hang' });
      const started = Date.now();
      const timer = setTimeout(() => void short.proxy.setShape(undefined), 2_000);
      await client.clientCredentialsAuthManager.getToken();
      clearTimeout(timer);
      const elapsed = Date.now() - started;
      assert.ok(elapsed <= 3_500, `first token after ${elapsed} ms`);
    } finally {
      await short.proxy.setShape(undefined);
      await client.close();
    }
  });

  test('a fleet sharing a token store paces its token requests as one: 4 Clients serving stale tokens in an outage make about one a second', async () => {
    const store = new MemoryTokenStore();
    const clients = Array.from({ length: 4 }, () => new Client({ tokenUrl: short.proxiedTokenUrl, tokenStore: store, clientCredentialsAuthCredentials: SVC_CREDENTIALS }));
    try {
      let expiresAtMs = Infinity;
      for (const client of clients) {
        const token = await client.clientCredentialsAuthManager.getToken();
        expiresAtMs = Math.min(expiresAtMs, (token.expiry ?? Infinity) * 1000);
      }
      await new Promise((r) => setTimeout(r, 2_100)); // stale (4 s tokens turn stale at 2 s)
      await short.proxy.setShape({ kind: 'status', status: 503 });
      const proxied = short.proxy.requests;
      const started = Date.now();
      // Up to 1.5 s of outage, but never into the token's last 600 ms (a loaded machine may start late): the claim is
      // about stale tokens being served, not about callers once the token has expired.
      while (Date.now() - started < 1_500 && Date.now() < expiresAtMs - 600) {
        for (const client of clients) await client.clientCredentialsAuthManager.getToken();
        await new Promise((r) => setTimeout(r, 10));
      }
      const requests = short.proxy.requests - proxied;
      assert.ok(requests <= 3, `${requests} token requests in 1.5 s from 4 Clients`);
    } finally {
      await short.proxy.setShape(undefined);
      await Promise.all(clients.map((c) => c.close()));
    }
  });

  test('a background refresh to a hanging endpoint does not keep the process alive (it held it 30 s)', async () => {
    const index = fileURLToPath(new URL('../src/index.js', import.meta.url));
    const script = `
      import { Client } from ${JSON.stringify(index)};
      const client = new Client({ tokenUrl: ${JSON.stringify(short.proxiedTokenUrl)}, clientCredentialsAuthCredentials: ${JSON.stringify(SVC_CREDENTIALS)} });
      await client.clientCredentialsAuthManager.getToken();
      console.log('token');
      await new Promise((r) => setTimeout(r, 2_300)); // stale (4 s tokens turn stale at 2 s)
      await client.clientCredentialsAuthManager.getToken(); // serves the stale token, starts a background refresh
      console.log('last call');
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let lastCallAt = 0;
    let hung = false;
    const hangingBefore = short.proxy.hanging;
    child.stdout.on('data', (d: Buffer) => {
      out += String(d);
      if (out.includes('token') && !hung) {
        hung = true;
        void short.proxy.setShape({ kind: 'hang' });
      }
      if (out.includes('last call') && lastCallAt === 0) lastCallAt = Date.now();
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += String(d)));
    try {
      const code = await new Promise<number | null>((resolve) => {
        const kill = setTimeout(() => child.kill('SIGKILL'), 20_000);
        child.on('exit', (c) => {
          clearTimeout(kill);
          resolve(c);
        });
      });
      assert.equal(code, 0, stderr);
      assert.ok(lastCallAt > 0, out);
      const lingered = Date.now() - lastCallAt;
      assert.ok(short.proxy.hanging > hangingBefore, 'the background refresh reached the hanging endpoint');
      assert.ok(lingered < 5_000, `the process exited ${lingered} ms after its last call`);
    } finally {
      await short.proxy.setShape(undefined);
    }
  });
});
