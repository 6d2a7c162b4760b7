/**
 * `study --launcher slurm`: every pretraining run a job (it trains to its end and evaluates its
 * learning-curve points, which need its weights there), every end evaluation a job after its run
 * (afterok), all on the shared file system; the launcher waits for them, then builds the report.
 * Each job runs this same command, for its unit (`--unit run:<id>` or `--unit eval:<index>`).
 */
import { fileURLToPath } from 'node:url';
import { configFlags } from '../runtime/schema.js';
import type { LaunchJob, SlurmOptions } from '../runtime/slurm.js';
import { launchJobs, launchLogsFolder } from '../runtime/slurm.js';
import type { Plan } from './plans.js';

const STUDY_CLI = fileURLToPath(new URL('../cli/study.ts', import.meta.url));

/** The study's jobs, in submission order, each with the jobs it waits for. */
export function studyJobs(plan: Plan, config: Record<string, unknown>, logs: string, cwd: string): LaunchJob[] {
  const worker = (unit: string) => [
    process.execPath,
    '--import',
    'tsx',
    STUDY_CLI,
    ...configFlags({ ...config, launcher: 'local', dryRun: false, unit }),
  ];
  return [
    ...plan.runs.map((r) => ({ name: `run-${r.id}`, command: worker(`run:${r.id}`), cwd, logs, needs: [] })),
    ...plan.evals.flatMap((e, i) =>
      e.atEpochs === undefined ? [{ name: `eval-${i}`, command: worker(`eval:${i}`), cwd, logs, needs: [`run-${e.run}`] }] : [],
    ),
  ];
}

/** Submits the study's jobs (or prints them with --dry-run) and waits for them. */
export async function launchStudyOnSlurm(
  plan: Plan,
  config: Record<string, unknown> & SlurmOptions,
  resultsDir: string,
  log: (line: string) => void,
): Promise<void> {
  const logs = launchLogsFolder(resultsDir);
  if (await launchJobs(studyJobs(plan, config, logs, process.cwd()), config, logs, log))
    log(`slurm: every job ended (job logs in ${logs})`);
}
