/**
 * One source of defaults: the Client resolves to `DEFAULTS` (src/defaults.ts), docs/configuration.md's option table
 * shows the same values, every option of the Client has a row there, and the options' TSDoc states the same defaults.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { DEFAULTS } from '../src/defaults.js';
import { CLIENT_OPTION_KINDS } from '../src/optionKeys.js';
import { resolveConfiguration } from '../src/configuration.js';

const root = new URL('../../', import.meta.url);
const configurationMd = readFileSync(new URL('docs/configuration.md', root), 'utf8');

/** A default as the docs write it: `65536`, `true`, `client_secret_basic`, `{ maxAttempts: 4, baseDelay: 200 }`. */
function format(value: unknown): string {
  if (typeof value === 'object' && value !== null) return `{ ${Object.entries(value).map(([k, v]) => `${k}: ${format(v)}`).join(', ')} }`;
  return String(value);
}

/** The rows of the "Client options" table: option cell → default cell. */
function optionRows(): Map<string, string> {
  const section = configurationMd.slice(configurationMd.indexOf('## Client options'), configurationMd.indexOf('\n## ', configurationMd.indexOf('## Client options') + 3));
  const rows = new Map<string, string>();
  for (const line of section.split('\n')) {
    const cells = line.split(/(?<!\\)\|/).map((c) => c.trim());
    const name = /^`(?:….)?(\w+)[`.]/.exec(cells[1] ?? '')?.[1];
    if (name && cells[2] !== undefined) rows.set(name, cells[2]);
  }
  return rows;
}

test('the resolver applies DEFAULTS', () => {
  const resolved = resolveConfiguration({ tokenUrl: 'https://auth.example.com/token', clientCredentialsAuthCredentials: { oAuthClientId: 'id', oAuthClientSecret: 'a-long-enough-secret' } });
  assert.equal(resolved.timeout, DEFAULTS.timeout);
  assert.equal(resolved.tokenRequestTimeout, DEFAULTS.tokenRequestTimeout);
  assert.equal(resolved.maxTokenResponseBytes, DEFAULTS.maxTokenResponseBytes);
  assert.deepEqual(resolved.lifetime, { defaultLifetime: DEFAULTS.defaultTokenLifetime, maxLifetime: DEFAULTS.maxTokenLifetime });
  assert.deepEqual(resolved.retry, DEFAULTS.retry);
  assert.deepEqual(resolved.circuitBreaker, DEFAULTS.circuitBreaker);
  assert.equal(resolved.retryOnUnauthorized, DEFAULTS.retryOnUnauthorized);
  assert.equal(resolved.maxCachedTokens, DEFAULTS.maxCachedTokens);
  assert.equal(resolved.tokenStoreTimeout, DEFAULTS.tokenStoreTimeout);
  assert.equal(resolved.userAgent, DEFAULTS.userAgent);
  assert.equal(resolved.allowInsecureHttp, DEFAULTS.allowInsecureHttp);
  assert.equal(resolved.maxResponseBytes, DEFAULTS.maxResponseBytes);
  assert.equal(resolved.closeTimeout, DEFAULTS.closeTimeout);
  assert.equal(resolved.credentials!.clockSkew, DEFAULTS.clockSkew);
  assert.equal(resolved.credentials!.clientAuth.method, DEFAULTS.clientAuthMethod);
});

test('docs/configuration.md has a row for every option of the Client, and each default there is DEFAULTS\'s', () => {
  const rows = optionRows();
  const undocumented = Object.keys(CLIENT_OPTION_KINDS).filter((name) => !rows.has(name));
  assert.deepEqual(undocumented, [], 'options without a row in docs/configuration.md\'s "Client options" table');
  for (const [name, value] of Object.entries(DEFAULTS)) {
    const cell = rows.get(name);
    assert.ok(cell !== undefined, `docs/configuration.md has no row for \`${name}\``);
    assert.ok(cell.includes(`\`${format(value)}\``), `docs/configuration.md: the default of \`${name}\` is \`${format(value)}\` (src/defaults.ts), the table says ${cell}`);
  }
});

test('the TSDoc of each option states DEFAULTS\'s value', () => {
  const options = readFileSync(new URL('src/types/options.ts', root), 'utf8');
  const resilience = readFileSync(new URL('src/types/resilience.ts', root), 'utf8');
  /** The TSDoc just above `name?:` or `name:` in `source`. */
  const docOf = (source: string, name: string): string => {
    const at = source.search(new RegExp(`\\n\\s+${name}\\??:`));
    assert.ok(at > 0, `no property ${name}`);
    const before = source.slice(0, at);
    return before.slice(before.lastIndexOf('/**'));
  };
  const states = (doc: string, value: unknown): boolean =>
    typeof value === 'number' ? new RegExp(`Default[^.]*?\\b(${value}|${value.toLocaleString('en-US')})\\b`).test(doc) : new RegExp(`Default[^.]*?\`?${String(value)}\`?`).test(doc);
  const checks: [string, string, unknown][] = [
    ...(['timeout', 'tokenRequestTimeout', 'maxTokenResponseBytes', 'defaultTokenLifetime', 'maxTokenLifetime', 'maxCachedTokens', 'tokenStoreTimeout', 'maxResponseBytes', 'closeTimeout', 'retryOnUnauthorized', 'allowInsecureHttp', 'clockSkew', 'clientAuthMethod'] as const).map(
      (name): [string, string, unknown] => [name, docOf(options, name), DEFAULTS[name]],
    ),
    ...Object.entries(DEFAULTS.retry).map(([name, value]): [string, string, unknown] => [`retry.${name}`, docOf(resilience, name), value]),
    ...Object.entries(DEFAULTS.circuitBreaker).map(([name, value]): [string, string, unknown] => [`circuitBreaker.${name}`, docOf(resilience, name), value]),
  ];
  const wrong = checks.filter(([, doc, value]) => !states(doc, value)).map(([name, , value]) => `${name} (should say Default ${format(value)})`);
  assert.deepEqual(wrong, [], 'TSDoc in src/types/ that does not state the default of src/defaults.ts');
});
