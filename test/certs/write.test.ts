import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FsOps, type OutFile, ensureDir, writeAllOrNothing } from '../../src/certs/write.js';

const FILES: OutFile[] = [
  { name: 'ca.crt', data: 'new ca', mode: 0o644 },
  { name: 'tls.crt', data: 'new crt', mode: 0o644 },
  { name: 'tls.key', data: 'new key', mode: 0o600 },
];

/** node:fs, except that `call` throws EACCES when its first argument matches `path`. */
function failing(call: keyof FsOps, path: RegExp): FsOps {
  const real = fs[call] as (...a: unknown[]) => unknown;
  return {
    ...fs,
    [call]: (...args: unknown[]) => {
      if (path.test(String(args[0]))) throw Object.assign(new Error(`EACCES: permission denied, ${call} '${String(args[0])}'`), { code: 'EACCES' });
      return real(...args);
    },
  } as FsOps;
}

function contents(dir: string): Record<string, string> {
  return Object.fromEntries(readdirSync(dir).sort().map((n) => [n, readFileSync(join(dir, n), 'utf8')]));
}

describe('certs: writing the files all or nothing', () => {
  let dir: string;
  const OLD = { 'ca.crt': 'old ca', 'tls.crt': 'old crt', 'tls.key': 'old key' };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'kc-certs-write-'));
    for (const [n, d] of Object.entries(OLD)) writeFileSync(join(dir, n), d, { mode: 0o644 });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('replaces all three and leaves the key 0600 even where it was 0644', () => {
    writeAllOrNothing(dir, FILES);
    assert.deepEqual(contents(dir), { 'ca.crt': 'new ca', 'tls.crt': 'new crt', 'tls.key': 'new key' });
    assert.equal(statSync(join(dir, 'tls.key')).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'tls.crt')).mode & 0o777, 0o644);
  });

  it('a failed write (the key) changes nothing and leaves no temporary file', () => {
    assert.throws(() => writeAllOrNothing(dir, FILES, failing('writeFileSync', /tls\.key/)), /EACCES/);
    assert.deepEqual(contents(dir), OLD);
  });

  it('a failed rename (the key, after the certificates) puts the certificates back', () => {
    assert.throws(() => writeAllOrNothing(dir, FILES, failing('renameSync', /tls\.key\..*\.tmp$/)), /EACCES/);
    assert.deepEqual(contents(dir), OLD);
  });

  it('where hard links are refused, still replaces all, or puts all back on a failure', () => {
    const noLinks = failing('linkSync', /./);
    assert.throws(() => writeAllOrNothing(dir, FILES, { ...noLinks, renameSync: failing('renameSync', /tls\.key\..*\.tmp$/).renameSync }), /EACCES/);
    assert.deepEqual(contents(dir), OLD);
    writeAllOrNothing(dir, FILES, noLinks);
    assert.deepEqual(contents(dir), { 'ca.crt': 'new ca', 'tls.crt': 'new crt', 'tls.key': 'new key' });
  });

  it('a failed rename into an empty directory leaves it empty', () => {
    const empty = join(dir, 'empty');
    fs.mkdirSync(empty);
    assert.throws(() => writeAllOrNothing(empty, FILES, failing('renameSync', /tls\.key\..*\.tmp$/)), /EACCES/);
    assert.deepEqual(readdirSync(empty), []);
  });

  it('refuses, before writing anything, a target that is a directory', () => {
    rmSync(join(dir, 'tls.key'));
    fs.mkdirSync(join(dir, 'tls.key'));
    assert.throws(() => writeAllOrNothing(dir, FILES), /tls\.key exists and is not a regular file: remove it or choose another --out/);
    assert.deepEqual(readdirSync(dir).sort(), ['ca.crt', 'tls.crt', 'tls.key']);
    assert.equal(readFileSync(join(dir, 'ca.crt'), 'utf8'), 'old ca');
  });
});

describe('certs: creating the --out directory', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'kc-certs-dir-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('creates the missing levels, and accepts one that exists', () => {
    ensureDir(join(dir, 'a/b/c'));
    assert.ok(statSync(join(dir, 'a/b/c')).isDirectory());
    ensureDir(join(dir, 'a/b/c'));
  });

  it('names a file in the way', () => {
    writeFileSync(join(dir, 'f'), '');
    assert.throws(() => ensureDir(join(dir, 'f/x/y')), new RegExp(`^Error: ${join(dir, 'f')} exists and is not a directory: choose another --out$`));
  });

  (fs.existsSync('/proc/self') ? it : it.skip)('fails fast under /proc instead of looping', () => {
    const t = Date.now();
    assert.throws(() => ensureDir('/proc/kc/x'), /^Error: cannot create directory \/proc\/kc for --out \/proc\/kc\/x \(ENOENT\): choose a directory you can write to$/);
    assert.ok(Date.now() - t < 1000);
  });
});
