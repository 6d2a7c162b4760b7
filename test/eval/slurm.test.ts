/**
 * `eval --launcher slurm` against a real one-node Slurm started by the test: the evaluation runs as
 * array jobs with afterok dependencies, a grid task requeued midway (scontrol requeue) continues,
 * and every result equals the local launcher's. --dry-run prints the job scripts and submits nothing.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SlurmCluster } from '../helpers/slurm.js';
import { requeueWhenRunning, startSlurm } from '../helpers/slurm.js';
import { trainTinyRun } from '../pretrain/helpers.js';

const SLICE = path.resolve('data/fmnist-slice');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'capi-slurm-eval-'));
const run = path.join(tmp, 'run');
let cluster: SlurmCluster;

beforeAll(async () => {
  cluster = await startSlurm();
  await trainTinyRun(run, { steps: 2 });
}, 120_000);
afterAll(async () => {
  await cluster?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const EVAL = ['--task', 'fmnist-scenes', '--checkpoint', run, '--data-dir', SLICE, '--scenes-train', '24', '--scenes-test', '6'];
const EVAL_MORE = ['--logreg-max-iter', '60', '--probes', 'knn,logreg', '--pca-images', '0', '--dense-engine', 'cpu'];
const SLURM = ['--launcher', 'slurm', '--slurm-array', '2', '--slurm-cpus', '1', '--slurm-mem', '2G', '--slurm-time', '20:00'];

const env = () => ({ ...process.env, ...cluster.env });
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { env: env(), encoding: 'utf8' }).trim();

function cli(args: string[]) {
  const p = spawn(process.execPath, ['--import', 'tsx', 'src/cli/eval.ts', ...args], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  p.stderr!.on('data', (d) => {
    err += d;
  });
  const done = new Promise<{ code: number | null; err: string }>((r) => p.on('close', (code) => r({ code, err })));
  return { p, done };
}

const results = (dir: string) =>
  Object.fromEntries(
    fs
      .readdirSync(path.join(dir, 'fmnist-scenes'))
      .filter((f) => f.endsWith('.json'))
      .map((f) => [f, JSON.parse(fs.readFileSync(path.join(dir, 'fmnist-scenes', f), 'utf8')).metrics]),
  );

describe('eval --launcher slurm', () => {
  it("runs as array jobs with dependencies; a task requeued midway continues; the results are the local launcher's", async () => {
    const out = path.join(tmp, 'slurm');
    const { done } = cli([...EVAL, ...EVAL_MORE, '--out', out, '--cache-dir', path.join(tmp, 'cache'), ...SLURM]);
    // Requeue a grid task once it runs (as a preemption or a node failure would), and let it start again at once.
    const requeued = await requeueWhenRunning(cluster, /^grid$/, 120);
    expect(requeued).not.toBe('');
    const r = await done;
    expect(r.code, r.err).toBe(0);
    expect(r.err).toContain('slurm: submitted grid as job');
    // The dependencies as submitted: grid after extract, finish after grid.
    const logs = path.join(out, 'fmnist-scenes', '.slurm', fs.readdirSync(path.join(out, 'fmnist-scenes', '.slurm'))[0]);
    const ids = Object.fromEntries([...r.err.matchAll(/submitted (\w+) as job (\d+)/g)].map((m) => [m[1], m[2]]));
    expect(fs.readFileSync(path.join(logs, 'grid.sbatch'), 'utf8')).toContain(`--dependency=afterok:${ids.extract}`);
    expect(fs.readFileSync(path.join(logs, 'finish.sbatch'), 'utf8')).toContain(`--dependency=afterok:${ids.grid}`);
    // The requeued task ran twice, and its units were done once the second attempt ended.
    const log = fs.readFileSync(path.join(logs, `grid-${requeued}.log`), 'utf8');
    expect(log).toContain('(grid), attempt 2');
    // The same evaluation on the local launcher.
    const local = path.join(tmp, 'local');
    const l = cli([...EVAL, ...EVAL_MORE, '--out', local, '--cache-dir', path.join(tmp, 'cache-local')]);
    expect((await l.done).code).toBe(0);
    expect(results(out)).toEqual(results(local));
  }, 600_000);

  it('--dry-run prints each job script (sbatch options, the worker, the requeue on USR1) and submits nothing', async () => {
    const out = path.join(tmp, 'dry');
    const { done } = cli([
      ...EVAL,
      ...EVAL_MORE,
      '--out',
      out,
      '--cache-dir',
      path.join(tmp, 'cache'),
      ...SLURM,
      '--dry-run',
      '--slurm-partition',
      'gpu',
      '--slurm-extra=--qos=high',
    ]);
    const r = await done;
    expect(r.code, r.err).toBe(0);
    for (const name of ['extract', 'grid', 'finish']) expect(r.err).toContain(`#SBATCH --job-name=${name}`);
    for (const line of [
      '#SBATCH --partition=gpu',
      '#SBATCH --qos=high',
      '#SBATCH --signal=B:USR1@120',
      '#SBATCH --requeue',
      '#SBATCH --array=0-1',
      'scontrol requeue',
    ])
      expect(r.err).toContain(line);
    expect(sh('squeue', ['-h', '-o', '%i'])).toBe('');
  }, 120_000);
});
