// S9's method (bench/broker.ts): the slice order, the round ratio, the "other work" verdict and the section it renders.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { machineBusy, renderBrokerSection, roundRatio, sliceOrder, withBrokerSection, brokerSectionOf, type BrokerBenchResults } from '../bench/broker.js';

const NAMES = ['direct', 'floor', 'fastify', 'broker', 'nginx'];

test('property: over as many cycles as contenders, each contender runs once in each place, and each cycle runs every contender once', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 8 }), fc.nat(50), (count, round) => {
      const names = NAMES.concat(['a', 'b', 'c']).slice(0, count);
      const places = names.map(() => new Set<string>());
      for (let cycle = 0; cycle < names.length; cycle++) {
        const order = sliceOrder(names, round, cycle);
        assert.deepEqual([...order].sort(), [...names].sort());
        order.forEach((name, i) => places[i]!.add(name));
      }
      for (const place of places) assert.equal(place.size, names.length);
    }),
  );
});

test('the order rotates from one cycle to the next and from one round to the next', () => {
  assert.deepEqual(sliceOrder(NAMES, 0, 0), NAMES);
  assert.deepEqual(sliceOrder(NAMES, 0, 1), ['floor', 'fastify', 'broker', 'nginx', 'direct']);
  assert.deepEqual(sliceOrder(NAMES, 1, 0), sliceOrder(NAMES, 0, 1));
});

test('a round ratio is requests per ms over all slices, not the mean of per-slice ratios', () => {
  // 900 requests in 100 ms against 1000 in 100 ms: 0.9; a slice that ran long counts for its length.
  assert.equal(roundRatio({ count: 900, ms: 100 }, { count: 1000, ms: 100 }), 0.9);
  assert.equal(roundRatio({ count: 900 + 1900, ms: 100 + 200 }, { count: 1000 + 1000, ms: 100 + 100 }), (2800 / 300) / (2000 / 200));
});

test('the machine counts as busy from the other processes\' measured share during the run, never from the bench itself or a load average left by earlier work', () => {
  assert.equal(machineBusy(0), false);
  assert.equal(machineBusy(0.049), false);
  assert.equal(machineBusy(0.05), true);
});

function results(overrides: Partial<BrokerBenchResults> = {}): BrokerBenchResults {
  const row = (name: string, label: string) => ({ name, label, c1: 1000, c64: 9000, p50: 0.5, p99: 2, p99Added: name === 'direct' ? null : 0.4, cpuUs1: name === 'direct' ? null : 100, cpuUs64: name === 'direct' ? null : 45, loadBusy1: 0.5, loadBusy64: 0.9, errors: 0 });
  const cell = { median: 0.97, q1: 0.95, q3: 0.99, rounds: [0.95, 0.97, 0.99] };
  return {
    date: '2026-12-07T16:00:00.000Z',
    command: 'node dist/bench/run.js --only S9',
    machine: 'v20, 2 × cpu',
    cores: 2,
    loadAverageAtStart: [0.1, 0.2, 0.3],
    otherWork: 0.01,
    busy: false,
    pinned: 'proxy CPU 0, upstream and load CPU 1',
    swing: 1.2,
    rounds: 15,
    cycles: 4,
    sliceMs: 150,
    warmupMs: 25,
    probeMs: 500,
    rows: [row('direct', 'straight'), row('floor', 'floor'), row('broker', 'broker')],
    perRound: {},
    ratios: { 'broker/floor': { c1: cell, c64: cell } },
    targets: [
      { target: 'c=1: ≥ 0.95 of the minimal undici proxy', value: '0.97 [IQR 0.95–0.99]', met: true },
      { target: 'c=64: the Node floor against nginx (for reference)', value: '0.6 [IQR 0.55–0.65]', met: null },
    ],
    ...overrides,
  };
}

test('the section states the load average before the start, and warns only when the run says the machine was busy', () => {
  const quiet = renderBrokerSection(results());
  assert.match(quiet, /load average before the bench started 0\.1, 0\.2, 0\.3/);
  assert.doesNotMatch(quiet, /Other work shared the machine/);
  assert.match(renderBrokerSection(results({ busy: true, otherWork: 0.12, loadAverageAtStart: [1.2, 1, 1] })), /\*\*Other work shared the machine\*\* \(other processes used 12\.0 % of its CPU time during the run\)/);
});

test('a reference row has no verdict; a target shows whether it was met', () => {
  const section = renderBrokerSection(results());
  assert.match(section, /\| c=1: ≥ 0\.95 of the minimal undici proxy \| 0\.97 \[IQR 0\.95–0\.99\] \| yes \|/);
  assert.match(section, /\| c=64: the Node floor against nginx \(for reference\) \| 0\.6 \[IQR 0\.55–0\.65\] \| – \|/);
});

test('the section replaces the previous one in docs/bench.md and can be read back', () => {
  const section = renderBrokerSection(results());
  const doc = withBrokerSection(`# Bench\n\ntext\n\n${renderBrokerSection(results({ date: '2020-01-01T00:00:00.000Z' }))}`, section);
  assert.equal(brokerSectionOf(doc), section);
  assert.equal(doc.split('## S9').length, 2);
});
