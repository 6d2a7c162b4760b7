/**
 * One writer per folder: a live holder (another process) is named and refused, a dead one is
 * taken over, --take-over takes it anyway; the lock goes on every exit path, and a command that
 * created the folder and wrote nothing leaves none.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkWritableDir } from '../../src/runtime/atomic.js';
import { LOCK_FILE, lockFolder, readLockHolder } from '../../src/runtime/lock.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'capi-lock-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A node process that takes the lock of `dir`, says so, and waits (or exits at once without releasing). */
function holder(dir: string, mode: 'hold' | 'exit') {
  const code = `
    import { lockFolder } from './src/runtime/lock.ts';
    lockFolder(${JSON.stringify(dir)}, 'test');
    console.log('locked');
    ${mode === 'hold' ? 'setInterval(() => {}, 1000);' : ''}`;
  return spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
}

const untilLocked = (p: ReturnType<typeof holder>) =>
  new Promise<void>((resolve, reject) => {
    p.stdout!.on('data', (d) => String(d).includes('locked') && resolve());
    p.on('exit', (c) => reject(new Error(`holder exited ${c}`)));
  });

describe('folder locks', () => {
  it('names a live holder and refuses; --take-over takes it; the holder is recorded', async () => {
    const dir = path.join(tmp, 'live');
    const p = holder(dir, 'hold');
    try {
      await untilLocked(p);
      const h = readLockHolder(dir)!;
      expect(h.pid).toBe(p.pid);
      expect(h.host).toBe(os.hostname());
      expect(() => lockFolder(dir, 'training run')).toThrow(
        new RegExp(
          `is in use by another training run: PID ${p.pid} on ${os.hostname()} since .*; wait for it to finish, or pass --take-over`,
        ),
      );
      const logs: string[] = [];
      const lock = lockFolder(dir, 'training run', { takeOver: true, log: (l) => logs.push(l) });
      expect(logs[0]).toContain(`took over the lock of PID ${p.pid}`);
      expect(readLockHolder(dir)!.pid).toBe(process.pid);
      lock.release();
      expect(fs.existsSync(path.join(dir, LOCK_FILE))).toBe(false);
    } finally {
      p.kill('SIGKILL');
    }
  });

  it('takes over the lock of a holder that is gone (killed without releasing)', async () => {
    const dir = path.join(tmp, 'dead');
    const p = holder(dir, 'hold');
    await untilLocked(p);
    p.kill('SIGKILL');
    await new Promise((r) => p.on('exit', r));
    expect(fs.existsSync(path.join(dir, LOCK_FILE))).toBe(true); // SIGKILL runs no exit hook
    const logs: string[] = [];
    const lock = lockFolder(dir, 'study', { log: (l) => logs.push(l) });
    expect(logs[0]).toMatch(new RegExp(`took over the lock of PID ${p.pid} .*, which is no longer running`));
    lock.release();
  });

  it('is released when the holder exits without releasing it, and is re-entrant within a process', () => {
    const dir = path.join(tmp, 'exit');
    const code = `import { lockFolder } from './src/runtime/lock.ts'; lockFolder(${JSON.stringify(dir)}, 'test'); fs.writeFileSync(${JSON.stringify(path.join(dir, 'out.txt'))}, 'x');`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `import * as fs from 'node:fs'; ${code}`], {
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    expect(fs.readdirSync(dir)).toEqual(['out.txt']);
    const outer = lockFolder(dir, 'study');
    const inner = lockFolder(dir, 'evaluation'); // the study's own evaluation
    inner.release();
    expect(readLockHolder(dir)!.pid).toBe(process.pid);
    outer.release();
    expect(fs.existsSync(path.join(dir, LOCK_FILE))).toBe(false);
  });

  it('a folder the lock created is removed again if nothing was written to it', () => {
    const dir = path.join(tmp, 'fresh', 'run');
    lockFolder(dir, 'training run').release();
    expect(fs.existsSync(dir)).toBe(false);
    const used = path.join(tmp, 'used');
    const lock = lockFolder(used, 'training run');
    fs.writeFileSync(path.join(used, 'config.json'), '{}');
    lock.release();
    expect(fs.readdirSync(used)).toEqual(['config.json']);
  });
});

describe('checkWritableDir', () => {
  it('names a file on the way and a read-only file system (not ENOENT), creating nothing', () => {
    const file = path.join(tmp, 'a-file');
    fs.writeFileSync(file, '');
    expect(() => checkWritableDir(path.join(file, 'run'), '--out')).toThrow(
      /cannot write to .*a-file\/run: ENOTDIR .*; choose another --out/,
    );
    const ro = path.join(tmp, 'ro');
    fs.mkdirSync(ro);
    // A read-only mount where we may make one (root), else a folder without write permission.
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'ro', 'tmpfs', ro]).status === 0;
    if (!mounted) fs.chmodSync(ro, 0o555);
    try {
      expect(() => checkWritableDir(path.join(ro, 'a', 'b'), '--out')).toThrow(
        mounted ? /: EROFS \(the file system is read-only: choose another folder\); choose another --out/ : /: EACCES/,
      );
      expect(fs.readdirSync(ro)).toEqual([]);
    } finally {
      if (mounted) spawnSync('umount', [ro]);
    }
  });
});
