/**
 * Redaction cost and memory: `node --expose-gc dist/bench/redaction.js` (not part of `npm run bench`).
 * Time to redact a 1 KB and an 8 MB JSON body with 1, 16, 256 and 4096 remembered tokens (best of 5), and the live
 * heap per remembered token (after forced GC) with 1,000 and 100,000 JWT-shaped tokens.
 */
import { randomBytes } from 'node:crypto';
import { Redactor } from '../src/redaction.js';

const SECRET = 'Xy7~Q.secret_value-with~tilde';
const jwt = (): string => Buffer.from(`eyJhbGciOiJSUzI1NiJ9.${randomBytes(60).toString('base64url')}.${randomBytes(64).toString('base64url')}`).toString('latin1'); // flat, as a parsed response holds it
const chunk = `{"id":12345,"name":"${'n'.repeat(40)}","token_like":"eyJhbGciOiJSUzI1NiJ9.${'A'.repeat(60)}","url":"https:\\/\\/api.example\\/x"},`;
const big = chunk.repeat(Math.ceil(8_300_000 / chunk.length));
const small = chunk.repeat(Math.ceil(1024 / chunk.length));

function time(redactor: Redactor, body: string, runs: number): number {
  let best = Infinity;
  for (let run = 0; run < runs; run++) {
    const started = performance.now();
    redactor.redact(body);
    best = Math.min(best, performance.now() - started);
  }
  return best;
}

for (const tokens of [1, 16, 256, 4096]) {
  const redactor = new Redactor({ maxTokens: tokens });
  redactor.add(SECRET);
  redactor.addBasic('client-id', SECRET);
  for (let i = 0; i < tokens; i++) redactor.addToken(jwt());
  redactor.redact('warm up the index');
  const smallMs = time(redactor, small, 2000);
  const bigMs = time(redactor, big, 5);
  console.log(`${String(tokens).padStart(5)} tokens: 1 KB ${(smallMs * 1000).toFixed(1)} µs, 8.3 MB ${bigMs.toFixed(1)} ms`);
}

const gc = (globalThis as { gc?: () => void }).gc;
if (gc) {
  for (const count of [1_000, 100_000]) {
    const tokens = Array.from({ length: count }, jwt);
    gc();
    gc();
    const before = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
    const redactor = new Redactor({ maxTokens: count });
    for (const token of tokens) redactor.addToken(token);
    redactor.redact('build the index now');
    gc();
    gc();
    const after = process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
    console.log(`${count} tokens (${tokens[0]!.length} chars each, strings held by the caller): ${((after - before) / count).toFixed(0)} bytes of heap (typed arrays included) per token`);
    if (redactor.size < 0) console.log('unreachable');
  }
} else console.log('(run with --expose-gc for the heap figures)');
