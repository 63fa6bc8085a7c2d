/**
 * docs/errors.md against `ErrorCode`, both ways: every exported code has a row in the table of docs/errors.md, and the
 * doc names no code that does not exist. Whoever adds a code (or removes one) gets told here what to write.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ErrorCode } from '../src/index.js';

const DOC = fileURLToPath(new URL('../../docs/errors.md', import.meta.url));

/** The codes of the doc's error table: the `code` column of each row, by code. */
function documentedRows(markdown: string): Map<string, string> {
  const rows = new Map<string, string>();
  for (const line of markdown.split('\n')) {
    const cells = line.split('|').map((cell) => cell.trim());
    // | Class | `code` | When |
    const match = cells.length >= 4 ? /^`(ERR_[A-Z0-9_]+)`$/.exec(cells[2]!) : null;
    if (match) rows.set(match[1]!, cells[1]!);
  }
  return rows;
}

test('docs/errors.md has a row for every ErrorCode', () => {
  const rows = documentedRows(readFileSync(DOC, 'utf8'));
  const missing = Object.entries(ErrorCode).filter(([, code]) => !rows.has(code));
  assert.deepEqual(
    missing.map(([name, code]) => `ErrorCode.${name} (${code})`),
    [],
    `docs/errors.md lacks a table row for: ${missing.map(([, code]) => code).join(', ')}. Add one per code to the table "| Class | \`code\` | When |" ` +
      '(the class that carries the code, the code in backticks, and when it is thrown).',
  );
});

test('docs/errors.md names no code that ErrorCode does not export', () => {
  const text = readFileSync(DOC, 'utf8');
  const known = new Set<string>(Object.values(ErrorCode));
  const named = new Set(text.match(/\bERR_[A-Z0-9_]+\b/g) ?? []);
  const stale = [...named].filter((code) => !known.has(code));
  assert.deepEqual(stale, [], `docs/errors.md names ${stale.join(', ')}, which ErrorCode (src/errors.ts) does not export: remove or rename it in the doc.`);
});

test('the table has each code once, and each row names an error class of src/errors.ts', async () => {
  const rows = documentedRows(readFileSync(DOC, 'utf8'));
  const table = readFileSync(DOC, 'utf8').split('\n').filter((line) => /^\|[^|]*\|\s*`ERR_/.test(line));
  assert.equal(table.length, rows.size, 'a code has two rows in docs/errors.md');
  const exported = (await import('../src/errors.js')) as Record<string, unknown>;
  for (const [code, cell] of rows) {
    const className = /^`(\w+)`/.exec(cell)?.[1];
    assert.ok(className, `the row of ${code} in docs/errors.md does not start with a class name in backticks`);
    const Class = exported[className] as (new (...args: never[]) => { code: string }) | undefined;
    assert.equal(typeof Class, 'function', `docs/errors.md names \`${className}\` for ${code}, but src/errors.ts has no such class`);
  }
});
