/**
 * The supervised ceiling of a study: the same encoder, trained with labels for the same
 * number of steps and batches as a CAPI run (same augmented views, AdamW, lr schedule and
 * parameter groups), with a linear head on its average-pooled patch tokens; no masking, no
 * teacher, no drop-path. Frozen-feature evaluation of this encoder shows where the architecture
 * and budget top out. It writes config.json, metrics.jsonl (loss and batch accuracy per step) and
 * the encoder as a teacher export (teacher/), so `eval --checkpoint DIR` reads it like any run.
 * Resumable like a CAPI run: every `checkpointEvery` steps (and on SIGINT / SIGTERM) the encoder,
 * head and optimiser state go to supervised-checkpoint.safetensors, and a rerun in the same folder
 * with the same config continues from it (batches and augmentations are functions of the step).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { LabeledDataset } from '../data/dataset.js';
import { encodeFull } from '../model/capi.js';
import { gridSize } from '../model/config.js';
import { allPositions, tokenCoords } from '../model/coords.js';
import type { AdamWState } from '../runtime/adamw.js';
import { adamwStep, initAdamW } from '../runtime/adamw.js';
import { makeDirs } from '../runtime/atomic.js';
import type { BackendInfo } from '../runtime/backend.js';
import { withFolderLock } from '../runtime/lock.js';
import { codeVersion, trainingCode } from '../runtime/version.js';
import { readTrainState, writeTrainState } from '../model/io/run-files.js';
import { Rng, STREAM } from '../runtime/rng.js';
import { exportTeacher, restoreGroups } from './checkpoint.js';
import type { PretrainConfig } from './config.js';
import { BatchSampler, loadPretrainBatch, openPretrainDataset } from './data.js';
import type { ResumeRecord } from './resume.js';
import { checkWebgpuStepBindings } from './memory.js';
import { checkCode } from './resume.js';
import { elapsedBefore, RunFolder } from './run-folder.js';
import { studentParamGroup } from './schedules.js';
import type { StepClock, TrainDriver } from './train-loop.js';
import { trainLoop } from './train-loop.js';
import type { CapiState, PretrainBatch } from './step.js';
import { disposeState, initState, schedulesAt, totalSteps } from './step.js';

export interface SupervisedStepMetrics {
  step: number;
  loss: number;
  /** Top-1 on the training batch (augmented views). */
  batchAccuracy: number;
  lr: number;
}

/** A supervised run's metrics line. */
export type SupervisedRecord = SupervisedStepMetrics & StepClock;

export interface SupervisedHead {
  w: tf.Variable;
  b: tf.Variable;
}

/** Encoder parameters a supervised step trains: those encodeFull reads (not the decoder, the mask token or the CAPI head). */
function encoderNames(state: CapiState): string[] {
  return Object.keys(state.teacher).filter((n) => !n.startsWith('decoder.') && n !== 'mask_token' && state.student[n].trainable);
}

/** The head: weight N(0, 0.02) [d, classes], bias 0, from the run's seed. */
export function initSupervisedHead(cfg: PretrainConfig, classes: number): SupervisedHead {
  const rng = Rng.derive(cfg.train.seed, STREAM.init, 1);
  const d = cfg.model.dim;
  const w = tf.tensor2d(
    Float32Array.from({ length: d * classes }, () => 0.02 * rng.normal()),
    [d, classes],
  );
  const b = tf.zeros([classes]);
  const head = { w: tf.variable(w), b: tf.variable(b) };
  tf.dispose([w, b]); // the variables keep the buffers
  return head;
}

/** What a supervised step trains: the encoder's variables and the head's, by name (built once per run). */
export function supervisedParams(state: CapiState, head: SupervisedHead): Record<string, tf.Variable> {
  return { ...Object.fromEntries(encoderNames(state).map((k) => [k, state.student[k]])), 'sup.w': head.w, 'sup.b': head.b };
}

/** One AdamW step of encoder + head (`params`, from supervisedParams) on cross-entropy of the batch's labels. */
export async function supervisedStep(
  state: CapiState,
  head: SupervisedHead,
  params: Record<string, tf.Variable>,
  opt: AdamWState,
  batch: PretrainBatch,
  labels: Int32Array,
  cfg: PretrainConfig,
  total: number,
): Promise<SupervisedStepMetrics> {
  const { model: mc, train: tc } = cfg;
  const t = state.step;
  const { lr } = schedulesAt(cfg, total, t);
  const g = gridSize(mc);
  const n = g * g;
  const b = batch.size;
  const patches = tf.tensor3d(batch.patches, [b, n, mc.inChans * mc.patchSize ** 2]);
  const coords = tf.tensor3d(tokenCoords(g, g, mc.registers, allPositions(b, n), false), [b, mc.registers + n, 2]);
  const y = tf.tensor1d(labels, 'int32');
  let logits: tf.Tensor | undefined;
  const { value, grads } = tf.variableGrads(() => {
    const tokens = encodeFull(state.student, mc, patches, coords).slice([0, mc.registers, 0], [-1, -1, -1]);
    const out = tf.add(tf.matMul(tf.mean(tokens, 1), head.w), head.b);
    logits = tf.keep(out);
    return tf.losses.softmaxCrossEntropy(tf.oneHot(y, head.b.shape[0]!), out) as tf.Scalar;
  }, Object.values(params));
  const byName: Record<string, tf.Tensor> = {};
  for (const [k, v] of Object.entries(params)) if (grads[v.name]) byName[k] = grads[v.name];
  adamwStep(params, byName, opt, { beta1: tc.beta1, beta2: tc.beta2, eps: tc.eps }, (name) => {
    if (name.startsWith('sup.')) return { lr, weightDecay: name === 'sup.b' ? 0 : tc.weightDecay };
    const { lrMult, wdMult } = studentParamGroup(name);
    return { lr: lr * lrMult, weightDecay: tc.weightDecay * wdMult };
  });
  const predicted = tf.argMax(logits!, -1);
  tf.dispose([patches, coords, y, grads, logits!]);
  state.step = t + 1;
  try {
    const [pred, loss] = await Promise.all([predicted.data(), value.data()]); // asynchronous reads: a GPU backend has no others
    let correct = 0;
    for (let i = 0; i < b; i++) if (pred[i] === labels[i]) correct++;
    return { step: t, loss: loss[0], batchAccuracy: correct / b, lr };
  } finally {
    tf.dispose([value, predicted]);
  }
}

export interface SupervisedOptions {
  out: string;
  backend: BackendInfo;
  log: (line: string) => void;
  onStep?: (m: SupervisedRecord, total: number) => void;
  /** Stop (with a checkpoint) once this many steps are done; 0: run to the end. */
  stopAfter?: number;
  /** Take the folder's lock although another process holds it (src/runtime/lock.ts). */
  takeOver?: boolean;
  /** Resume although the training step's code changed since the checkpoint (recorded). */
  forceResume?: boolean;
}

/** What a supervised checkpoint holds: the trained parameters and their AdamW moments, by group. */
const checkpointGroups = (params: Record<string, tf.Variable>, opt: AdamWState) => ({ params, 'opt.m': opt.m, 'opt.v': opt.v });

async function saveSupervised(
  file: string,
  params: Record<string, tf.Variable>,
  opt: AdamWState,
  step: number,
  cfg: PretrainConfig,
): Promise<void> {
  await writeTrainState(file, checkpointGroups(params, opt), {
    step: String(step),
    optSteps: String(opt.steps),
    config: JSON.stringify(cfg),
    code: JSON.stringify(codeVersion()),
    trainingCode: JSON.stringify(trainingCode()),
  });
}

/** Restores a checkpoint of the same config (and training code) into `params` and `opt`; returns its step and the resume's record. */
function loadSupervised(
  file: string,
  params: Record<string, tf.Variable>,
  opt: AdamWState,
  cfg: PretrainConfig,
  opts: SupervisedOptions,
): { step: number; resume: ResumeRecord } {
  const saved = readTrainState(file);
  if (saved.meta.config !== JSON.stringify(cfg))
    throw new Error(`${file}: this checkpoint was written with another config; remove ${path.dirname(file)} to train the ceiling anew`);
  const step = Number(saved.meta.step);
  const meta = (key: string) => (saved.meta[key] ? JSON.parse(saved.meta[key]) : undefined);
  const resume = checkCode({ step, code: meta('code'), trainingCode: meta('trainingCode') }, opts);
  restoreGroups(saved, checkpointGroups(params, opt));
  opt.steps = Number(saved.meta.optSteps);
  return { step, resume };
}

export interface SupervisedOutcome {
  /** The run reached its last step and exported the encoder (else a checkpoint waits for a rerun). */
  finished: boolean;
  /** The signal that stopped it early. */
  interrupted?: NodeJS.Signals;
}

/** Trains (or resumes) the supervised ceiling of `cfg` (its data must be labeled: fmnist) and exports the encoder. */
export async function runSupervised(cfg: PretrainConfig, opts: SupervisedOptions): Promise<SupervisedOutcome> {
  return withFolderLock(opts.out, 'supervised run', { takeOver: opts.takeOver, log: opts.log }, () => trainSupervised(cfg, opts));
}

async function trainSupervised(cfg: PretrainConfig, opts: SupervisedOptions): Promise<SupervisedOutcome> {
  const data = await openPretrainDataset(cfg.train, cfg.model.imageSize);
  const ds = data.dataset as Partial<LabeledDataset> & typeof data.dataset;
  if (typeof ds.label !== 'function' || !ds.numClasses)
    throw new Error(`${ds.description}: a supervised run needs labeled data (--data fmnist)`);
  if (opts.backend.adapter) checkWebgpuStepBindings(cfg, opts.backend.adapter.maxBindingBytes);
  const total = totalSteps(cfg, ds.size);
  const sampler = new BatchSampler(ds.size, cfg.train.batchSize, cfg.train.seed);
  const state = initState(cfg);
  const head = initSupervisedHead(cfg, ds.numClasses);
  const params = supervisedParams(state, head);
  const opt = initAdamW(params);
  makeDirs(opts.out);
  const folder = new RunFolder(opts.out);
  const ckpt = folder.supervisedCheckpoint;
  const resumed = fs.existsSync(ckpt);
  const saved = resumed ? folder.readConfig() : undefined;
  const resumes: ResumeRecord[] = saved?.resumes ?? [];
  if (resumed) {
    const r = loadSupervised(ckpt, params, opt, cfg, opts);
    state.step = r.step;
    resumes.push(r.resume);
  }
  folder.writeConfig({
    ...cfg,
    supervised: true,
    backend: opts.backend,
    dataset: ds.description,
    totalSteps: total,
    code: resumed ? saved?.code : codeVersion(),
    trainingCode: resumed ? saved?.trainingCode : trainingCode(),
    ...(resumes.length ? { resumes } : {}),
  });
  const kept = resumed ? folder.keptMetrics(state.step, opts.log) : [];
  opts.log(
    `supervised ceiling: ${ds.description}, ${total} steps of ${cfg.train.batchSize}${resumed ? `, resumed at step ${state.step}` : ''}`,
  );
  try {
    const driver: TrainDriver<SupervisedStepMetrics, SupervisedRecord> = {
      get step() {
        return state.step;
      },
      total,
      checkpointAtEnd: false, // the finished run exports its encoder instead
      async trainStep() {
        const batch = await loadPretrainBatch(ds, sampler, cfg, state.step);
        const labels = Int32Array.from(sampler.indices(state.step), (i) => ds.label!(i));
        return { metrics: await supervisedStep(state, head, params, opt, batch, labels, cfg, total), images: batch.size };
      },
      record: async (m, clock) => ({ ...m, ...clock }),
      divergence: (r) => (Number.isFinite(r.loss) ? undefined : `supervised run diverged at step ${r.step}: lower --lr`),
      checkpoint: () => saveSupervised(ckpt, params, opt, state.step, cfg),
    };
    const outcome = await trainLoop(driver, {
      folder,
      kept,
      resumedAt: resumed ? state.step : -1,
      stopAfter: opts.stopAfter ?? 0,
      checkpointEvery: cfg.train.checkpointEvery,
      log: opts.log,
      onStep: opts.onStep,
    });
    if (outcome.stoppedEarly) return { finished: false, interrupted: outcome.interrupted };
    // The evaluated encoder is the trained one: copy it where the export reads (no EMA here).
    for (const name of encoderNames(state)) state.teacher[name].assign(state.student[name]);
    await exportTeacher(opts.out, state, cfg.model, {
      step: state.step,
      seed: cfg.train.seed,
      backend: opts.backend,
      preset: cfg.preset,
      supervised: true,
    });
    const seconds = outcome.records.at(-1)?.elapsedSec ?? elapsedBefore(kept);
    folder.writeSupervisedRecord({ steps: total, seconds });
    fs.rmSync(ckpt, { force: true });
    return { finished: true };
  } finally {
    disposeState(state);
    tf.dispose([head.w, head.b, ...Object.values(opt.m), ...Object.values(opt.v)]);
  }
}
