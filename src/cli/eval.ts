/**
 * `npm run eval -- --task NAME --checkpoint RUN_OR_FILE [options]`: frozen-feature evaluation
 * with the paper's protocol (eval spec), for the checkpoint and the baselines, written under
 * <out>/<task>/. The protocol lives in src/eval; this file maps flags and outputs.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { EvalConfig } from '../eval/config.js';
import { EvalConfigSchema } from '../eval/config.js';
import { evaluate, resultNames } from '../eval/evaluate.js';
import { launchEvalOnSlurm } from '../eval/slurm.js';
import { Preempted } from '../segmentation/out-of-core.js';
import { PREEMPTED_EXIT, Preemption } from '../runtime/slurm.js';
import { savePcaPicture } from '../report/pca.js';
import { resultFile, writeResult } from '../report/results.js';
import { checkWritableDir, removeStaleTempFiles, makeDirs } from '../runtime/atomic.js';
import { initBackend } from '../runtime/backend.js';
import { commandConfig, isMain, runMain, userPath } from './command.js';
import { ProgressBar } from './progress.js';

export const EVAL_COMMAND = {
  usage: 'npm run eval -- --task TASK --checkpoint RUN_OR_FILE [options]',
  summary:
    "Frozen-feature evaluation with the CAPI paper's protocol, for the checkpoint and (by default) four\n" +
    "baselines: init (a capi-ts run's own step-0 weights), random-init (the same architecture at the\n" +
    "reference's random init), pixel-patches (raw patches) and pixels (the whole image); each task's floor\n" +
    '(and, dense tasks, ceiling) as rows of their own.\n' +
    'Probes: classification attentive, linear, knn, predictor-pooling, pca; segmentation knn, knn-patch,\n' +
    'knn-centered (only when named), logreg, pca.',
  schema: EvalConfigSchema,
};

/** The files of `files` that git tracks (none outside a git checkout). */
function trackedByGit(files: string[]): string[] {
  const dir = path.dirname(files[0]);
  let cwd = dir;
  while (!fs.existsSync(cwd)) cwd = path.dirname(cwd);
  const r = spawnSync('git', ['-C', cwd, 'ls-files', '--full-name', '-z', '--', ...files.map((f) => path.relative(cwd, f))], {
    encoding: 'utf8',
  });
  if (r.status !== 0) return [];
  const top = spawnSync('git', ['-C', cwd, 'rev-parse', '--show-toplevel'], { encoding: 'utf8' }).stdout.trim();
  const tracked = new Set(
    r.stdout
      .split('\0')
      .filter(Boolean)
      .map((f) => path.join(top, f)),
  );
  return files.filter((f) => tracked.has(path.resolve(f)));
}

/** Before any work: the output folder is writable, and no tracked result is replaced without --overwrite. */
function checkOutput(cfg: EvalConfig): void {
  // Checked without creating it: an evaluation that fails leaves no empty folder behind.
  checkWritableDir(path.join(cfg.out, cfg.task), '--out');
  for (const dir of [path.join(cfg.out, cfg.task), path.join(cfg.out, cfg.task, 'pca')]) removeStaleTempFiles(dir);
  if (cfg.overwrite) return;
  const tracked = trackedByGit(resultNames(cfg).map((m) => resultFile(cfg.out, cfg.task, m)));
  if (tracked.length) {
    throw new Error(
      `eval would replace ${tracked[0]}${tracked.length > 1 ? ` and ${tracked.length - 1} more` : ''}, tracked by git: pass --overwrite, or choose another --out`,
    );
  }
}

export async function main(argv = process.argv.slice(2)): Promise<void> {
  const parsed = commandConfig(EVAL_COMMAND, argv);
  if (!parsed) return;
  const cfg = { ...parsed.config };
  for (const k of ['checkpoint', 'dataDir', 'dataRoot', 'out', 'cacheDir'] as const)
    if (parsed.values[k] !== undefined) cfg[k] = userPath(cfg[k]);
  checkOutput(cfg);
  if (cfg.launcher === 'slurm') {
    // Every result the evaluation writes, written after the jobs were submitted.
    const unwritten = (since: number) =>
      resultNames(cfg).filter((n) => {
        const f = resultFile(cfg.out, cfg.task, n);
        return !fs.existsSync(f) || fs.statSync(f).mtimeMs < since;
      });
    await launchEvalOnSlurm(cfg, (l) => console.error(l), unwritten);
    return;
  }
  await initBackend(cfg.backend, cfg.threads);
  // A task of a Slurm evaluation: its share from the array, and USR1 (preemption) asked between units.
  const preemption = cfg.stage === 'all' ? undefined : new Preemption();
  const share = preemption
    ? {
        task: Number(process.env.SLURM_ARRAY_TASK_ID ?? 0),
        tasks: Number(process.env.SLURM_ARRAY_TASK_COUNT ?? 1),
        preempted: () => preemption.requested,
      }
    : undefined;
  if (share)
    console.error(`slurm task ${share.task} of ${share.tasks} (${cfg.stage}), attempt ${1 + Number(process.env.SLURM_RESTART_COUNT ?? 0)}`);
  const pcaDir = path.join(cfg.out, cfg.task, 'pca');
  const run = evaluate(cfg, {
    share,
    log: (line) => console.error(line),
    progress: (label, total, initial) => new ProgressBar(total, label, initial),
    savePca: async (p) => {
      makeDirs(pcaDir);
      const file = path.join(pcaDir, `${p.name.replace(/[^A-Za-z0-9._-]+/g, '_')}.png`);
      await savePcaPicture(file, p.rgb, 3, p.size, p.feats, p.grid, p.dim);
      return file;
    },
    onResult: (r) => {
      const file = writeResult(cfg.out, r);
      console.error(
        `${r.model}: ${Object.entries(r.metrics)
          .map(([k, v]) => `${k} ${v.toFixed(1)}`)
          .join(', ')} -> ${file}`,
      );
    },
  });
  try {
    await run;
  } catch (e) {
    if (!(e instanceof Preempted)) throw e;
    console.error(`${e.message}`);
    process.exitCode = PREEMPTED_EXIT;
  } finally {
    preemption?.dispose();
  }
}

if (isMain(import.meta.url)) runMain(main);
