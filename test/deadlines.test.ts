// Deadlines: the one timer that bounds the bodies being read (src/http/deadlines.ts), on real timers with wide margins.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Deadlines } from '../src/http/deadlines.js';

test('deadlines expire in order, each at its own time; a deleted one never runs; an earlier one re-arms the timer', async () => {
  const deadlines = new Deadlines();
  const fired: string[] = [];
  const start = Date.now();
  const at: Record<string, number> = {};
  const add = (name: string, ms: number) => deadlines.add(start + ms, () => {
    fired.push(name);
    at[name] = Date.now() - start;
  });
  add('late', 400);
  const gone = add('deleted', 300);
  add('early', 100); // earlier than the armed one: the timer is re-armed for it
  deadlines.delete(gone);
  assert.equal(deadlines.size, 2);
  await sleep(250);
  assert.deepEqual(fired, ['early']);
  await sleep(1_500);
  assert.deepEqual(fired, ['early', 'late']);
  assert.ok(at['early']! >= 99 && at['late']! >= 399, JSON.stringify(at));
  assert.equal(deadlines.size, 0);
});

test('a deadline added while the timer waits for a later one does not re-arm it, and still runs', async () => {
  const deadlines = new Deadlines();
  const fired: number[] = [];
  const now = Date.now();
  for (let i = 1; i <= 50; i++) deadlines.add(now + 50 + i * 2, () => fired.push(i));
  await sleep(1_500);
  assert.deepEqual(fired, Array.from({ length: 50 }, (_, i) => i + 1));
});
