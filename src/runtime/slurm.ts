/**
 * Slurm, driven as submitit drives it: job scripts submitted with `sbatch --parsable`, watched with
 * `squeue`, requeued with `scontrol requeue`; no scheduler, RPC or collective library of our own.
 * Work is split into idempotent units whose outputs live on the shared file system: a job (or an
 * array task) does the units of its share that have no output yet, so a requeued or rerun task
 * continues where it stopped, and whether a job did its work is read from its outputs.
 *
 * Preemption: every job asks for `--signal=B:USR1@<grace> --requeue`. The batch shell forwards
 * USR1 to the worker, which finishes its unit, saves, and exits with PREEMPTED_EXIT; the script
 * then requeues its own job (or array task).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { shellCommand, shellQuote } from './shell.js';

/** The exit status of a worker that stopped for preemption (USR1) and wants its job requeued. */
export const PREEMPTED_EXIT = 3;

/** The sbatch settings every command with `--launcher slurm` takes (its schema fields). */
export const SLURM_FIELDS = {
  launcher: z
    .enum(['local', 'slurm'])
    .default('local')
    .describe('local: run here; slurm: submit the work as Slurm jobs (array jobs with dependencies) and watch them'),
  slurmPartition: z.string().default('').describe("Slurm partition ('': the cluster's default)"),
  slurmAccount: z.string().default('').describe("Slurm account ('': none)"),
  slurmTime: z.string().default('4:00:00').describe('time limit of each job (sbatch --time)'),
  slurmCpus: z.number().int().min(1).default(2).describe('CPUs per task'),
  slurmMem: z.string().default('16G').describe('memory per task (sbatch --mem)'),
  slurmArray: z.number().int().min(1).default(8).describe('tasks of each array job'),
  slurmGrace: z.number().int().min(10).default(120).describe('seconds before the time limit when a task is told to save and requeue'),
  slurmExtra: z.string().default('').describe("more sbatch options, e.g. '--qos=high --constraint=avx512'"),
  dryRun: z.boolean().default(false).describe('with --launcher slurm: print the job scripts, submit nothing'),
};

export type SlurmOptions = {
  [K in keyof typeof SLURM_FIELDS]: z.output<(typeof SLURM_FIELDS)[K]>;
};

export interface JobSpec {
  name: string;
  /** The worker's command line (argv); it runs in `cwd`. */
  command: string[];
  cwd: string;
  /** Array tasks 0..array-1 (SLURM_ARRAY_TASK_ID tells each its share); absent: one task. */
  array?: number;
  /** Jobs that must end successfully first (afterok). */
  after?: string[];
  /** Folder of the job's logs (created). */
  logs: string;
}

/** The batch script of `job`: its sbatch options, then the worker under a shell that forwards USR1 and requeues. */
export function jobScript(job: JobSpec, o: SlurmOptions): string {
  const opt = (k: string, v: string | number) => `#SBATCH --${k}=${v}`;
  const log = path.join(job.logs, job.array ? `${job.name}-%A_%a.log` : `${job.name}-%j.log`);
  const lines = [
    '#!/bin/bash',
    opt('job-name', job.name),
    opt('output', log),
    opt('cpus-per-task', o.slurmCpus),
    opt('mem', o.slurmMem),
    opt('time', o.slurmTime),
    opt('signal', `B:USR1@${o.slurmGrace}`),
    '#SBATCH --requeue',
    // A requeued task appends to its log: every attempt stays readable.
    opt('open-mode', 'append'),
    ...(job.array ? [opt('array', `0-${job.array - 1}`)] : []),
    ...(o.slurmPartition ? [opt('partition', o.slurmPartition)] : []),
    ...(o.slurmAccount ? [opt('account', o.slurmAccount)] : []),
    ...(job.after?.length ? [opt('dependency', `afterok:${job.after.join(':')}`)] : []),
    ...(o.slurmExtra ? [`#SBATCH ${o.slurmExtra}`] : []),
    `cd ${shellQuote(job.cwd)}`,
    // The worker runs as a child so that this shell can pass the preemption signal on and wait for it.
    `${shellCommand(job.command)} &`,
    'worker=$!',
    'trap \'kill -USR1 "$worker" 2>/dev/null\' USR1',
    'wait "$worker"; status=$?',
    // wait returns early when the trap fires: wait again for the worker's own status.
    'while kill -0 "$worker" 2>/dev/null; do wait "$worker"; status=$?; done',
    `if [ "$status" -eq ${PREEMPTED_EXIT} ]; then`,
    '  id="$SLURM_JOB_ID"',
    '  if [ -n "$SLURM_ARRAY_JOB_ID" ]; then id="$SLURM_ARRAY_JOB_ID"_"$SLURM_ARRAY_TASK_ID"; fi',
    '  scontrol requeue "$id"',
    '  exit 0',
    'fi',
    'exit "$status"',
    '',
  ];
  return lines.join('\n');
}

const slurm = (cmd: string, args: string[]) => {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (e) {
    const err = e as { code?: string; stderr?: string };
    if (err.code === 'ENOENT')
      throw new Error(`${cmd} not found: --launcher slurm needs the Slurm client commands (sbatch, squeue, scontrol)`);
    throw new Error(
      `${cmd} ${args.join(' ')} failed: ${
        String(err.stderr ?? e)
          .trim()
          .split('\n')[0]
      }`,
    );
  }
};

/** Submits `job` (the script is kept beside its logs); returns its job id. */
export function submit(job: JobSpec, o: SlurmOptions): string {
  fs.mkdirSync(job.logs, { recursive: true });
  const file = path.join(job.logs, `${job.name}.sbatch`);
  fs.writeFileSync(file, jobScript(job, o));
  return slurm('sbatch', ['--parsable', file]).split(';')[0];
}

export interface QueuedJob {
  id: string;
  state: string;
  /** Why it is pending (squeue %r). */
  reason: string;
}

/** The jobs of `ids` (array tasks included) still in the queue, with their state. */
export function queued(ids: string[]): QueuedJob[] {
  if (!ids.length) return [];
  const out = slurm('squeue', ['-h', '-j', ids.join(','), '-o', '%i %T %r']);
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [id, state, reason = ''] = l.split(' ');
      return { id, state, reason };
    });
}

/**
 * Waits until none of `ids` is queued, calling `tick` with what is left every `everyMs`. A job
 * left waiting on a dependency that failed would wait forever: the jobs are cancelled and the
 * wait ends with an error.
 */
export async function waitForJobs(ids: string[], tick: (left: QueuedJob[]) => void, everyMs = 2000): Promise<void> {
  for (;;) {
    const left = queued(ids);
    tick(left);
    if (!left.length) return;
    const stuck = left.find((j) => j.reason === 'DependencyNeverSatisfied');
    if (stuck) {
      slurm('scancel', ids);
      throw new Error(`job ${stuck.id} can never start: a job it depends on failed; the jobs are cancelled`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A new folder for one launch's job scripts and logs, under `dir`/.slurm, named by the time of the launch. */
export const launchLogsFolder = (dir: string) => path.join(dir, '.slurm', new Date().toISOString().replace(/[:.]/g, '-'));

/** A job of one launch, with the names of the jobs of that launch it waits for. */
export type LaunchJob = JobSpec & { needs: string[] };

/**
 * Submits `jobs` in order, each after the jobs it needs, and waits until none is queued, saying
 * how many are left in each state whenever that changes; a failed wait names the logs. With
 * --dry-run it prints each job's script instead (its dependencies by name) and returns false.
 */
export async function launchJobs(jobs: LaunchJob[], o: SlurmOptions, logs: string, log: (line: string) => void): Promise<boolean> {
  if (o.dryRun) {
    for (const j of jobs)
      log(`# ${j.name} (after ${j.needs.join(', ') || 'nothing'})\n${jobScript({ ...j, after: j.needs.map((n) => `<${n}>`) }, o)}`);
    return false;
  }
  const ids = new Map<string, string>();
  for (const j of jobs) {
    const id = submit({ ...j, after: j.needs.map((n) => ids.get(n)!) }, o);
    ids.set(j.name, id);
    const array = j.array ? ` (${j.array} array tasks)` : '';
    log(`slurm: submitted ${j.name} as job ${id}${array}${j.needs.length ? `, after ${j.needs.join(', ')}` : ''}`);
  }
  let last = '';
  await waitForJobs([...ids.values()], (left) => {
    const counts = new Map<string, number>();
    for (const { state } of left) counts.set(state, (counts.get(state) ?? 0) + 1);
    const now = left.length ? [...counts].map(([state, n]) => `${n} ${state.toLowerCase()}`).join(', ') : 'all done';
    if (now !== last) log(`slurm: ${now}`);
    last = now;
  }).catch((e: Error) => {
    throw new Error(`${e.message}: see the job logs in ${logs}`);
  });
  return true;
}

/**
 * A worker's preemption signal (USR1, forwarded by its job script): `requested` turns true, and
 * the worker finishes its unit and exits with PREEMPTED_EXIT.
 */
export class Preemption {
  requested = false;
  private readonly handler = () => {
    this.requested = true;
  };
  constructor() {
    process.on('SIGUSR1', this.handler);
  }
  dispose(): void {
    process.off('SIGUSR1', this.handler);
  }
}

/** This task's share of `units` (round-robin), from its array index and the array's size. */
export const taskShare = <T>(units: T[], task: number, tasks: number): T[] => units.filter((_, i) => i % tasks === task);
