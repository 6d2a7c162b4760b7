/**
 * The PyTorch side of the --compare benches: images/s of bench/torch_step.py for a shape, or
 * undefined with the reason printed. OMP_WAIT_POLICY=PASSIVE: an OpenMP pool that spins between
 * ops takes the cores from its own next op (measured 2.47 vs 1.39 s for one step).
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

export function torchImagesPerSec(shape: Record<string, unknown>, threads: number, python: string, device = 'cpu'): number | undefined {
  const r = spawnSync(python, [path.join(import.meta.dirname, 'torch_step.py'), JSON.stringify({ ...shape, threads, device })], {
    encoding: 'utf8',
    env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE', OMP_NUM_THREADS: String(threads) },
  });
  if (r.status !== 0) {
    console.log(`PyTorch: not run (${python}: ${(r.stderr || String(r.error)).trim().split('\n').at(-1)}); apt-get install python3-torch`);
    return undefined;
  }
  return (JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { imagesPerSec: number }).imagesPerSec;
}
