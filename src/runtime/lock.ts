/**
 * One writer per folder: a run folder, a study's folders and an evaluation's output folder are
 * locked by the process that writes them. The lock is a file created exclusively (O_EXCL, so two
 * processes cannot both take it) that names its holder: PID, host, start time and command. It is
 * released on every exit path (explicitly, and on process exit), and taken over only when its
 * holder is provably gone (a dead PID on this host) or when the user says so (`--take-over`).
 * Hand-written: npm's lock packages (proper-lockfile and the like) judge staleness by mtime,
 * which cannot tell a long quiet run from a dead one.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ioError, makeDirs, processAlive } from './atomic.js';

export const LOCK_FILE = '.capi-lock';

export interface LockHolder {
  pid: number;
  host: string;
  startedAt: string;
  command: string;
}

export interface FolderLock {
  dir: string;
  release(): void;
}

interface Held {
  count: number;
  /** Folders the lock made (the locked one and missing parents): removed again if the command leaves them empty. */
  created: string[];
}

/** Locks this process holds, by folder: a nested taker (a study's evaluation) shares the holder's lock. */
const held = new Map<string, Held>();
let exitHookInstalled = false;

const lockFile = (dir: string) => path.join(dir, LOCK_FILE);

const me = (): LockHolder => ({
  pid: process.pid,
  host: os.hostname(),
  startedAt: new Date().toISOString(),
  command: process.argv.slice(1).join(' '),
});

/** The holder named in a lock file, or undefined if it cannot be read (a torn write: treated as gone). */
export function readLockHolder(dir: string): LockHolder | undefined {
  try {
    const h = JSON.parse(fs.readFileSync(lockFile(dir), 'utf8')) as LockHolder;
    return typeof h.pid === 'number' && typeof h.host === 'string' ? h : undefined;
  } catch {
    return undefined;
  }
}

/** Whether the holder is known to be gone: its PID is dead on this host (another host's cannot be checked). */
const holderGone = (h: LockHolder | undefined) => h === undefined || (h.host === os.hostname() && !processAlive(h.pid));

function removeOwn(dir: string): void {
  const h = readLockHolder(dir);
  if (h && h.pid === process.pid && h.host === os.hostname()) fs.rmSync(lockFile(dir), { force: true });
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const dir of held.keys()) removeOwn(dir);
  });
}

/**
 * Takes the lock of `dir` (created if missing) for `what` ("run folder", "study", ...). Throws one
 * line naming the holder when another live process has it; `takeOver` takes it anyway.
 */
export function lockFolder(dir: string, what: string, opts: { takeOver?: boolean; log?: (line: string) => void } = {}): FolderLock {
  const key = path.resolve(dir);
  const mine = held.get(key);
  if (mine) {
    mine.count++;
    return { dir: key, release: () => releaseFolder(key) };
  }
  let created: string[];
  try {
    created = makeDirs(key);
  } catch (e) {
    throw ioError(e, `create ${key}`);
  }
  for (let attempt = 0; ; attempt++) {
    try {
      fs.writeFileSync(lockFile(key), JSON.stringify(me()), { flag: 'wx' });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw ioError(e, `lock ${key}`);
    }
    const holder = readLockHolder(key);
    const who = holder ? `PID ${holder.pid} on ${holder.host} since ${holder.startedAt} (${holder.command})` : 'an unreadable lock';
    if (holderGone(holder)) opts.log?.(`${key}: took over the lock of ${who}, which is no longer running`);
    else if (opts.takeOver) opts.log?.(`${key}: took over the lock of ${who} (--take-over)`);
    else throw new Error(`${key} is in use by another ${what}: ${who}; wait for it to finish, or pass --take-over if that process is gone`);
    fs.rmSync(lockFile(key), { force: true });
  }
  held.set(key, { count: 1, created });
  installExitHook();
  return { dir: key, release: () => releaseFolder(key) };
}

function releaseFolder(key: string): void {
  const h = held.get(key);
  if (!h) return;
  if (--h.count > 0) return;
  held.delete(key);
  removeOwn(key);
  // A command that failed before writing anything leaves no empty folder behind.
  for (const dir of [...h.created].reverse()) {
    try {
      if (fs.readdirSync(dir).length === 0) fs.rmdirSync(dir);
    } catch {
      // Gone already, or not empty after all: nothing to tidy.
    }
  }
}

/** Runs `f` holding the lock of `dir`; releases it however `f` ends. */
export async function withFolderLock<T>(
  dir: string,
  what: string,
  opts: { takeOver?: boolean; log?: (line: string) => void },
  f: () => Promise<T>,
): Promise<T> {
  const lock = lockFolder(dir, what, opts);
  try {
    return await f();
  } finally {
    lock.release();
  }
}
