/**
 * `study --launcher slurm` on plan tiny against a real one-node Slurm started by the test: every
 * run a job, every end evaluation a job after its run; a run job requeued midway (scontrol requeue)
 * resumes from its checkpoint; every result equals the local launcher's.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SlurmCluster } from '../helpers/slurm.js';
import { requeueWhenRunning, startSlurm } from '../helpers/slurm.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'capi-slurm-study-'));
let cluster: SlurmCluster;
beforeAll(async () => {
  cluster = await startSlurm();
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const env = () => ({ ...process.env, ...cluster.env });

function study(args: string[]) {
  const p = spawn(process.execPath, ['--import', 'tsx', 'src/cli/study.ts', '--plan', 'tiny', ...args], {
    env: env(),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  p.stderr!.on('data', (d) => {
    err += d;
  });
  return new Promise<{ code: number | null; err: string }>((r) => p.on('close', (code) => r({ code, err })));
}

/** Every result's metrics, by task and file. */
function metrics(dir: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const task of fs.readdirSync(dir).filter((t) => t.startsWith('fmnist'))) {
    for (const f of fs.readdirSync(path.join(dir, task)).filter((x) => x.endsWith('.json')))
      out[`${task}/${f}`] = JSON.parse(fs.readFileSync(path.join(dir, task, f), 'utf8')).metrics;
  }
  return out;
}

describe('study --launcher slurm', () => {
  it("runs and evaluations as jobs with dependencies; a run requeued midway resumes; the results are the local launcher's", async () => {
    const out = path.join(tmp, 'slurm');
    const done = study([
      '--out',
      out,
      '--runs',
      path.join(tmp, 'slurm-runs'),
      '--launcher',
      'slurm',
      '--slurm-cpus',
      '1',
      '--slurm-mem',
      '2G',
      '--slurm-time',
      '20:00',
    ]);
    const requeued = await requeueWhenRunning(cluster, /^run-fmnist-capi-s0$/, 180);
    expect(requeued).not.toBe('');
    const r = await done;
    expect(r.code, r.err).toBe(0);
    expect(r.err).toMatch(
      /slurm: submitted run-fmnist-capi-s0 as job \d+\n[\s\S]*slurm: submitted eval-\d+ as job \d+, after run-fmnist-capi-s0/,
    );
    const logs = path.join(out, '.slurm', fs.readdirSync(path.join(out, '.slurm'))[0]);
    const evalScript = fs.readdirSync(logs).find((f) => f.startsWith('eval-') && f.endsWith('.sbatch'))!;
    expect(fs.readFileSync(path.join(logs, evalScript), 'utf8')).toMatch(/#SBATCH --dependency=afterok:\d+/);
    expect(fs.readFileSync(path.join(logs, `run-fmnist-capi-s0-${requeued}.log`), 'utf8')).toContain(
      'slurm unit run:fmnist-capi-s0, attempt 2',
    );
    const local = path.join(tmp, 'local');
    const l = await study(['--out', local, '--runs', path.join(tmp, 'local-runs')]);
    expect(l.code, l.err).toBe(0);
    expect(Object.keys(metrics(out)).length).toBeGreaterThan(20);
    expect(metrics(out)).toEqual(metrics(local));
  }, 900_000);
});
