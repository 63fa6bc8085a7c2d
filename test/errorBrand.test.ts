/**
 * `isClientCredentialsError(e, code?)` recognises the errors of another installed copy of the package (a second
 * `dist/src` loaded from another folder, as two versions in node_modules would be), where `instanceof` cannot; and the
 * error classes a caller may meet are exported (TokenLifetimeError, RuntimeUnsupportedError).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import fc from 'fast-check';
import * as ours from '../src/index.js';

const root = join(import.meta.dirname, '..', '..');
let dir: string;
let other: typeof ours;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'second-copy-'));
  await cp(join(root, 'dist', 'src'), join(dir, 'dist', 'src'), { recursive: true });
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'oauth-client-credentials-copy', type: 'module' }));
  await symlink(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
  other = (await import(pathToFileURL(join(dir, 'dist', 'src', 'index.js')).href)) as typeof ours;
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('a second copy\'s errors are recognised by the brand, not by instanceof, and the code narrows', () => {
  assert.notEqual(other.ClientCredentialsError, ours.ClientCredentialsError, 'two copies, two classes');
  const theirs = new other.TimeoutError('slow', 5);
  assert.equal(theirs instanceof ours.ClientCredentialsError, false);
  assert.equal(ours.isClientCredentialsError(theirs), true);
  assert.equal(ours.isClientCredentialsError(theirs, ours.ErrorCode.Timeout), true);
  assert.equal(ours.isClientCredentialsError(theirs, ours.ErrorCode.Network), false);
  assert.equal(other.isClientCredentialsError(new ours.InvalidOptionError('x', 'is bad'), other.ErrorCode.InvalidOption), true);
  // A real failure from the other copy, thrown before any I/O.
  let thrown: unknown;
  try {
    new other.Client({ clientId: 'svc' } as never);
  } catch (error) {
    thrown = error;
  }
  assert.ok(ours.isClientCredentialsError(thrown, ours.ErrorCode.InvalidOption));
  if (ours.isClientCredentialsError(thrown, ours.ErrorCode.InvalidOption)) {
    const code: 'ERR_INVALID_OPTION' = thrown.code; // narrowed at the type level too
    assert.equal(code, 'ERR_INVALID_OPTION');
  }
});

test('look-alikes are not branded: a plain Error with a code, an object, null, a primitive', () => {
  const fake = Object.assign(new Error('x'), { code: 'ERR_TIMEOUT', name: 'TimeoutError' });
  for (const value of [fake, { code: 'ERR_TIMEOUT' }, null, undefined, 'ERR_TIMEOUT', 42]) {
    assert.equal(ours.isClientCredentialsError(value), false, String(value));
  }
  assert.equal(Object.keys(new ours.TimeoutError('slow', 5)).some((k) => k.includes('brand')), false, 'the brand is not an own enumerable key');
  assert.equal(JSON.stringify(new ours.TimeoutError('slow', 5)), JSON.stringify({ name: 'TimeoutError', code: 'ERR_TIMEOUT', message: 'slow' }));
});

test('property: no value built from plain data is branded, and every error class of ours is, with its own code only', () => {
  fc.assert(fc.property(fc.anything({ withObjectString: true, withNullPrototype: true }), (value) => !ours.isClientCredentialsError(value)));
  const samples = [new ours.NetworkError('n'), new ours.AbortError(), new ours.MissingCredentialsError(), new ours.TokenLifetimeError('t', 0), new ours.RuntimeUnsupportedError('r')];
  for (const error of samples) {
    assert.ok(ours.isClientCredentialsError(error, error.code));
    for (const other of Object.values(ours.ErrorCode)) if (other !== error.code) assert.equal(ours.isClientCredentialsError(error, other), false);
  }
});

test('TokenLifetimeError and RuntimeUnsupportedError are exported, with their codes', () => {
  assert.equal(new ours.TokenLifetimeError('short', 10).code, ours.ErrorCode.TokenLifetime);
  assert.equal(new ours.RuntimeUnsupportedError('no').code, ours.ErrorCode.RuntimeUnsupported);
  assert.ok(new ours.RuntimeUnsupportedError('no') instanceof ours.ClientCredentialsError);
});
