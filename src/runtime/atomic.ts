import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * mkdir -p, one component at a time: Node's recursive mkdir reports a read-only or forbidden
 * parent as ENOENT (and can loop forever under /proc), so each missing folder is made alone and
 * its own error (EROFS, EACCES, ENOTDIR) is what the caller sees. Returns the folders it made.
 */
export function makeDirs(dir: string): string[] {
  const missing: string[] = [];
  for (let d = path.resolve(dir); !fs.existsSync(d); d = path.dirname(d)) {
    missing.push(d);
    if (path.dirname(d) === d) break;
  }
  const made: string[] = [];
  for (const d of missing.reverse()) {
    try {
      fs.mkdirSync(d);
      made.push(d);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
  return made;
}

/**
 * Writes `bytes` to `file` atomically: a temp file in the same folder, then a rename, so a reader
 * (or a crash) never sees a half-written file. The folder is created if needed.
 */
export function writeFileAtomic(file: string, bytes: string | Uint8Array): void {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    makeDirs(path.dirname(file));
    fs.writeFileSync(tmp, bytes);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw ioError(e, `write ${file}`);
  }
}

const IO_HINTS: Record<string, string> = {
  ENOSPC: 'the disk is full: free some space or write elsewhere',
  EDQUOT: 'the disk quota is full: free some space or write elsewhere',
  EACCES: 'no permission: choose a folder you can write to',
  EPERM: 'no permission: choose a folder you can write to',
  EROFS: 'the file system is read-only: choose another folder',
  ENOTDIR: 'a path component is a file, not a folder: choose another path',
  EISDIR: 'that path is a folder: give a file name',
  ENOENT: 'a folder on the way does not exist',
};

/** An fs error as one line naming what was done to which file, and what to do about it. */
export function ioError(e: unknown, what: string): Error {
  const err = e as NodeJS.ErrnoException;
  if (!err || typeof err !== 'object' || !err.code) return e as Error;
  const hint = IO_HINTS[err.code];
  return new Error(`cannot ${what}: ${err.code}${hint ? ` (${hint})` : ''}`);
}

/** The name pattern of our temp files: `<file>.tmp-<pid>` (and `<file>.tmp-<pid>.png`). */
const TEMP = /\.tmp-(\d+)(\.[a-z]+)?$/;

/** Whether a process with this PID runs on this machine (EPERM: it runs, as another user). */
export const processAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** Removes temp files of writes that a killed process left in `dir` (not recursive); returns them. */
export function removeStaleTempFiles(dir: string): string[] {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) return [];
  const removed: string[] = [];
  for (const f of fs.readdirSync(dir)) {
    const m = TEMP.exec(f);
    if (m && Number(m[1]) !== process.pid && !processAlive(Number(m[1]))) {
      fs.rmSync(path.join(dir, f), { force: true });
      removed.push(path.join(dir, f));
    }
  }
  return removed;
}

/**
 * Checks, creating nothing, that `dir` is a writable folder or can be made one (its nearest
 * existing ancestor is a writable folder); one line naming the flag if not.
 */
export function checkWritableDir(dir: string, flag: string): void {
  if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory())
    throw new Error(`${flag} ${dir} is a file, not a folder: choose another ${flag}`);
  let existing = path.resolve(dir);
  while (!fs.existsSync(existing) && path.dirname(existing) !== existing) existing = path.dirname(existing);
  try {
    if (!fs.statSync(existing).isDirectory()) throw Object.assign(new Error('not a folder'), { code: 'ENOTDIR' });
    fs.accessSync(existing, fs.constants.W_OK);
  } catch (e) {
    throw new Error(`${ioError(e, `write to ${dir}`).message}; choose another ${flag}`);
  }
}

/** Checks that `dir` is (or can be made) a writable folder, before any work; one line if not. */
export function ensureWritableDir(dir: string, flag: string): void {
  if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory())
    throw new Error(`${flag} ${dir} is a file, not a folder: choose another ${flag}`);
  const probe = path.join(dir, `.write-test.tmp-${process.pid}`);
  try {
    makeDirs(dir);
    fs.writeFileSync(probe, '');
    fs.rmSync(probe);
  } catch (e) {
    throw new Error(`${ioError(e, `write to ${dir}`).message}; choose another ${flag}`);
  }
}
