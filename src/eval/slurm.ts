/**
 * `eval --launcher slurm`: the evaluation as Slurm jobs (src/runtime/slurm.ts). The feature stores
 * are extracted by an array job (each task its share of every model's shards); for dense tasks a
 * second array job computes the out-of-core protocol's units (the k-NN query blocks, the logistic
 * regression's validation fits, one C each), after the first; a last job selects, refits, tests
 * and writes the results, after them (afterok). Every task runs this same command with the same
 * config and its stage, in the same folder; outputs (stores, units, results) live under --out and
 * --cache-dir on the shared file system, so the result is the local launcher's.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { configFlags } from '../runtime/schema.js';
import type { LaunchJob, SlurmOptions } from '../runtime/slurm.js';
import { launchJobs, launchLogsFolder } from '../runtime/slurm.js';
import type { EvalConfig } from './config.js';
import { TASKS } from './tasks.js';

const EVAL_CLI = fileURLToPath(new URL('../cli/eval.ts', import.meta.url));

/** The jobs of an evaluation, in submission order, each with the names of the jobs it waits for. */
export function evalJobs(cfg: EvalConfig, logs: string, cwd: string): LaunchJob[] {
  const worker = (stage: string) => [
    process.execPath,
    '--import',
    'tsx',
    EVAL_CLI,
    ...configFlags({ ...cfg, launcher: 'local', dryRun: false, stage }),
  ];
  const dense = TASKS[cfg.task].kind === 'segmentation';
  const base = { cwd, logs };
  return [
    { ...base, name: 'extract', command: worker('extract'), array: cfg.slurmArray, needs: [] },
    ...(dense ? [{ ...base, name: 'grid', command: worker('grid'), array: cfg.slurmArray, needs: ['extract'] }] : []),
    { ...base, name: 'finish', command: worker('finish'), needs: [dense ? 'grid' : 'extract'] },
  ];
}

/**
 * Submits the evaluation's jobs (or prints them with --dry-run) and waits for them; the results are
 * then where a local run writes them. `unwritten(since)` names the results not written since then.
 */
export async function launchEvalOnSlurm(
  cfg: EvalConfig,
  log: (line: string) => void,
  unwritten: (since: number) => string[],
): Promise<void> {
  const started = Date.now();
  if (!cfg.cacheDir)
    throw new Error('--launcher slurm shares the feature store between jobs: give --cache-dir a folder on the shared file system');
  const logs = launchLogsFolder(path.join(cfg.out, cfg.task));
  if (!(await launchJobs(evalJobs(cfg, logs, process.cwd()), cfg as SlurmOptions, logs, log))) return;
  const missing = unwritten(started);
  if (missing.length)
    throw new Error(
      `the Slurm jobs ended without the result of ${missing[0]}${missing.length > 1 ? ` and ${missing.length - 1} more` : ''}: see the job logs in ${logs}`,
    );
  log(`slurm: every result written under ${path.join(cfg.out, cfg.task)} (job logs in ${logs})`);
}
