/**
 * The running clock stands still while the process is stopped (SIGSTOP) and keeps the wall
 * clock's pace otherwise: checked on a child process, stopped for 2 s by us, against its own wall
 * clock.
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const CHILD = `
import { runningMs, suspendedSeconds } from './src/runtime/clock.ts';
const running0 = runningMs(); // starts the clock's ticker
const wall0 = performance.now();
process.stdout.write('ready\\n');
setTimeout(() => {
  // Busy for 1 s as a train step is: the ticker runs beside a blocked main thread.
  const until = performance.now() + 1000;
  while (performance.now() < until);
  const running = (runningMs() - running0) / 1000;
  const wall = (performance.now() - wall0) / 1000;
  process.stdout.write(JSON.stringify({ running, wall, suspended: suspendedSeconds() }) + '\\n');
}, 3000);
`;

async function timeChild(stopMs: number): Promise<{ running: number; wall: number; suspended: number }> {
  const p = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const closed = new Promise<void>((resolve) => p.on('close', () => resolve()));
  await new Promise<void>((resolve) =>
    p.stdout.on('data', (d) => {
      out += d;
      if (out.includes('ready')) resolve();
    }),
  );
  if (stopMs > 0) {
    await new Promise((r) => setTimeout(r, 500));
    p.kill('SIGSTOP');
    await new Promise((r) => setTimeout(r, stopMs));
    p.kill('SIGCONT');
  }
  await closed;
  return JSON.parse(out.split('\n')[1]!) as { running: number; wall: number; suspended: number };
}

describe.concurrent('running clock', () => {
  it('a 2 s SIGSTOP is left out of the running time, within a tick', async () => {
    const t = await timeChild(2000);
    expect(t.wall).toBeGreaterThan(4);
    expect(t.suspended).toBeGreaterThan(1.8);
    expect(t.suspended).toBeLessThan(2.3);
    expect(Math.abs(t.running - (t.wall - t.suspended))).toBeLessThan(0.05);
  }, 30_000);

  it('without a stop it is the wall clock, a blocked main thread included', async () => {
    const t = await timeChild(0);
    expect(t.suspended).toBe(0);
    // The two readings are taken one after the other: a busy machine may preempt the test between them.
    expect(Math.abs(t.running - t.wall)).toBeLessThan(0.05);
  }, 30_000);
});
