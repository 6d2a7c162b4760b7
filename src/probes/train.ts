/** Trains stacked probe grids and selects on the held-out 10% (spec 1.4-1.6). */
import * as tf from '@tensorflow/tfjs';
import { runningMs } from '../runtime/clock.js';
import { Rng } from '../runtime/rng.js';
import type { ProbeFamily } from './families.js';
import type { AdamWState } from '../runtime/adamw.js';
import { adamwStep, initAdamW } from '../runtime/adamw.js';
import type { GridPoint, GridResult, HeldOutPoint } from './grid.js';
import { argmaxFirst, correctPerProbe, gridLoss, heldOutSplit, PROBE_ADAMW, probeGrid, probeHyper, probeLrScale } from './grid.js';

export interface ProbeData {
  /** Rows of `rowLen` values: [n, D] or [n, N, D] flattened. */
  x: Float32Array;
  rowShape: number[];
  labels: Int32Array;
}

export interface ProbeOptions {
  epochs: number;
  /** Training steps; when given, instead of `epochs` passes. */
  steps?: number;
  batchSize: number;
  seed: number;
  grid?: GridPoint[];
  /** Peak lrs of the default grid (before the batch / 256 scaling); default PROBE_LRS. */
  lrs?: readonly number[];
  /** Held-out accuracy is measured at this many evenly spaced steps (the last one selects). */
  curvePoints?: number;
  /**
   * Also train the chosen grid point alone for half the steps (default on), the convergence test
   * of probeQuality: if halving the schedule barely moves held-out accuracy, doubling it would not.
   */
  halfScheduleCheck?: boolean;
  /**
   * Successive halving (fast mode): after the grid, its `keep` best points by held-out accuracy
   * are trained again, alone, with `steps` steps, and the best of them is chosen. For a probe
   * whose full grid cannot run at the length it needs to converge (the attentive probe: see
   * REFINE_KEEP).
   */
  refine?: { keep: number; steps: number };
  /** Initialise as the probes `indices` of a stack of `points` (createGridTrainer): the half-schedule run is paired with the full one. */
  initAs?: { points: number; indices: number[] };
  /** Steps done, of all; the best held-out accuracy measured so far. */
  onProgress?: (done: number, total: number, bestHeldOut?: number) => void;
}

/** Default number of held-out measurements over a probe run. */
export const CURVE_POINTS = 10;

export function rows(d: ProbeData, idx: Int32Array): Float32Array {
  const len = d.rowShape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(idx.length * len);
  idx.forEach((r, i) => out.set(d.x.subarray(r * len, (r + 1) * len), i * len));
  return out;
}

/** Every probe's accuracy over the rows `idx` of `data`, in batches, and which rows probe `keep` got right. */
async function evaluate(
  family: ProbeFamily,
  params: Record<string, tf.Tensor>,
  d: ProbeData,
  idx: Int32Array,
  batch: number,
  keep = 0,
): Promise<{ accuracy: number[]; correctOfKept: Uint8Array }> {
  const probes = params[Object.keys(params)[0]].shape[0]!;
  const correct = new Array<number>(probes).fill(0);
  const correctOfKept = new Uint8Array(idx.length);
  for (let s = 0; s < idx.length; s += batch) {
    const part = idx.subarray(s, s + batch);
    const logits = tf.tidy(() => family.logits(params, tf.tensor(rows(d, part), [part.length, ...d.rowShape])));
    const right = await correctPerProbe(
      logits,
      Int32Array.from(part, (r) => d.labels[r]),
    );
    logits.dispose();
    for (let k = 0; k < probes; k++) for (let i = 0; i < part.length; i++) correct[k] += right[k * part.length + i];
    correctOfKept.set(right.subarray(keep * part.length, (keep + 1) * part.length), s);
  }
  return { accuracy: correct.map((c) => c / Math.max(1, idx.length)), correctOfKept };
}

/** A probe grid in training: stacked parameters and their AdamW state (spec 1.5). */
export interface GridTrainer {
  family: ProbeFamily;
  grid: GridPoint[];
  classes: number;
  params: Record<string, tf.Variable>;
  opt: AdamWState;
}

/**
 * `initAs`: the probes are initialised as a stack of `points` and only those at `indices` kept, so
 * their parameters and the rng's state afterwards (hence the batch order) are exactly those of
 * the same probes in the larger stack: a paired rerun.
 */
export function createGridTrainer(
  family: ProbeFamily,
  grid: GridPoint[],
  dim: number,
  classes: number,
  rng: Rng,
  initAs?: { points: number; indices: number[] },
): GridTrainer {
  if (initAs && initAs.indices.length !== grid.length)
    throw new Error('createGridTrainer: initAs.indices must name one probe per grid point');
  const params: Record<string, tf.Variable> = {};
  for (const [k, t] of Object.entries(family.init(initAs?.points ?? grid.length, dim, classes, rng))) {
    const kept = initAs ? tf.gather(t, initAs.indices, 0) : t;
    params[k] = tf.variable(kept);
    tf.dispose([t, kept]); // the variable holds its own reference
  }
  return { family, grid, classes, params, opt: initAdamW(params) };
}

/** One AdamW step of every probe on the batch x ([B, ...rowShape]) with labels [B]. */
export function gridTrainStep(g: GridTrainer, x: tf.Tensor, labels: Int32Array, lrScale: number): void {
  const y = tf.tensor1d(labels, 'int32');
  const { grads, value } = tf.variableGrads(() => gridLoss(g.family.logits(g.params, x), y, g.classes), Object.values(g.params));
  const byName: Record<string, tf.Tensor> = {};
  for (const [k, v] of Object.entries(g.params)) byName[k] = grads[v.name];
  adamwStep(g.params, byName, g.opt, PROBE_ADAMW, probeHyper(g.grid, lrScale, g.params));
  tf.dispose([y, value, grads]);
}

/** Held-out accuracy of every probe of the grid. */
export async function heldOutAccuracy(g: GridTrainer, train: ProbeData, val: Int32Array): Promise<number[]> {
  return (await evaluate(g.family, g.params, train, val, 512)).accuracy;
}

/** The best probe by its final held-out accuracy (ties: first), its test accuracy and which test rows it got right; frees the trainer. */
export async function selectAndTest(
  g: GridTrainer,
  valAccuracy: number[],
  test: ProbeData,
): Promise<Pick<GridResult, 'valAccuracy' | 'best' | 'testAccuracy' | 'testCorrect'>> {
  const best = argmaxFirst(valAccuracy);
  const testIdx = Int32Array.from({ length: test.labels.length }, (_, i) => i);
  const { accuracy, correctOfKept } = await evaluate(g.family, g.params, test, testIdx, 512, best);
  for (const group of [g.params, g.opt.m, g.opt.v]) Object.values(group).forEach((v) => v.dispose());
  return { valAccuracy, best, testAccuracy: accuracy[best], testCorrect: correctOfKept };
}

/**
 * Held-out measurements during a run: at `points` evenly spaced steps, the last one at the end
 * (whose accuracies select the probe). Records the curve and the best accuracy seen so far.
 */
export class HeldOutCurve {
  readonly points: HeldOutPoint[] = [];
  private readonly at: Set<number>;

  constructor(total: number, points = CURVE_POINTS) {
    const n = Math.max(1, Math.min(points, total));
    this.at = new Set(Array.from({ length: n }, (_, j) => Math.round((total * (j + 1)) / n)));
  }

  due(stepsDone: number): boolean {
    return this.at.has(stepsDone);
  }

  record(step: number, valAccuracy: number[]): void {
    this.points.push({ step, valAccuracy });
  }

  best(): number | undefined {
    return this.points.length ? Math.max(...this.points.map((p) => Math.max(...p.valAccuracy))) : undefined;
  }

  final(): number[] {
    return this.points[this.points.length - 1].valAccuracy;
  }
}

/** Steps per pass over `trainRows` (drop_last) and in all. */
export function probeSteps(trainRows: number, opts: ProbeOptions): { stepsPerEpoch: number; total: number } {
  const stepsPerEpoch = Math.max(1, Math.floor(trainRows / opts.batchSize));
  return { stepsPerEpoch, total: opts.steps ? opts.steps : Math.max(1, Math.round(opts.epochs * stepsPerEpoch)) };
}

/**
 * The training batches of a probe run (spec 1.4): `epochs` passes over the 90% split `rows`
 * (drop_last), reshuffled by `rng` every pass. Lazy: the first permutation is drawn at the first
 * batch, after the probes' initialisation has drawn from the same `rng`.
 */
export function* probeBatches(
  rows: Int32Array,
  opts: ProbeOptions,
  rng: Rng,
): Generator<{ step: number; total: number; indices: Int32Array }> {
  const { stepsPerEpoch, total } = probeSteps(rows.length, opts);
  let perm = rng.permutation(rows.length);
  for (let step = 0; step < total; step++) {
    const e = step % stepsPerEpoch;
    if (e === 0 && step > 0) perm = rng.permutation(rows.length);
    yield { step, total, indices: Int32Array.from(perm.subarray(e * opts.batchSize, (e + 1) * opts.batchSize), (i) => rows[i]) };
  }
}

/** Fast mode: the grid on cached, un-augmented features (then its best points again, longer, with `opts.refine`). */
export async function trainProbeGrid(
  family: ProbeFamily,
  train: ProbeData,
  test: ProbeData,
  classes: number,
  opts: ProbeOptions,
): Promise<GridResult> {
  if (opts.refine) return trainRefinedGrid(family, train, test, classes, opts, opts.refine);
  const grid = opts.grid ?? probeGrid(opts.batchSize, opts.lrs);
  const { train: tr, val } = heldOutSplit(train.labels.length);
  const rng = new Rng(opts.seed);
  const g = createGridTrainer(family, grid, train.rowShape[train.rowShape.length - 1], classes, rng, opts.initAs);
  const total = probeSteps(tr.length, opts).total;
  const curve = new HeldOutCurve(total, opts.curvePoints);
  const t0 = runningMs();
  for (const { step, indices } of probeBatches(tr, opts, rng)) {
    const x = tf.tensor(rows(train, indices), [indices.length, ...train.rowShape]);
    gridTrainStep(
      g,
      x,
      Int32Array.from(indices, (r) => train.labels[r]),
      probeLrScale(step, total),
    );
    x.dispose();
    if (curve.due(step + 1)) curve.record(step + 1, await heldOutAccuracy(g, train, val));
    opts.onProgress?.(step + 1, total, curve.best());
  }
  const selected = await selectAndTest(g, curve.final(), test);
  const result: GridResult = {
    ...selected,
    grid,
    iterations: total,
    batchSize: opts.batchSize,
    heldOut: val.length,
    curve: curve.points,
    seconds: 0,
  };
  if (opts.halfScheduleCheck !== false && total >= 2) {
    const half = Math.floor(total / 2);
    // Paired: the same initial parameters and batches as the chosen probe had in the grid (its
    // first `half` batches), so the difference measures the schedule, not a second draw.
    const h = await trainProbeGrid(family, train, test, classes, {
      ...opts,
      steps: half,
      grid: [grid[selected.best]],
      initAs: { points: grid.length, indices: [selected.best] },
      halfScheduleCheck: false,
      onProgress: undefined,
    });
    result.halfSchedule = { steps: half, valAccuracy: h.valAccuracy[0] };
  }
  result.seconds = (runningMs() - t0) / 1000;
  return result;
}

/**
 * A probe step costs about as much as this many extra probes of the stack (measured on fmnist-tiny
 * patch tokens, batch 256: 0.019 s a step for 4 attentive probes, 0.117 s for 39): the weight of
 * the fixed cost in the progress bar, so its ETA holds across the two rounds of successive halving.
 */
const STEP_OVERHEAD_PROBES = 3;

/** Successive halving: the grid at `opts` steps, then its `keep` best points alone at `refine.steps`; they select. */
async function trainRefinedGrid(
  family: ProbeFamily,
  train: ProbeData,
  test: ProbeData,
  classes: number,
  opts: ProbeOptions,
  refine: { keep: number; steps: number },
): Promise<GridResult> {
  const t0 = runningMs();
  const grid = opts.grid ?? probeGrid(opts.batchSize, opts.lrs);
  const keep = Math.min(refine.keep, grid.length);
  const coarseSteps = probeSteps(heldOutSplit(train.labels.length).train.length, opts).total;
  const work = (steps: number, points: number) => steps * (points + STEP_OVERHEAD_PROBES);
  const total = work(coarseSteps, grid.length) + work(refine.steps, keep);
  const coarse = await trainProbeGrid(family, train, test, classes, {
    ...opts,
    grid,
    refine: undefined,
    initAs: undefined,
    halfScheduleCheck: false,
    onProgress: opts.onProgress && ((d, _, b) => opts.onProgress!(work(d, grid.length), total, b)),
  });
  // The `keep` best by held-out accuracy (ties: first), in grid order so that ties again go to the first.
  const order = coarse.valAccuracy.map((_, i) => i).sort((a, b) => coarse.valAccuracy[b] - coarse.valAccuracy[a] || a - b);
  const kept = order.slice(0, keep).sort((a, b) => a - b);
  const done = work(coarseSteps, grid.length);
  const coarseBest = Math.max(...coarse.curve.flatMap((p) => p.valAccuracy));
  const fine = await trainProbeGrid(family, train, test, classes, {
    ...opts,
    steps: refine.steps,
    epochs: 0,
    grid: kept.map((i) => grid[i]),
    refine: undefined,
    initAs: undefined,
    // The best held-out accuracy seen so far includes the first round's.
    onProgress: opts.onProgress && ((d, _, b) => opts.onProgress!(done + work(d, keep), total, Math.max(b ?? 0, coarseBest))),
  });
  return {
    ...fine,
    coarse: { grid, valAccuracy: coarse.valAccuracy, steps: coarse.iterations, kept, curve: coarse.curve },
    seconds: (runningMs() - t0) / 1000,
  };
}
