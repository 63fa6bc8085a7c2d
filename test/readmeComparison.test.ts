/**
 * The README's comparison table quotes the bench: each figure there must be the one docs/bench.md reports (which
 * `npm run bench` writes), so that a new bench run that changes a figure fails here until the README follows.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

const root = new URL('../../', import.meta.url);
const readme = readFileSync(new URL('README.md', root), 'utf8');
const bench = readFileSync(new URL('docs/bench.md', root), 'utf8');

/** The rows of the first table after `heading` in docs/bench.md, as header → cell maps keyed by the first cell. */
function benchTable(heading: string): Map<string, Record<string, string>> {
  const start = bench.indexOf(`\n${heading}`);
  assert.ok(start >= 0, `docs/bench.md has no ${heading}`);
  const after = bench.slice(start).split('\n');
  const first = after.findIndex((l) => l.startsWith('|'));
  const end = after.findIndex((l, i) => i > first && !l.startsWith('|'));
  const lines = after.slice(first, end < 0 ? undefined : end);
  const cells = (line: string) => line.split('|').slice(1, -1).map((c) => c.trim());
  const header = cells(lines[0]!);
  const rows = new Map<string, Record<string, string>>();
  for (const line of lines.slice(2)) {
    const row = cells(line);
    if (row.length !== header.length) break;
    rows.set(row[0]!, Object.fromEntries(header.map((h, i) => [h, row[i]!])));
  }
  return rows;
}

const PEERS: Record<string, string> = {
  'this library': 'oauth-client-credentials (ours)',
  'openid-client': 'openid-client v6',
  '@badgateway/oauth2-client': '@badgateway/oauth2-client',
  'simple-oauth2': 'simple-oauth2 + fetch',
  'axios-oauth-client': 'axios + axios-oauth-client',
  'MSAL Node': 'MSAL Node + fetch',
};

/** The README comparison row whose first cell starts with `label`, by column. */
function readmeRow(label: string): Record<string, string> {
  const table = readme.slice(readme.indexOf('### Compared with other libraries')).split('\n').filter((l) => l.startsWith('|'));
  const cells = (line: string) => line.split('|').slice(1, -1).map((c) => c.trim().replace(/\*\*/g, ''));
  const header = cells(table[0]!);
  const row = table.map(cells).find((r) => r[0]!.startsWith(label));
  assert.ok(row, `README comparison has no row "${label}"`);
  return Object.fromEntries(header.map((h, i) => [h, row[i]!]));
}

const number = (text: string): number => Number(text.trim().replace(/,/g, '').split(/\s/)[0]);

test('S2: token requests for 1,000 concurrent calls on a cold start', () => {
  const s2 = benchTable('## S2');
  const row = readmeRow('Token requests for 1,000 calls');
  for (const [column, contender] of Object.entries(PEERS)) assert.equal(number(row[column]!), number(s2.get(contender)!['Token requests']!), column);
});

test('S3: calls that waited for a token, and calls that failed, at rollover', () => {
  const s3 = benchTable('## S3');
  const waited = readmeRow('Calls that waited');
  const failed = readmeRow('Calls failed by a token');
  for (const [column, contender] of Object.entries(PEERS)) {
    assert.equal(number(waited[column]!), number(s3.get(contender)!['Slow (≥ token latency)']!), `waited: ${column}`);
    assert.equal(number(failed[column]!), number(s3.get(contender)!['Failures']!), `failed: ${column}`);
  }
});

test('S7: failed calls per run during a brief outage, as the lowest–highest of the runs', () => {
  const s7 = benchTable('## S7');
  const row = readmeRow('Failed calls while the token endpoint is down');
  for (const [column, contender] of Object.entries(PEERS)) {
    const runs = s7.get(contender)!['Failed (per run)']!.split('/').map(number);
    const expected = Math.min(...runs) === Math.max(...runs) ? String(runs[0]) : `${Math.min(...runs).toLocaleString('en-US')}–${Math.max(...runs).toLocaleString('en-US')}`;
    assert.equal(row[column], expected, column);
  }
});

test('every library in the comparison has a figure or an answer in every row', () => {
  const table = readme.slice(readme.indexOf('### Compared with other libraries')).split('\n').filter((l) => l.startsWith('|'));
  const header = table[0]!.split('|').slice(1, -1).map((c) => c.trim());
  for (const column of Object.keys(PEERS)) assert.ok(header.includes(column), `README comparison has no column ${column}`);
  for (const line of table.slice(2)) assert.doesNotMatch(line, /not measured/i, line);
});

test('MSAL Node with tokens 5 minutes longer: the figures the paragraph under the table quotes', () => {
  const paragraph = readme.slice(readme.indexOf('### Compared with other libraries')).split('\n\n').find((p) => p.startsWith('MSAL Node'));
  assert.ok(paragraph, 'README has no paragraph on MSAL Node under the comparison');
  const text = paragraph.replace(/\s+/g, ' ');
  const contender = 'MSAL Node + fetch, tokens 300 s longer';
  const waited = /(\d[\d,]*) calls still waited/.exec(text);
  assert.ok(waited, 'the paragraph quotes how many calls still waited');
  assert.equal(number(waited[1]!), number(benchTable('## S3').get(contender)!['Slow (≥ token latency)']!));
  const runs = /failed calls in (\w+) of (\w+) runs/.exec(text);
  assert.ok(runs, 'the paragraph says in how many runs the outage failed calls');
  const failed = benchTable('## S7').get(contender)!['Failed (per run)']!.split('/').map(number);
  const words = ['none', 'one', 'two', 'three', 'four', 'five'];
  assert.equal(runs[1], words[failed.filter((n) => n > 0).length]);
  assert.equal(runs[2], words[failed.length]);
});
