/**
 * One CAPI training iteration (method spec 8.4), readable top to bottom, as a function of
 * (state, batch): teacher forward -> online clustering (+ its gradient) -> SK targets ->
 * student forward on the visible patches -> predictor -> head -> loss -> AdamW -> EMA ->
 * clustering AdamW. All randomness of a step derives from (seed, step), so a resumed run
 * replays exactly.
 */
import * as tf from '@tensorflow/tfjs';
import type { DropPath, Params } from '../model/capi.js';
import { backboneShapes, encodeFull, initBackbone, studentForward } from '../model/capi.js';
import { gridSize } from '../model/config.js';
import { allPositions, patchCoords, tokenCoords } from '../model/coords.js';
import { initClusteringHead, initStudentHead, meanEntropy, onlineClustering, softCrossEntropy, studentHeadLogits } from '../model/heads.js';
import { selectPatches } from '../model/patches.js';
import { Rng, STREAM } from '../runtime/rng.js';
import { positionClusterMI, teacherInitShare, teacherMeanAge } from './diagnostics.js';
import type { AdamWState } from '../runtime/adamw.js';
import { adamwStep, initAdamW } from '../runtime/adamw.js';
import type { PretrainConfig, TeacherTarget } from './config.js';
import type { MaskCounts, MaskedBatch } from './masking.js';
import { maskCounts, sampleMaskedBatch } from './masking.js';
import { scheduleValue, studentParamGroup } from './schedules.js';

export type Variables = Record<string, tf.Variable>;

export interface CapiState {
  /** Number of completed steps. */
  step: number;
  /** Backbone (encoder + predictor) and student head. */
  student: Variables;
  /** EMA of the student backbone; its encoder is the teacher (spec 4). */
  teacher: Variables;
  clustering: Variables;
  studentOpt: AdamWState;
  clusterOpt: AdamWState;
}

/** One batch as the data pipeline delivers it: patchified, augmented pixels. */
export interface PretrainBatch {
  size: number;
  /** [B, N, C p^2] */
  patches: Float32Array;
  /** Files that failed to decode and were replaced by the next index (--skip-bad-images). */
  skippedImages?: string[];
}

export interface StepMetrics {
  step: number;
  capiLoss: number;
  clusteringLoss: number;
  targetEntropy: number;
  /** Prototypes that are the argmax of at least one teacher token in the batch. */
  clustersUsed: number;
  /** MI (nats) between patch position and the teacher's assigned cluster: plug-in, Miller-Madow corrected. */
  positionClusterMI: number;
  positionClusterMICorrected: number;
  /** The plug-in MI with the positions shuffled: its level where position and cluster are independent (diagnostics.ts). */
  positionClusterMIShuffled: number;
  lr: number;
  clusterLr: number;
  momentum: number;
}

/** Variables holding `params` (which are released: the variables keep their buffers). */
function toVariables(params: Params, trainable: boolean): Variables {
  const out: Variables = {};
  for (const [name, t] of Object.entries(params)) {
    out[name] = tf.variable(t, trainable && !name.includes('rope'));
    t.dispose();
  }
  return out;
}

export function trainableStudentNames(state: CapiState): string[] {
  return Object.keys(state.student).filter((n) => state.student[n].trainable);
}

/** Fresh state: reference init, teacher = exact copy of the student (spec 8.3). */
export function initState(cfg: PretrainConfig): CapiState {
  const rng = Rng.derive(cfg.train.seed, STREAM.init);
  const m = cfg.model;
  const backbone = initBackbone(m, rng);
  const head = initStudentHead(m.predDim, m.numClusters, rng);
  const clusterHead = initClusteringHead(m.dim, m.numClusters, rng);
  const teacher: Params = {};
  for (const [name] of backboneShapes(m)) teacher[name] = backbone[name].clone();
  const student = toVariables({ ...backbone, ...head }, true);
  const clustering = toVariables(clusterHead, true);
  const state: CapiState = {
    step: 0,
    student,
    teacher: toVariables(teacher, false),
    clustering,
    studentOpt: { steps: 0, m: {}, v: {} },
    clusterOpt: initAdamW(clustering, Object.keys(clustering)),
  };
  state.studentOpt = initAdamW(student, trainableStudentNames(state));
  return state;
}

export function disposeState(s: CapiState): void {
  for (const group of [s.student, s.teacher, s.clustering, s.studentOpt.m, s.studentOpt.v, s.clusterOpt.m, s.clusterOpt.v]) {
    Object.values(group).forEach((v) => v.dispose());
  }
}

/** Steps in the run: `steps` if set, else epochs over `datasetSize` images (drop_last). */
/** Steps of `epochs` passes over `datasetSize` images at `batchSize` (at least 1). */
export const stepsForEpochs = (epochs: number, datasetSize: number, batchSize: number): number =>
  Math.max(1, Math.floor((epochs * datasetSize) / batchSize));

export function totalSteps(cfg: PretrainConfig, datasetSize: number): number {
  const t = cfg.train;
  return t.steps > 0 ? t.steps : stepsForEpochs(t.epochs, datasetSize, t.batchSize);
}

/** lr, clustering lr and teacher momentum at step t (spec 8.2: momentum = 1 - lr schedule shape). */
export function schedulesAt(cfg: PretrainConfig, total: number, t: number) {
  const tc = cfg.train;
  const warmupSteps = Math.floor(tc.warmupFraction * total);
  const shape = { warmupSteps, totalSteps: total, truncation: tc.truncation };
  return {
    lr: scheduleValue({ ...shape, start: 0, base: tc.lr, final: tc.finalLr }, t),
    clusterLr: scheduleValue({ ...shape, start: 0, base: tc.clusterLr, final: 0 }, t),
    momentum: scheduleValue({ ...shape, start: 1, base: tc.teacherMomentum, final: 1 }, t),
  };
}

/**
 * The peak momentum of the spec's schedule (start 1, final 1, the lr's warmup and cosine) that
 * gives the final teacher after `total` steps the asked-for property: an init share (prod of the
 * momenta) or a mean age as a share of the run (`teacherMeanAge` / total). Both grow with the
 * peak, so bisection finds it.
 */
export function peakMomentumFor(cfg: PretrainConfig, total: number, target: TeacherTarget): number {
  // The schedule is 1 - (1 - peak) * shape(t), shape rising from 0 to 1 and falling back (spec 8.2).
  const shapeCfg = { ...cfg, train: { ...cfg.train, teacherMomentum: 0 } };
  const shape = Float64Array.from({ length: total }, (_, t) => 1 - schedulesAt(shapeCfg, total, t).momentum);
  const finalTeacher = (peak: number) => {
    const momenta = shape.map((g) => 1 - (1 - peak) * g);
    return 'initShare' in target ? teacherInitShare(momenta) : teacherMeanAge(momenta) / total;
  };
  const goal = 'initShare' in target ? target.initShare : target.meanAgeShare;
  let lo = 0;
  let hi = 1;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (finalTeacher(mid) < goal) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

export function stepMaskCounts(cfg: PretrainConfig): MaskCounts {
  const g = gridSize(cfg.model);
  const t = cfg.train;
  return maskCounts(g * g, t.maskRatio, t.predictionSubsampling, t.numPredictions);
}

/** Step t's masks (seeded by (seed, t), as every draw of a step). */
export function stepMasks(cfg: PretrainConfig, b: number, t: number): MaskedBatch {
  const g = gridSize(cfg.model);
  const tc = cfg.train;
  return sampleMaskedBatch(b, g, g, stepMaskCounts(cfg), tc.masking, tc.roll, Rng.derive(tc.seed, t, STREAM.mask));
}

/** Prototypes that are the argmax of some token, and the position-cluster mutual information. */
function clusterDiagnostics(assigned: Int32Array, positions: number, clusters: number, rng: Rng) {
  const mi = positionClusterMI(assigned, positions, clusters, rng);
  return {
    clustersUsed: new Set(assigned).size,
    positionClusterMI: mi.mi,
    positionClusterMICorrected: mi.corrected,
    positionClusterMIShuffled: mi.shuffled!,
  };
}

/**
 * Steps 1-2 of an iteration: the teacher on the full images, the online clustering's loss and
 * gradient, and the SK targets of the patches to predict (image-major, `masks.predict` order).
 */
export function teacherTargets(state: CapiState, cfg: PretrainConfig, batch: PretrainBatch, masks: MaskedBatch) {
  const { model: mc, train: tc } = cfg;
  const b = batch.size;
  const g = gridSize(mc);
  const n = g * g;
  return tf.tidy(() => {
    const patches = tf.tensor3d(batch.patches, [b, n, mc.inChans * mc.patchSize ** 2]);
    const coords = tf.tensor3d(tokenCoords(g, g, mc.registers, allPositions(b, n), false), [b, mc.registers + n, 2]);
    const tokens = encodeFull(state.teacher, mc, patches, coords).slice([0, mc.registers, 0], [-1, -1, -1]);
    const clustering = onlineClustering(
      state.clustering,
      tf.transpose(tokens, [1, 0, 2]),
      { temperature: tc.targetTemp, iterations: tc.skIterations, positionwise: tc.positionwiseSK },
      tc.clusterTemp,
    );
    const predictAbs = Int32Array.from(masks.predict.flatMap((p, i) => Array.from(p, (x) => i * n + x)));
    const assignImageMajor = tf.transpose(clustering.assignments, [1, 0, 2]).reshape([b * n, mc.numClusters]);
    const targets = tf.gather(assignImageMajor, tf.tensor1d(predictAbs, 'int32'));
    const used = tf.argMax(clustering.assignments, -1);
    return { targets, loss: clustering.loss, grads: clustering.grads, entropy: meanEntropy(targets), used };
  });
}

/** The student's inputs (step 3): its visible patches with their coordinates, and the coordinates to predict. */
export function studentInputs(cfg: PretrainConfig, batch: PretrainBatch, masks: MaskedBatch) {
  const mc = cfg.model;
  const b = batch.size;
  const g = gridSize(mc);
  const patchLen = mc.inChans * mc.patchSize ** 2;
  const nVisible = masks.visible[0]?.length ?? 0;
  const visible = tf.tensor3d(selectPatches(batch.patches, g * g, patchLen, masks.visible), [b, nVisible, patchLen]);
  const encCoords = tf.tensor3d(tokenCoords(g, g, mc.registers, masks.visible, mc.scaleRegistersToVisible), [
    b,
    mc.registers + nVisible,
    2,
  ]);
  const predCoords = tf.tensor3d(patchCoords(g, g, masks.predict), [b, masks.predict[0]?.length ?? 0, 2]);
  return { visible, encCoords, predCoords };
}

export type StudentInputs = ReturnType<typeof studentInputs>;

/** The student's head logits [B n_q, K] at the positions to predict (step 3, before its temperature). */
export function studentLogits(student: Params, cfg: PretrainConfig, inputs: StudentInputs, drop?: DropPath): tf.Tensor {
  const out = studentForward(student, cfg.model, inputs.visible, inputs.encCoords, inputs.predCoords, drop);
  return studentHeadLogits(student, out.predictions);
}

/**
 * Runs one iteration on `batch` and advances `state` in place. Its metrics are read back
 * asynchronously (a GPU backend cannot read a tensor synchronously: webgpu.ts).
 */
export async function trainStep(state: CapiState, batch: PretrainBatch, cfg: PretrainConfig, total: number): Promise<StepMetrics> {
  const { model: mc, train: tc } = cfg;
  const t = state.step;
  const { lr, clusterLr, momentum } = schedulesAt(cfg, total, t);
  const masks = stepMasks(cfg, batch.size, t);

  // 1-2. Teacher on the full image, online clustering and its gradient, SK targets.
  const teacherOut = teacherTargets(state, cfg, batch, masks);

  // 3. Student on the visible patches, predictor at the prediction positions, head, loss.
  const inputs = studentInputs(cfg, batch, masks);
  const drop = tc.dropPath > 0 ? { rate: tc.dropPath, rng: Rng.derive(tc.seed, t, STREAM.dropPath) } : undefined;
  const names = trainableStudentNames(state);
  const { value: capiLoss, grads } = tf.variableGrads(
    () => tf.mean(softCrossEntropy(studentLogits(state.student, cfg, inputs, drop), teacherOut.targets, tc.studentTemp)) as tf.Scalar,
    names.map((k) => state.student[k]),
  );
  const byName: Record<string, tf.Tensor> = {};
  names.forEach((k) => (byName[k] = grads[state.student[k].name]));

  // 4. Student AdamW. 5. EMA of the backbone. 6. Clustering AdamW.
  const adam = { beta1: tc.beta1, beta2: tc.beta2, eps: tc.eps };
  adamwStep(state.student, byName, state.studentOpt, adam, (name) => {
    const { lrMult, wdMult } = studentParamGroup(name);
    return { lr: lr * lrMult, weightDecay: tc.weightDecay * wdMult };
  });
  tf.tidy(() => {
    for (const [name, tv] of Object.entries(state.teacher)) {
      tv.assign(tf.add(tf.mul(tv, momentum), tf.mul(state.student[name], 1 - momentum)));
    }
  });
  adamwStep(state.clustering, teacherOut.grads, state.clusterOpt, adam, () => ({ lr: clusterLr, weightDecay: tc.clusterWeightDecay }));

  state.step = t + 1;
  tf.dispose([...Object.values(inputs), grads, teacherOut.targets, teacherOut.grads]);
  const read = [capiLoss, teacherOut.loss, teacherOut.entropy, teacherOut.used];
  try {
    const [loss, clusteringLoss, entropy, used] = await Promise.all(read.map((x) => x.data()));
    return {
      step: t,
      capiLoss: loss[0],
      clusteringLoss: clusteringLoss[0],
      targetEntropy: entropy[0],
      ...clusterDiagnostics(used as Int32Array, gridSize(mc) ** 2, mc.numClusters, Rng.derive(tc.seed, t, STREAM.diagnostics)),
      lr,
      clusterLr,
      momentum,
    };
  } finally {
    tf.dispose(read);
  }
}
