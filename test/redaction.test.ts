/**
 * The redaction engine itself (src/redaction.ts, src/redaction/), attacked directly: fast-check properties that hunt
 * for a registered value surviving in any wire form (mixed-case percent escapes, `\uXXXX` in either case, Go's and
 * .NET's HTML-safe JSON escapes, values inside other values, at the very start or end of a text) and for false
 * positives that destroy ordinary text; the cost of one pass with 1 and 4096 remembered tokens; heap per token.
 * The surfaces that use it (errors, events, CLI) are tested in securityReview, security and properties.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { MIN_SUBSTRING_LENGTH, REDACTED, Redactor } from '../src/redaction.js';
import { basicForms, wireForms } from './helpers/wireForms.js';

const TIME_LIMIT_MS = 4_000;

/** A value's forms as servers write them, spelled out here, not taken from the code under test. */
function serverForms(value: string): string[] {
  const hex = (c: string, upper: boolean): string => {
    const h = c.charCodeAt(0).toString(16).padStart(4, '0');
    return `\\u${upper ? h.toUpperCase() : h}`;
  };
  const json = JSON.stringify(value).slice(1, -1);
  return [
    ...wireForms(value),
    json.replace(/[^\x20-\x7e]/g, (c) => hex(c, true)), // Jackson: upper-case hex
    json.replace(/[<>&\u2028\u2029]/g, (c) => hex(c, false)), // Go encoding/json
    json.replace(/[<>&'+`]|[^\x20-\x7e]/g, (c) => hex(c, true)), // .NET System.Text.Json
  ];
}

/** `form` with each hex escape's digits in upper or lower case, as `pick` says (a mixed spelling). */
function mixCase(form: string, pick: (i: number) => boolean): string {
  let i = 0;
  return form.replace(/%[0-9A-Fa-f]{2}|\\u[0-9A-Fa-f]{4}/g, (m) => {
    const upper = pick(i++);
    return m[0] === '%' ? (upper ? m.toUpperCase() : m.toLowerCase()) : `\\u${upper ? m.slice(2).toUpperCase() : m.slice(2).toLowerCase()}`;
  });
}

const SPECIAL = [...'~+/&<>\'"!*()% =:.\\`_-', 'é', 'ü', '€', '😀', '\u2028'];
const secretArb = fc
  .array(fc.oneof(fc.constantFrom(...SPECIAL), fc.constantFrom(...'abcdefghijXYZ0123456789')), { minLength: MIN_SUBSTRING_LENGTH, maxLength: 40 })
  .map((parts) => parts.join(''));

test('a secret in any server encoding, hex in mixed case, anywhere in a text (start and end included) never survives', () => {
  fc.assert(
    // The documented limit: an escape that the text before a value begins and the value completes (`%` then `aa…`).
    fc.property(secretArb, fc.string({ maxLength: 20 }).filter((s) => !/(%[0-9a-fA-F]?|\\u[0-9a-fA-F]{0,3})$/.test(s)), fc.string({ maxLength: 20 }), fc.nat(), fc.func(fc.boolean()), (secret, before, after, which, pick) => {
      const redactor = new Redactor();
      redactor.add(secret);
      const forms = serverForms(secret);
      // Mixed case only where the encoder wrote the escapes (a literal `%aa` in the secret is the secret's own text).
      const chosen = forms[which % forms.length]!;
      const form = /[%\\]/.test(secret) ? chosen : mixCase(chosen, pick);
      const out = redactor.redact(`${before}${form}${after}`);
      assert.ok(!out.includes(form), `${JSON.stringify(form)} survived in ${JSON.stringify(out)}`);
      assert.ok(out.includes(REDACTED));
    }),
    { seed: 20_2, numRuns: 3_000, interruptAfterTimeLimit: TIME_LIMIT_MS },
  );
});

test('values inside other values, prefixes of one another and overlapping in the text: no part of any survives', () => {
  const alphabet = fc.constantFrom(...'abcAB');
  fc.assert(
    fc.property(fc.array(fc.array(alphabet, { minLength: 40, maxLength: 80 }).map((a) => a.join('')), { minLength: 1, maxLength: 2 }), fc.array(fc.tuple(fc.nat(), fc.nat(), fc.integer({ min: 8, max: 70 })), { minLength: 2, maxLength: 5 }), fc.integer({ min: 0, max: 24 }), (texts, cuts, extra) => {
      // Values cut from the texts themselves (so they overlap, nest and share prefixes), some tokens, some pinned.
      const redactor = new Redactor({ maxTokens: 4096 });
      const values: string[] = [];
      for (const [i, [t, at, length]] of cuts.entries()) {
        const text = texts[t % texts.length]!;
        const value = text.slice(at % (text.length - 8), (at % (text.length - 8)) + length);
        if (value.length < MIN_SUBSTRING_LENGTH) continue;
        values.push(value);
        if (i % 2 === 0) redactor.add(value);
        else redactor.addToken(value);
      }
      for (let i = 0; i < extra; i++) redactor.addToken(`${randomBytes(12).toString('hex')}`); // past the few-values path
      for (const text of texts) {
        const out = redactor.redact(text);
        for (const value of values) assert.ok(!out.includes(value), `${value} survived in ${out} (from ${text})`);
      }
    }),
    { seed: 20_3, numRuns: 2_000, interruptAfterTimeLimit: TIME_LIMIT_MS },
  );
});

test('a value nested in a longer one that is found later leaves no head of the longer one (regression)', () => {
  const long = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOP';
  const redactor = new Redactor();
  redactor.add(long);
  redactor.add(long.slice(4, 12));
  redactor.add(long.slice(24, 32));
  assert.equal(redactor.redact(`xx${long}yy`), `xx${REDACTED}yy`);
  for (let i = 0; i < 20; i++) redactor.addToken(randomBytes(16).toString('hex')); // the indexed scan too
  assert.equal(redactor.redact(`xx${long}yy`), `xx${REDACTED}yy`);
});

test('mixed-case percent escapes, upper-case \\u hex (Jackson), Go and .NET HTML-safe JSON escapes are redacted', () => {
  const redactor = new Redactor();
  redactor.add('Sec+ret/With~Tilde<é>&');
  for (const text of [
    'client_secret=Sec%2bret%2FWith%7eTilde%3C%C3%A9%3e%26',
    '"Sec+ret\\/With~Tilde<\\u00E9>&"',
    '"Sec+ret/With~Tilde\\u003cé\\u003e\\u0026"',
    '"Sec\\u002Bret/With~Tilde\\u003C\\u00E9\\u003E\\u0026"',
  ]) {
    assert.equal(redactor.redact(`said: ${text}.`), `said: ${text.startsWith('"') ? `"${REDACTED}"` : `client_secret=${REDACTED}`}.`, text);
  }
});

test('the Basic credentials (RFC 6749-encoded and raw) and a token inside a JWT-like text are redacted', () => {
  fc.assert(
    fc.property(secretArb, fc.stringMatching(/^[a-z0-9._~-]{1,12}$/), (secret, id) => {
      const redactor = new Redactor();
      redactor.add(secret);
      redactor.addBasic(id, secret);
      const token = `eyJhbGciOiJIUzI1NiJ9.${randomBytes(24).toString('base64url')}.${randomBytes(32).toString('base64url')}`;
      redactor.addToken(token);
      for (const basic of basicForms(id, secret)) assert.ok(!redactor.redact(`Authorization: Basic ${basic}`).includes(basic));
      assert.equal(redactor.redact(`{"access_token":"${token}"}`), `{"access_token":"${REDACTED}"}`);
    }),
    { seed: 20_4, numRuns: 300, interruptAfterTimeLimit: TIME_LIMIT_MS },
  );
});

test('no false positives: a text without any known value is returned unchanged, and the text around a value survives', () => {
  fc.assert(
    fc.property(
      fc.array(fc.stringMatching(/^[a-z~+/%]{8,30}$/), { minLength: 1, maxLength: 30 }),
      fc.stringMatching(/^[A-Z0-9 ,.:{}"\[\]=&\n]{0,200}$/),
      fc.stringMatching(/^[A-Z0-9 ,.:{}"\[\]=&\n]{0,50}$/),
      (values, text, tail) => {
        const redactor = new Redactor();
        for (const value of values) redactor.addToken(value);
        assert.equal(redactor.redact(text), text);
        const value = values[0]!;
        assert.equal(redactor.redact(`${text}${value}${tail}`), `${text}${REDACTED}${tail}`);
      },
    ),
    { seed: 20_5, numRuns: 1_000, interruptAfterTimeLimit: TIME_LIMIT_MS },
  );
});

test(`short secrets (1 to ${MIN_SUBSTRING_LENGTH - 1} characters) are redacted as whole values only, so ordinary text that contains them survives`, () => {
  fc.assert(
    fc.property(fc.stringMatching(/^[a-z0-9]{1,7}$/), (secret) => {
      const redactor = new Redactor();
      redactor.add(secret);
      assert.equal(redactor.redact(secret), REDACTED);
      assert.equal(redactor.redact(`{"client_secret":"${secret}","items":[1,2]}`), `{"client_secret":"${REDACTED}","items":[1,2]}`);
      assert.equal(redactor.redact(`grant_type=client_credentials&client_secret=${secret}`), `grant_type=client_credentials&client_secret=${REDACTED}`);
      assert.equal(redactor.redact(`Authorization: Bearer ${secret}`), `Authorization: Bearer ${REDACTED}`);
      const prose = `The ${secret}s of ${secret}x were listed.`;
      assert.equal(redactor.redact(prose), prose);
    }),
    { seed: 20_6, numRuns: 500, interruptAfterTimeLimit: TIME_LIMIT_MS },
  );
});

test('a text shorter than the hashing window, and texts at the threshold length, are handled', () => {
  const redactor = new Redactor();
  redactor.add('12345678');
  for (let i = 0; i < 40; i++) redactor.addToken(randomBytes(8).toString('hex'));
  for (const text of ['', 'a', 'abc', '1234567', '12345678', 'x12345678', '12345678x']) {
    assert.equal(redactor.redact(text), text.replace('12345678', REDACTED));
  }
});

test('a forgotten token leaves the index within a batch; the last maxTokens are always redacted', () => {
  const redactor = new Redactor({ maxTokens: 4 });
  const tokens = Array.from({ length: 60 }, () => randomBytes(12).toString('hex'));
  for (const [i, token] of tokens.entries()) {
    redactor.addToken(token);
    for (const recent of tokens.slice(Math.max(0, i - 3), i + 1)) assert.equal(redactor.redact(recent), REDACTED);
  }
  assert.equal(redactor.redact(tokens[0]!), tokens[0]);
});

const body8mb = (): string => {
  const chunk = `{"id":12345,"name":"${'n'.repeat(40)}","token_like":"eyJhbGciOiJSUzI1NiJ9.${'A'.repeat(60)}","url":"https:\\/\\/api.example\\/x"},`;
  return chunk.repeat(Math.ceil(8_300_000 / chunk.length));
};

test('redacting an 8 MB body with 4096 remembered tokens costs about what it costs with 1 (generous bound)', () => {
  const body = body8mb();
  const timeWith = (tokens: number): number => {
    const redactor = new Redactor({ maxTokens: tokens });
    redactor.add('Xy7~Q.secret_value-with~tilde');
    for (let i = 0; i < tokens; i++) redactor.addToken(`eyJhbGciOiJSUzI1NiJ9.${randomBytes(60).toString('base64url')}.${randomBytes(64).toString('base64url')}`);
    let best = Infinity;
    for (let run = 0; run < 3; run++) {
      const started = performance.now();
      assert.equal(redactor.redact(body).length, body.length);
      best = Math.min(best, performance.now() - started);
    }
    return best;
  };
  const one = timeWith(1);
  const many = timeWith(4096);
  assert.ok(many < one * 10 + 1_500, // the old per-value scan took ~30 s here
    `1 token: ${one.toFixed(0)} ms, 4096 tokens: ${many.toFixed(0)} ms`);
});

test('the redactor holds well under 1 KB of heap per remembered token (typed arrays included)', () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const count = 20_000;
  const tokens = Array.from({ length: count }, () => Buffer.from(`eyJhbGciOiJSUzI1NiJ9.${randomBytes(60).toString('base64url')}.${randomBytes(64).toString('base64url')}`).toString('latin1'));
  const used = (): number => {
    gc();
    gc();
    const { heapUsed, arrayBuffers } = process.memoryUsage();
    return heapUsed + arrayBuffers;
  };
  const before = used();
  const redactor = new Redactor({ maxTokens: count });
  for (const token of tokens) redactor.addToken(token);
  redactor.redact('build the index');
  const perToken = (used() - before) / count;
  assert.ok(redactor.leaks(tokens[0]!));
  // Measured about 150 bytes (the first index took about 900, most of the 1 KB budget of a cached token).
  assert.ok(perToken < 400, `${perToken.toFixed(0)} bytes per token`);
});

test('bytes (the CLI writes a download as it came): mixed-case escapes, non-ASCII and nested values are redacted, other bytes kept', () => {
  const redactor = new Redactor();
  redactor.add('Sécret~value/with+signs');
  const long = 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOP';
  redactor.add(long);
  redactor.add(long.slice(4, 12));
  redactor.add(long.slice(24, 32));
  for (let i = 0; i < 20; i++) redactor.addToken(randomBytes(16).toString('hex'));
  const body = Buffer.concat([Buffer.from([0xff, 0x00]), Buffer.from(`S%C3%a9cret%7evalue%2Fwith%2bsigns|Sécret~value/with+signs|${long}`), Buffer.from([0xfe])]);
  const out = Buffer.from(redactor.redactBytes(body));
  assert.deepEqual(out, Buffer.concat([Buffer.from([0xff, 0x00]), Buffer.from(`${REDACTED}|${REDACTED}|${REDACTED}`), Buffer.from([0xfe])]));
});

/** HTML escapes as servers' error pages write them (a debug page quoting the POST data: Django, Flask/Werkzeug, PHP, Go). */
function htmlForms(value: string): string[] {
  const escape = (map: Record<string, string>) => value.replace(/[&<>"']/g, (c) => map[c]!);
  return [
    escape({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#x27;' }), // Python html.escape, Django
    escape({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#039;' }), // PHP htmlspecialchars
    escape({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&#34;', "'": '&#39;' }), // Go html/template, Werkzeug
  ];
}

test('a secret HTML-escaped by a server\'s error page (Django\'s debug page, PHP, Go templates) never survives', () => {
  fc.assert(
    fc.property(secretArb.filter((s) => /[&<>"']/.test(s)), fc.nat(), (secret, which) => {
      const redactor = new Redactor();
      redactor.add(secret);
      const forms = htmlForms(secret);
      const form = forms[which % forms.length]!;
      const out = redactor.redact(`<td>client_secret</td><td class="code"><pre>${form}</pre></td>`);
      assert.ok(!out.includes(form), `${JSON.stringify(form)} survived in ${JSON.stringify(out)}`);
    }),
    { seed: 20_3, numRuns: 1_000, interruptAfterTimeLimit: TIME_LIMIT_MS },
  );
});
