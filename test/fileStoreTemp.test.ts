/**
 * FileTokenStore's temporary files: a writer killed with SIGKILL between creating `<file>.<pid>.<uuid>.tmp` and
 * renaming it leaves it behind; the store removes such leftovers of its own naming pattern once they are old enough
 * that no live writer (in any process sharing the folder) can still be using them, and never touches anything else.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { lstat, lutimes, mkdir, mkdtemp, readdir, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FileTokenStore } from '../src/stores/file.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'occ-filetemp-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const token = (accessToken: string) => ({ accessToken, tokenType: 'Bearer', expiresIn: 3600, expiry: Math.floor(Date.now() / 1000) + 3600 });
const storeModule = new URL('../src/stores/file.js', import.meta.url).href;

async function exists(file: string): Promise<boolean> {
  return lstat(file).then(() => true, () => false);
}

/** Sets a file's times `ms` into the past (what a leftover looks like after that long). */
async function age(file: string, ms: number): Promise<void> {
  const when = new Date(Date.now() - ms);
  await utimes(file, when, when);
}

async function temps(folder: string): Promise<string[]> {
  return (await readdir(folder)).filter((name) => name.endsWith('.tmp'));
}

/**
 * Runs a child process that writes big token files in a loop (each write: temp file, fsync, rename), and kills it
 * with SIGKILL as soon as a temp file is seen; retried until one is left behind.
 */
async function killMidWrite(file: string): Promise<string[]> {
  const script = `
    const { FileTokenStore } = await import(${JSON.stringify(storeModule)});
    const store = new FileTokenStore({ path: ${JSON.stringify(file)}, lockTimeout: 60000 });
    const big = 'x'.repeat(200000);
    process.send('ready');
    for (let i = 0; ; i++) await store.set('k' + (i % 20), { accessToken: big + i, tokenType: 'Bearer', expiresIn: 3600, expiry: Math.floor(Date.now() / 1000) + 3600 }, 3600000);
  `;
  const folder = path.dirname(file);
  for (let attempt = 0; attempt < 20; attempt++) {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    await new Promise((resolve) => child.once('message', resolve));
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && (await temps(folder)).length === 0) {
      // poll as fast as the file system answers
    }
    child.kill('SIGKILL');
    await exited;
    const left = await temps(folder);
    if (left.length > 0) return left;
  }
  throw new Error('no temp file was left behind in 20 attempts');
}

describe('FileTokenStore removes its own leftover temp files', () => {
  test('a writer killed with SIGKILL mid-write: its fresh temp file survives (a live writer could own it), the same file once old is removed', async () => {
    const folder = path.join(dir, 'killed');
    await mkdir(folder, { mode: 0o700 });
    const file = path.join(folder, 'tokens.json');
    const left = await killMidWrite(file);
    assert.ok(left.every((name) => name.startsWith('tokens.json.')), left.join(', '));

    // A store opened now sees a temp file a few ms old: it might be another live process's write in progress.
    const fresh = new FileTokenStore({ path: file });
    await fresh.get('k0');
    for (const name of left) assert.ok(await exists(path.join(folder, name)), `${name} was removed while it could still be in use`);

    for (const name of left) await age(path.join(folder, name), 10 * 60_000);
    const later = new FileTokenStore({ path: file });
    await later.set('after', token('after'), 60_000);
    assert.deepEqual(await temps(folder), [], 'the old leftovers are removed');
    assert.equal((await later.get('after'))?.accessToken, 'after');
  });

  test('planted files: only old ones of the store\'s own pattern go; fresh ones, other names, other stores, links and folders stay', async () => {
    const folder = path.join(dir, 'planted');
    await mkdir(folder, { mode: 0o700 });
    const file = path.join(folder, 'tokens.json');
    const uuid = (): string => randomUUID();
    const ours = [
      `tokens.json.4242.${uuid()}.tmp`, // the token file's atomic write
      `tokens.json.lock.4242.${uuid()}.tmp`, // the write lock's exclusive create
      `tokens.json.c2NvcGUtaGFzaA.lease.77.${uuid()}.tmp`, // a lease's create or renewal
    ];
    const freshOurs = [`tokens.json.4243.${uuid()}.tmp`, `tokens.json.lock.4243.${uuid()}.tmp`];
    const notOurs = [
      'tokens.json.tmp',
      'tokens.json.bak.tmp',
      `tokens.json.4242.not-a-uuid.tmp`,
      `tokens.json.abc.4242.${uuid()}.tmp`, // no such middle part is ever written
      `other.json.4242.${uuid()}.tmp`, // another store's
      `tokens.json2.4242.${uuid()}.tmp`,
      `tokens.json.4242.${uuid()}.tmp.keep`,
      `tokens.json.4242.${uuid().toUpperCase()}.tmp`,
      'notes.txt',
    ];
    for (const name of [...ours, ...freshOurs, ...notOurs]) await writeFile(path.join(folder, name), '{}', { mode: 0o600 });
    const linkName = `tokens.json.4244.${uuid()}.tmp`;
    const target = path.join(dir, `outside-${uuid()}`);
    await writeFile(target, 'must survive');
    await symlink(target, path.join(folder, linkName));
    const folderName = `tokens.json.4245.${uuid()}.tmp`;
    await mkdir(path.join(folder, folderName));
    for (const name of [...ours, ...notOurs, folderName]) await age(path.join(folder, name), 60 * 60_000);
    const when = new Date(Date.now() - 60 * 60_000);
    await lutimes(path.join(folder, linkName), when, when);

    const store = new FileTokenStore({ path: file });
    assert.equal(await store.get('anything'), undefined);
    for (const name of ours) assert.equal(await exists(path.join(folder, name)), false, `${name} (old, ours) should be removed`);
    for (const name of [...freshOurs, ...notOurs, linkName, folderName]) assert.ok(await exists(path.join(folder, name)), `${name} must survive`);
    assert.ok(await exists(target));
  });

  test('a long-lived store sweeps again: a leftover planted after its first use goes at the first use a minute later (its clock)', async () => {
    const folder = path.join(dir, 'longlived');
    await mkdir(folder, { mode: 0o700 });
    const file = path.join(folder, 'tokens.json');
    let clock = Date.now();
    const store = new FileTokenStore({ path: file, now: () => clock });
    await store.set('a', token('a'), 3_600_000);
    const name = `tokens.json.999999.${randomUUID()}.tmp`;
    await writeFile(path.join(folder, name), '{}', { mode: 0o600 });
    await age(path.join(folder, name), 60 * 60_000);
    clock += 30_000;
    await store.set('b', token('b'), 3_600_000);
    assert.ok(await exists(path.join(folder, name)), 'no sweep within a minute of the last');
    clock += 31_000;
    assert.equal((await store.get('a'))?.accessToken, 'a');
    assert.equal(await exists(path.join(folder, name)), false, 'swept a minute later');
  });
});

