/**
 * Writing the certificate files so that a failed run changes nothing: every file goes to a
 * temporary file in the target directory first and is renamed into place only when all were
 * written; a rename that fails midway puts back the files already replaced.
 */
import { randomBytes } from 'node:crypto';
import * as nodeFs from 'node:fs';
import { dirname, join, resolve } from 'node:path';

export interface OutFile {
  name: string;
  data: string;
  /** Exact mode of the written file, whatever the umask or the mode of a file it replaces. */
  mode: number;
}

/** The fs calls used here, replaceable in tests to make one of them fail. */
export type FsOps = Pick<typeof nodeFs, 'writeFileSync' | 'chmodSync' | 'renameSync' | 'linkSync' | 'unlinkSync' | 'lstatSync'>;

/**
 * Creates dir and its missing parents one level at a time. Node's mkdirSync(recursive) spins
 * forever on some pseudo file systems (/proc); this fails on the first level that cannot be made.
 */
export function ensureDir(dir: string): void {
  const missing: string[] = [];
  let d = resolve(dir);
  while (!existingDir(d)) {
    missing.unshift(d);
    if (dirname(d) === d) break;
    d = dirname(d);
  }
  for (const m of missing) {
    try {
      nodeFs.mkdirSync(m);
    } catch (e) {
      throw new Error(`cannot create directory ${m} for --out ${dir} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): choose a directory you can write to`);
    }
  }
}

function existingDir(path: string): boolean {
  let st: nodeFs.Stats | undefined;
  try {
    st = nodeFs.statSync(path, { throwIfNoEntry: false });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') return false; // a parent is a file: reported when we get to it
    throw e;
  }
  if (st && !st.isDirectory()) throw new Error(`${path} exists and is not a directory: choose another --out`);
  return st !== undefined;
}

/** Writes all files into dir, or (on any error) none of them: the old files stay as they were. */
export function writeAllOrNothing(dir: string, files: OutFile[], fs: FsOps = nodeFs): void {
  const id = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const targets = files.map((f) => ({ ...f, path: join(dir, f.name), tmp: join(dir, `.${f.name}.${id}.tmp`), bak: join(dir, `.${f.name}.${id}.bak`) }));
  const created: string[] = [];
  try {
    for (const t of targets) checkReplaceable(t.path, fs);
    for (const t of targets) {
      created.push(t.tmp);
      fs.writeFileSync(t.tmp, t.data, { mode: t.mode, flag: 'wx' });
      fs.chmodSync(t.tmp, t.mode);
    }
    replaceAll(fs, targets, created);
  } finally {
    for (const p of created) removeQuietly(fs, p);
  }
}

/** Refuses a path that a new file cannot replace (a directory, a socket). */
export function checkReplaceable(path: string, fs: Pick<FsOps, 'lstatSync'> = nodeFs): void {
  const st = fs.lstatSync(path, { throwIfNoEntry: false });
  if (st && !st.isFile() && !st.isSymbolicLink()) throw new Error(`${path} exists and is not a regular file: remove it or choose another --out`);
}

/** Renames each tmp over its path, keeping the old file as bak; on a failure puts the baks back. */
function replaceAll(fs: FsOps, targets: Array<{ path: string; tmp: string; bak: string }>, created: string[]): void {
  const done: Array<{ path: string; bak?: string }> = [];
  try {
    for (const t of targets) {
      const bak = keepOld(fs, t.path, t.bak);
      if (bak) created.push(bak);
      done.push({ path: t.path, bak });
      fs.renameSync(t.tmp, t.path);
    }
  } catch (e) {
    for (const d of done.reverse()) restore(fs, d);
    throw e;
  }
}

/** Keeps the current file under bak (a hard link, so path never goes missing), or returns undefined if there is none. */
function keepOld(fs: FsOps, path: string, bak: string): string | undefined {
  if (!fs.lstatSync(path, { throwIfNoEntry: false })) return undefined;
  try {
    fs.linkSync(path, bak);
  } catch {
    fs.renameSync(path, bak); // no hard links here: path is missing until the new file is renamed in
  }
  return bak;
}

function restore(fs: FsOps, d: { path: string; bak?: string }): void {
  try {
    if (d.bak) fs.renameSync(d.bak, d.path);
    else fs.unlinkSync(d.path);
  } catch {
    /* best effort: the error that made us roll back is the one to report */
  }
}

function removeQuietly(fs: FsOps, path: string): void {
  try {
    fs.unlinkSync(path);
  } catch {
    /* already renamed into place, or never created */
  }
}
