import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Writes `bytes` to `file` atomically: a temp file in the same folder, then a rename, so a reader
 * (or a crash) never sees a half-written file. The folder is created if needed.
 */
export function writeFileAtomic(file: string, bytes: string | Uint8Array): void {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
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

const alive = (pid: number) => {
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
    if (m && Number(m[1]) !== process.pid && !alive(Number(m[1]))) {
      fs.rmSync(path.join(dir, f), { force: true });
      removed.push(path.join(dir, f));
    }
  }
  return removed;
}

/** Checks that `dir` is (or can be made) a writable folder, before any work; one line if not. */
export function ensureWritableDir(dir: string, flag: string): void {
  if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory())
    throw new Error(`${flag} ${dir} is a file, not a folder: choose another ${flag}`);
  const probe = path.join(dir, `.write-test.tmp-${process.pid}`);
  try {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(probe, '');
    fs.rmSync(probe);
  } catch (e) {
    throw new Error(`${ioError(e, `write to ${dir}`).message}; choose another ${flag}`);
  }
}
