// The bench's statistics (bench/stats.ts): the quartiles a target is judged on (its lower quartile must clear it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { median, quartiles } from '../bench/stats.js';
import { spreadNote } from '../bench/report.js';

test('quartiles interpolate between ranks; the median agrees with median()', () => {
  assert.deepEqual(quartiles([1, 2, 3, 4, 5]), { q1: 2, median: 3, q3: 4 });
  assert.deepEqual(quartiles([4, 1, 3, 2]), { q1: 1.75, median: 2.5, q3: 3.25 });
  assert.deepEqual(quartiles([7]), { q1: 7, median: 7, q3: 7 });
  assert.ok(Number.isNaN(quartiles([]).q1));
});

test('property: q1 ≤ median ≤ q3, within the range, and the median is median()', () => {
  fc.assert(
    fc.property(fc.array(fc.double({ min: 0, max: 10, noNaN: true }), { minLength: 1, maxLength: 60 }), (values) => {
      const { q1, median: m, q3 } = quartiles(values);
      assert.ok(Math.min(...values) <= q1 && q1 <= m && m <= q3 && q3 <= Math.max(...values));
      assert.ok(Math.abs(m - median(values)) < 1e-9);
    }),
  );
});

test('a pair target missed on its lower quartile alone, ours no costlier in CPU, is called the rounds\' spread; any other miss is not', () => {
  const target = 'c=64: ours-fetch ≥ 0.95 of fetch (lower quartile)';
  const note = spreadNote({ id: 'S1', target, value: '0.984 [IQR 0.923–1.053] (12 interleaved rounds; CPU 227 vs 223.2 µs/req)', met: false });
  assert.match(note ?? '', /median \(0\.984\) clears 0\.95.*227 vs 223\.2 µs.*lower quartile \(0\.923\)/);
  // The median below the bound: a cost to explain, not spread.
  assert.equal(spreadNote({ id: 'S1', target, value: '0.929 [IQR 0.867–0.98] (12 interleaved rounds; CPU 25.9 vs 24.2 µs/req)', met: false }), undefined);
  // More CPU than the bare client (over 2 %): a cost of ours, whatever the median.
  assert.equal(spreadNote({ id: 'S1', target, value: '0.96 [IQR 0.93–0.98] (12 interleaved rounds; CPU 30 vs 25 µs/req)', met: false }), undefined);
  // A target of another shape (ahead of a peer) has no such note.
  assert.equal(spreadNote({ id: 'S1', target: 'c=1: ours-axios ahead of axios-oauth-client (lower quartile > 1)', value: '0.912× [IQR 0.869–0.941] (12 rounds)', met: false }), undefined);
});
