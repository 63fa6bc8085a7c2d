// The bench's statistics (bench/stats.ts): the quartiles a target is judged on (its lower quartile must clear it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { median, quartiles } from '../bench/stats.js';

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
