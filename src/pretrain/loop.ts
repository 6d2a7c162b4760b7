/**
 * The pretraining run: data (checked before anything is written), steps, metrics (JSONL, one
 * line per step), checkpoints every K steps and at the end (atomic, and only of finite weights),
 * resume (validated against the run it continues), and a clean stop on SIGINT / SIGTERM.
 */
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { checkWritableDir, ensureWritableDir } from '../runtime/atomic.js';
import type { BackendInfo } from '../runtime/backend.js';
import { withFolderLock } from '../runtime/lock.js';
import { shellCommand } from '../runtime/shell.js';
import { codeVersion, trainingCode } from '../runtime/version.js';
import { nonFiniteTensors } from '../runtime/finite.js';
import type { LoadedCheckpoint } from './checkpoint.js';
import { exportTeacher, loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import type { PretrainConfig } from './config.js';
import { teacherTarget, withOverrides } from './config.js';
import { checkCode, checkResume } from './resume.js';
import { RunFolder } from './run-folder.js';
import { BatchSampler, loadPretrainBatch, openPretrainDataset } from './data.js';
import { trainFlopsPerImage } from './flops.js';
import { checkWasmStepMemory, checkWebgpuStepBindings } from './memory.js';
import type { LoopOutcome, TrainDriver } from './train-loop.js';
import { trainLoop } from './train-loop.js';
import type { CapiState, StepMetrics } from './step.js';
import { disposeState, initState, peakMomentumFor, schedulesAt, stepMaskCounts, stepsForEpochs, totalSteps, trainStep } from './step.js';
import { meanRowCosine, TeacherAge, teacherInitShare } from './diagnostics.js';
import { CLUSTER_W } from '../model/heads.js';
import type { Params } from '../model/capi.js';
import type { ModelConfig } from '../model/config.js';

export interface RunOptions {
  out: string;
  resume: boolean;
  /** Stop (with a checkpoint) once this many steps are done; 0: run to the end. */
  stopAfter: number;
  /** Instead of stopAfter: stop after this many epochs of the data (a study's learning-curve point). */
  stopAfterEpochs?: number;
  backend: BackendInfo;
  log: (line: string) => void;
  onStep?: (m: StepRecord, total: number) => void;
  /** Leave unreadable or out-of-bounds images out (counted in config.json) instead of stopping. */
  skipBadImages?: boolean;
  /** Resume although the checkpoint's config or the data differ from the run folder's. */
  forceResume?: boolean;
  /** With resume: the preset the user asked for, which must be the run's. */
  requestedPreset?: string;
  /** A measurement of the teacher during the run (e.g. src/eval/monitor.ts: k-NN on a labeled subset). */
  monitor?: PretrainMonitor;
  /** Take the run folder's lock although another process holds it (src/runtime/lock.ts). */
  takeOver?: boolean;
  /** Image folders up to this many files are decoded whole before the run (default FULL_DECODE_CHECK_MAX). */
  fullDecodeMax?: number;
  /** With resume and forceResume: config fields changed from the checkpoint on (e.g. a lower lr after a divergence); recorded. */
  resumeOverrides?: Record<string, unknown>;
}

/**
 * Measures the EMA teacher every `every` steps and after the last, into that step's metrics line
 * (`monitorKnnTop1`): what the features are worth as training goes, not only at the end.
 */
export interface PretrainMonitor {
  every: number;
  /** What it measures, for config.json. */
  description: string;
  /** Top-1 (%) of the teacher whose parameters are the live training state (read them, never dispose them). */
  measure(teacher: Params, model: ModelConfig): Promise<number>;
}

export interface StepRecord extends StepMetrics {
  imagesPerSec: number;
  elapsedSec: number;
  /** prod of the teacher momenta so far: how much of its random init the EMA teacher still is. */
  teacherInitShare: number;
  /** The teacher's mean age in steps (diagnostics.ts: teacherMeanAge); NaN before its first update. */
  teacherMeanAge: number;
  /** Mean cosine between the prototypes and their initial values. */
  prototypeCosineToInit: number;
  /** RunOptions.monitor's measurement, on the steps it runs. */
  monitorKnnTop1?: number;
  /** Files of this step's batch that could not be decoded and were left out (--skip-bad-images). */
  skippedImages?: string[];
}

export interface RunResult {
  state: CapiState;
  config: PretrainConfig;
  records: StepRecord[];
  totalSteps: number;
  stoppedEarly: boolean;
  /** The signal that stopped the run (after its checkpoint), if one did. */
  interrupted?: NodeJS.Signals;
  /** Resume found the run already finished: nothing was done. */
  alreadyComplete: boolean;
}

/** How many consecutive non-finite losses abort the run (spec 13: "more than 2"). */
const MAX_NAN_STEPS = 3;

export async function runPretraining(requested: PretrainConfig, opts: RunOptions): Promise<RunResult> {
  checkWritableDir(opts.out, '--out');
  // One writer per run folder: a second process in the same --out is refused, naming the first. A
  // run that fails before writing anything leaves no folder behind.
  return withFolderLock(opts.out, 'training run', { takeOver: opts.takeOver, log: opts.log }, () => {
    ensureWritableDir(opts.out, '--out');
    return startOrResume(requested, opts);
  });
}

async function startOrResume(requested: PretrainConfig, opts: RunOptions): Promise<RunResult> {
  const folder = new RunFolder(opts.out);
  for (const f of folder.removeStaleTempFiles()) opts.log(`removed ${f}, left by an interrupted write`);
  if (!opts.resume && fs.existsSync(folder.checkpoint)) {
    throw new Error(`${folder.checkpoint} already exists: pass --resume to continue that run, or choose another --out`);
  }
  if (!opts.resume) folder.checkNoForeignFiles();
  const loaded = opts.resume ? loadCheckpoint(folder.checkpoint) : undefined;
  const overrides = opts.resumeOverrides ?? {};
  if (loaded && Object.keys(overrides).length) {
    if (!opts.forceResume) throw new Error('--resume continues the saved config: changing fields needs --force-resume');
    loaded.config = withOverrides(loaded.config, overrides);
    opts.log(`--force-resume: from step ${loaded.state.step} on, ${JSON.stringify(overrides)} (recorded in config.json)`);
  }
  return run(folder, loaded?.config ?? requested, loaded, opts);
}

async function run(
  folder: RunFolder,
  requested: PretrainConfig,
  loaded: LoadedCheckpoint | undefined,
  opts: RunOptions,
): Promise<RunResult> {
  let cfg = requested;
  const resumed = loaded?.state;
  // Data first: nothing is written before every image is known to be readable.
  const data = await openPretrainDataset(cfg.train, cfg.model.imageSize, {
    skipBadImages: opts.skipBadImages,
    fullDecodeMax: opts.fullDecodeMax,
  });
  const { dataset } = data;
  for (const s of data.skipped.slice(0, 5)) opts.log(`skipped ${s.file}: ${s.problem}`);
  if (data.skipped.length) opts.log(`skipped ${data.skipped.length} bad images in all (--skip-bad-images)`);
  const total = totalSteps(cfg, dataset.size);
  const target = teacherTarget(cfg.train);
  if (target !== undefined && !resumed) {
    const m = peakMomentumFor(cfg, total, target);
    cfg = { ...cfg, train: { ...cfg.train, teacherMomentum: m } };
    const what =
      'initShare' in target
        ? `leaves ${target.initShare} of the init after ${total} steps (--teacher-init-share-target)`
        : `gives the final teacher a mean age of ${(target.meanAgeShare * total).toFixed(0)} steps, ${target.meanAgeShare} of ${total} (--teacher-mean-age-share)`;
    opts.log(`teacher momentum ${m.toFixed(6)}: ${what}`);
  }
  const sampler = new BatchSampler(dataset.size, cfg.train.batchSize, cfg.train.seed);
  const stopAfter = opts.stopAfterEpochs ? stepsForEpochs(opts.stopAfterEpochs, dataset.size, cfg.train.batchSize) : opts.stopAfter;
  const saved = folder.readConfig();
  let resumes = saved?.resumes ?? [];
  if (loaded && resumed) {
    checkResume(folder, cfg, data.fingerprint, opts);
    const overrides =
      opts.resumeOverrides && Object.keys(opts.resumeOverrides).length ? { overrides: opts.resumeOverrides, forced: true } : {};
    resumes = [
      ...resumes,
      { ...checkCode({ step: resumed.step, code: loaded.code, trainingCode: loaded.trainingCode }, opts), ...overrides },
    ];
    if (stopAfter > 0 && resumed.step >= stopAfter && resumed.step < total) {
      // Its teacher export must be the checkpoint's (a run continued from a checkpoint alone has none).
      if (!folder.teacherExportReadable())
        await exportTeacher(opts.out, resumed, cfg.model, {
          step: resumed.step,
          seed: cfg.train.seed,
          backend: opts.backend,
          preset: cfg.preset,
        });
      opts.log(`the run in ${opts.out} is at step ${resumed.step}, at or past the stop at ${stopAfter}: nothing to do`);
      return { state: resumed, config: cfg, records: [], totalSteps: total, stoppedEarly: true, alreadyComplete: false };
    }
    if (resumed.step >= total) {
      // A finished run whose teacher export is missing or damaged gets it again from the checkpoint.
      const exported = folder.teacherExportReadable();
      if (!exported)
        await exportTeacher(opts.out, resumed, cfg.model, {
          step: resumed.step,
          seed: cfg.train.seed,
          backend: opts.backend,
          preset: cfg.preset,
        });
      opts.log(
        `the run in ${opts.out} is already complete (step ${resumed.step} of ${total}): ${exported ? 'nothing to do' : 'its teacher export was missing or damaged and is written again from the checkpoint'}; evaluate it: ${evalCommand(cfg, opts.out)}`,
      );
      return { state: resumed, config: cfg, records: [], totalSteps: total, stoppedEarly: false, alreadyComplete: true };
    }
    opts.log(`resumed ${folder.checkpoint} at step ${resumed.step}`);
  }
  if (opts.backend.backend === 'wasm') await checkWasmStepMemory(cfg);
  if (opts.backend.adapter) checkWebgpuStepBindings(cfg, opts.backend.adapter.maxBindingBytes);
  const state = resumed ?? initState(cfg);
  const counts = stepMaskCounts(cfg);
  const flops = trainFlopsPerImage(cfg.model, counts);
  folder.writeConfig({
    ...cfg,
    backend: opts.backend,
    dataset: dataset.description,
    datasetSize: dataset.size,
    datasetFingerprint: data.fingerprint,
    skippedImages: { count: data.skipped.length, files: data.skipped.slice(0, 100) },
    totalSteps: total,
    stepsPerEpoch: sampler.stepsPerEpoch,
    masking: counts,
    trainGflopPerImage: flops / 1e9,
    // The code that started the run (kept across resumes), and each resume's.
    code: resumed ? saved?.code : codeVersion(),
    trainingCode: resumed ? saved?.trainingCode : trainingCode(),
    ...(resumes.length ? { resumes } : {}),
    ...(opts.monitor ? { monitor: { every: opts.monitor.every, description: opts.monitor.description } } : {}),
  });
  opts.log(`data: ${dataset.description}, ${dataset.size} images, ${sampler.stepsPerEpoch} steps/epoch, ${total} steps total`);
  opts.log(`masking: ${counts.nVisible} visible / ${counts.nMasked} masked of ${counts.nTokens}, ${counts.nPredict} predictions per image`);

  const kept = opts.resume ? folder.keptMetrics(state.step, opts.log) : [];
  const initial = initState(cfg);
  const driver = capiDriver(folder, cfg, state, total, dataset, sampler, initial.clustering[CLUSTER_W].clone(), opts);
  disposeState(initial);
  let outcome: LoopOutcome<StepRecord>;
  try {
    outcome = await trainLoop(driver, {
      folder,
      kept,
      resumedAt: opts.resume ? state.step : -1,
      stopAfter,
      checkpointEvery: cfg.train.checkpointEvery,
      log: opts.log,
      onStep: opts.onStep,
    });
  } finally {
    driver.dispose();
  }
  if (outcome.interrupted) {
    opts.log(
      `${outcome.interrupted}: stopped at step ${state.step} of ${total}; checkpoint in ${opts.out}; resume with: ${shellCommand(['npm', 'run', 'pretrain', '--', '--out', opts.out, '--resume'])}`,
    );
  }
  if (tf.memory().numTensors > 10_000) opts.log(`warning: ${tf.memory().numTensors} live tensors`);
  return { state, config: cfg, ...outcome, totalSteps: total, alreadyComplete: false };
}

/**
 * The CAPI run's side of the training loop (train-loop.ts): a trainStep on the step's batch, its
 * metrics line with the diagnostics (the teacher's init share and mean age, the prototypes' drift
 * from `initialPrototypes`, which it owns) and the monitor, a checkpoint of finite weights with its
 * teacher export, and divergence after MAX_NAN_STEPS non-finite losses in a row.
 */
function capiDriver(
  folder: RunFolder,
  cfg: PretrainConfig,
  state: CapiState,
  total: number,
  dataset: Awaited<ReturnType<typeof openPretrainDataset>>['dataset'],
  sampler: BatchSampler,
  initialPrototypes: tf.Tensor,
  opts: RunOptions,
): TrainDriver<StepMetrics & { skippedImages?: string[] }, StepRecord> & { dispose(): void } {
  // The teacher's init share and mean age so far: products over the schedule, also on resume.
  const momentaSoFar = Array.from({ length: state.step }, (_, s) => schedulesAt(cfg, total, s).momentum);
  let initShare = teacherInitShare(momentaSoFar);
  const teacherAge = new TeacherAge();
  for (const m of momentaSoFar) teacherAge.update(m);
  let nanSteps = 0;
  const kept = (lastSaved: number) => (lastSaved >= 0 ? `the checkpoint of step ${lastSaved} is kept` : 'no checkpoint was written');
  return {
    get step() {
      return state.step;
    },
    total,
    checkpointAtEnd: true,
    async trainStep(lastSaved) {
      const batch = await loadPretrainBatch(dataset, sampler, cfg, state.step, opts.skipBadImages).catch((e: Error) => {
        const how =
          lastSaved >= 0
            ? `the checkpoint of step ${lastSaved} is kept: resume with --resume --skip-bad-images`
            : 'no checkpoint was written: rerun with --skip-bad-images';
        throw new Error(`${e.message}; ${how} to leave it out (recorded in metrics.jsonl)`);
      });
      for (const f of batch.skippedImages ?? []) opts.log(`step ${state.step}: ${f} cannot be decoded; left out (--skip-bad-images)`);
      const m = await trainStep(state, batch, cfg, total);
      return { metrics: { ...m, ...(batch.skippedImages ? { skippedImages: batch.skippedImages } : {}) }, images: batch.size };
    },
    async record({ skippedImages, ...m }, clock) {
      initShare *= m.momentum;
      teacherAge.update(m.momentum);
      const rec: StepRecord = {
        ...m,
        ...clock,
        teacherInitShare: initShare,
        teacherMeanAge: teacherAge.meanAge,
        prototypeCosineToInit: await meanRowCosine(state.clustering[CLUSTER_W], initialPrototypes),
        ...(skippedImages ? { skippedImages } : {}),
      };
      if (opts.monitor && (state.step % opts.monitor.every === 0 || state.step === total))
        rec.monitorKnnTop1 = await opts.monitor.measure(state.teacher, cfg.model);
      return rec;
    },
    divergence(rec, lastSaved) {
      nanSteps = Number.isFinite(rec.capiLoss) && Number.isFinite(rec.clusteringLoss) ? 0 : nanSteps + 1;
      if (nanSteps < MAX_NAN_STEPS) return undefined;
      return `training diverged: non-finite loss for ${nanSteps} consecutive steps at step ${rec.step}; ${kept(lastSaved)}; ${lowerLr(cfg, lastSaved, opts.out)}, or check the data`;
    },
    async checkpoint(lastSaved) {
      // Never replace the last good checkpoint with a diverged one.
      const bad = await nonFiniteTensors({
        ...prefixed('student.', state.student),
        ...prefixed('teacher.', state.teacher),
        ...prefixed('clustering.', state.clustering),
      });
      if (bad.length)
        throw new Error(
          `training diverged: ${bad.length} weight tensors are not finite at step ${state.step} (e.g. ${bad[0]}); ${kept(lastSaved)}; ${lowerLr(cfg, lastSaved, opts.out)}`,
        );
      await saveCheckpoint(folder.checkpoint, state, cfg, opts.backend);
      await exportTeacher(opts.out, state, cfg.model, {
        step: state.step,
        seed: cfg.train.seed,
        backend: opts.backend,
        preset: cfg.preset,
      });
    },
    dispose: () => initialPrototypes.dispose(),
  };
}

/** A progress bar's onStep: each step's losses and speed, and the monitor's last k-NN top-1. */
export function progressOnStep(
  open: (total: number, start: number) => { update(done: number, text: string): void },
): (rec: StepRecord, total: number) => void {
  let bar: ReturnType<typeof open> | undefined;
  let knn = '';
  return (m, total) => {
    bar ??= open(total, m.step);
    if (m.monitorKnnTop1 !== undefined) knn = ` k-NN ${m.monitorKnnTop1.toFixed(1)}%`;
    const losses = `loss ${m.capiLoss.toFixed(3)} clust ${m.clusteringLoss.toFixed(3)} H ${m.targetEntropy.toFixed(2)}`;
    bar.update(m.step + 1, `${losses} ${m.imagesPerSec.toFixed(1)} img/s${knn}`);
  };
}

/** The advice after a divergence: resume the kept checkpoint with a lower lr (recorded), or start anew with one. */
function lowerLr(cfg: PretrainConfig, lastSaved: number, out: string): string {
  const lr = String(cfg.train.lr / 4);
  return lastSaved >= 0
    ? `continue from it with a lower learning rate: ${shellCommand(['npm', 'run', 'pretrain', '--', '--out', out, '--resume', '--force-resume', '--lr', lr])}`
    : `start anew with a lower learning rate (--lr ${lr})`;
}

/** The evaluation task of a run's data (a folder of images: an ImageNet-style task with its own --data-root). */
const EVAL_TASK: Record<string, string> = { fmnist: 'fmnist', 'fmnist-canvas': 'fmnist-canvas', 'fmnist-scenes': 'fmnist-scenes' };

/** What to run next on a finished run: its evaluation, as a command to paste. */
export function evalCommand(cfg: PretrainConfig, out: string): string {
  const task = EVAL_TASK[cfg.train.data];
  return shellCommand([
    'npm',
    'run',
    'eval',
    '--',
    '--task',
    task ?? 'imagenet',
    '--checkpoint',
    out,
    ...(task ? [] : ['--data-root', 'DIR']),
  ]);
}

const prefixed = (prefix: string, vars: Record<string, tf.Tensor>) =>
  Object.fromEntries(Object.entries(vars).map(([k, v]) => [prefix + k, v]));
