/**
 * What every probe grid shares (eval spec 1.4-1.6): the LR x WD grid trained jointly (one
 * forward of the shared features, all probes stacked on a leading axis), AdamW (0.9, 0.95) with
 * warmup + cosine, the 10% held-out split (permutation seeded with 42), and selection of the
 * best held-out accuracy (ties -> first in lr-major, wd-minor order).
 */
import * as tf from '@tensorflow/tfjs';
import type { AdamWConfig, AdamWHyper } from '../runtime/adamw.js';
import { Rng } from '../runtime/rng.js';

/** The reference's peak lrs (spec 1.4), before the batch / 256 scaling. */
export const REFERENCE_PROBE_LRS = [1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2];
/**
 * [DIFF] The reference grid extended upwards by three points. Small encoders give features of
 * small norm: on the study's first full-split evaluation (fmnist-tiny, 3 epochs, fmnist 60k / 10k,
 * 12,500 x 1024) the attentive and both linear probes chose the reference's largest lr, held-out
 * accuracy still rising with lr. On that model's average-pooled features a grid up to 1
 * (unscaled) peaks at 5e-2 (held-out 80.1 against 79.4 at 1e-2; 1e-1 and 2e-1: 80.0) and falls
 * beyond. Every reference point stays in the grid.
 */
export const PROBE_LRS = [...REFERENCE_PROBE_LRS, 2e-2, 5e-2, 1e-1];
export const PROBE_WDS = [5e-4, 1e-3, 5e-2];

/**
 * [DIFF] Successive halving keeps this many of the grid's points for the long round (about the
 * best tenth of the 39). The reference trains its whole grid 12,500 x 1024; the attentive probe
 * costs ~30x a linear one per step, so on 2 cores its grid runs 5,000 x 256 (~10 min) and only
 * its best points run to convergence. Measured on fmnist-capi-s0 patch tokens (the study's first
 * model; held-out / test accuracy of the best of lr 1e-2, 2e-2, 5e-2, 1e-1 trained alone, batch
 * 256): 2,500 steps 81.5 / 80.0, 5,000: 82.2 / 80.8, 10,000: 83.0 / 81.9, 20,000: 83.7 / 82.3,
 * 40,000 (lrs 5e-3, 1e-2, 2e-2): 84.1 / 82.8. Each doubling adds ~0.7 points of held-out accuracy
 * up to 20,000 steps and 0.4 after (below one held-out SE, 0.47: converged). The best lr moves from
 * 5e-2 to 1e-2 as the schedule grows, and 1e-2 is among the grid's four best at 5,000 steps.
 */
export const REFINE_KEEP = 4;

export interface GridPoint {
  lr: number;
  wd: number;
}

/** lr-major, wd-minor; lrs scaled by batch / 256 as the reference does (linear scaling rule). */
export function probeGrid(batchSize: number, lrs: readonly number[] = PROBE_LRS): GridPoint[] {
  return lrs.flatMap((lr) => PROBE_WDS.map((wd) => ({ lr: (lr * batchSize) / 256, wd })));
}

/** Train / held-out indices: permutation seeded with `seed`, first round(0.9 n) train. */
export function heldOutSplit(n: number, seed = 42): { train: Int32Array; val: Int32Array } {
  const perm = new Rng(seed).permutation(n);
  const cut = Math.round(0.9 * n);
  if (cut === n || cut === 0)
    throw new Error(
      `${n} training images leave no held-out image for the probes' selection (10% held out): evaluate on more (--limit-train)`,
    );
  return { train: perm.slice(0, cut), val: perm.slice(cut) };
}

/** Warmup (10%, linear from 0, both ends included) then cosine to exactly 0 (spec 1.4). */
export function probeLrScale(t: number, total: number): number {
  const warm = Math.max(1, Math.round(total / 10));
  if (t < warm) return warm === 1 ? 1 : t / (warm - 1);
  const rest = total - warm;
  return rest <= 1 ? 0 : (1 + Math.cos((Math.PI * (t - warm)) / (rest - 1))) / 2;
}

/** The probes' AdamW (spec 1.4): betas (0.9, 0.95), eps 1e-8. */
export const PROBE_ADAMW: AdamWConfig = { beta1: 0.9, beta2: 0.95, eps: 1e-8 };

/**
 * Each stacked probe's lr (scaled by the schedule) and wd as tensors over the leading probe axis
 * P; parameters whose name contains 'bias' get no weight decay (spec 1.4).
 */
export function probeHyper(grid: GridPoint[], scale: number, params: Record<string, tf.Variable>): (name: string) => AdamWHyper {
  return (name) => {
    const shape = [grid.length, ...params[name].shape.slice(1).map(() => 1)];
    return {
      lr: tf.tensor(
        grid.map((g) => g.lr * scale),
        shape,
      ),
      weightDecay: tf.tensor(
        grid.map((g) => (name.includes('bias') ? 0 : g.wd)),
        shape,
      ),
    };
  };
}

/**
 * Mean cross-entropy over probes and batch for logits [P, B, C] and labels [B], its gradient
 * written out: (softmax - onehot) / (P B). Autodiff through logSoftmax costs ~1.5x more on wasm
 * (its broadcast subtractions run in both passes; measured P 39, B 1024, C 10, a forward and
 * backward: 10.6-12.2 ms against 7.3-7.5), and the linear probe's step is mostly this loss.
 */
export function gridLoss(logits: tf.Tensor, labels: tf.Tensor1D, classes: number): tf.Scalar {
  const y = tf.oneHot(labels, classes).toFloat();
  const rows = logits.size / classes;
  const crossEntropy = tf.customGrad(((z: tf.Tensor, save: tf.GradSaveFunc) => {
    const lse = tf.logSumExp(z, -1, true); // [P, B, 1]
    save([z, lse, y]);
    const value = tf.mean(tf.sub(tf.squeeze(lse, [-1]), tf.sum(tf.mul(z, y), -1)));
    const gradFunc = (dy: tf.Tensor, [zs, l, ys]: tf.Tensor[]) => tf.mul(tf.sub(tf.exp(tf.sub(zs, l)), ys), tf.div(dy, rows));
    return { value, gradFunc };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return crossEntropy(logits) as tf.Scalar;
}

/** Truncated normal (|x| <= 2 std) initialisation, std 0.02. */
export function truncNormal(shape: number[], rng: Rng, std = 0.02): tf.Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    let x: number;
    do x = rng.normal();
    while (Math.abs(x) > 2);
    v[i] = std * x;
  }
  return tf.tensor(v, shape);
}

/** Held-out accuracy of every probe after `step` training steps. */
export interface HeldOutPoint {
  step: number;
  valAccuracy: number[];
}

export interface GridResult {
  /** Held-out accuracy per grid point at the end (what selects). */
  valAccuracy: number[];
  /** Held-out accuracies during training, the last point at the end. */
  curve: HeldOutPoint[];
  best: number;
  testAccuracy: number;
  /** Which test rows the chosen probe classified right (1) or not. */
  testCorrect: Uint8Array;
  grid: GridPoint[];
  iterations: number;
  batchSize: number;
  /** Rows of the held-out split (the resolution of its accuracies). */
  heldOut: number;
  /** The chosen grid point trained alone with half the steps, paired (same init and batches): its final held-out accuracy (fast mode). */
  halfSchedule?: { steps: number; valAccuracy: number };
  /**
   * Successive halving: the first round, every point of the full grid at `steps`; its best points
   * (`kept`, indices into its grid) are the `grid` above, trained again for `iterations` steps.
   */
  coarse?: { grid: GridPoint[]; valAccuracy: number[]; steps: number; kept: number[]; curve: HeldOutPoint[] };
  /** Wall time of the whole grid run. */
  seconds: number;
}

/** Index of the best accuracy, first one on ties. */
export function argmaxFirst(xs: number[]): number {
  let best = 0;
  xs.forEach((x, i) => {
    if (x > xs[best]) best = i;
  });
  return best;
}

/** Accuracy of each probe: logits [P, B, C] vs labels. Returns correct counts per probe (read back asynchronously: webgpu.ts). */
/** Per probe and row of the batch, whether its argmax is the label (1) or not: [P * B], probe-major. */
export async function correctPerProbe(logits: tf.Tensor, labels: Int32Array): Promise<Uint8Array> {
  const pred = tf.tidy(() => tf.argMax(logits, -1));
  const p = await pred.data();
  pred.dispose();
  const b = logits.shape[1]!;
  return Uint8Array.from(p, (c, i) => (c === labels[i % b] ? 1 : 0));
}

/** How far (at least) the chosen probe's held-out accuracy may move and count as converged. */
export const PLATEAU_TOLERANCE = 0.003;

export interface ProbeQuality {
  /** The chosen lr is the smallest or the largest of the grid (the optimum may lie outside it). */
  lrAtGridEdge: boolean;
  wdAtGridEdge: boolean;
  /** Change of the chosen probe's held-out accuracy from 80% of the steps to the end (a diagnostic: a cosine schedule's last 20% anneals). */
  lateChange: number;
  /** Held-out accuracy of the chosen probe minus that of the same point trained with half the steps (when the result has it). */
  halfScheduleGain?: number;
  /** The change it may have and count as converged: max(PLATEAU_TOLERANCE, one binomial SE of its held-out accuracy). */
  plateauTolerance: number;
  /** The convergence test passed (halfScheduleGain when there is one, else lateChange, within plateauTolerance). */
  converged: boolean;
}

/**
 * Whether a grid result can be trusted as converged: the chosen point strictly inside the lr
 * range, and its held-out accuracy converged in the schedule length: training it with half the
 * steps changes it by less than the tolerance (so doubling would not change it either). Where a
 * result has no half-schedule run (reference mode), the test falls back to the held-out curve: the
 * change over the last 20% of steps. The tolerance is 0.3 points, or one binomial standard error of
 * the held-out accuracy where the held-out set cannot resolve 0.3 points (6,000 rows at 80%: 0.52
 * points; 200 rows: one row is 0.5 points). Measured on fmnist (linear, average pooling,
 * 3-epoch teacher, 39-point grid): 6,250 / 12,500 / 25,000 steps of 1024 give held-out 79.8 / 80.1 /
 * 80.1 and test 78.6 / 78.7 / 78.8, while within each run the last 20% of the cosine schedule
 * adds 0.5-1.3 points: the within-run change measures the anneal, not convergence.
 */
export function probeQuality(r: Pick<GridResult, 'grid' | 'best' | 'curve' | 'heldOut' | 'halfSchedule' | 'coarse'>): ProbeQuality {
  // After successive halving the edges are those of the full grid, not of the points kept.
  const space = r.coarse?.grid ?? r.grid;
  const lrs = [...new Set(space.map((g) => g.lr))].sort((a, b) => a - b);
  const wds = [...new Set(space.map((g) => g.wd))].sort((a, b) => a - b);
  const best = r.grid[r.best];
  const total = r.curve.at(-1)?.step ?? 0;
  const late = r.curve.find((p) => p.step >= 0.8 * total) ?? r.curve.at(-1);
  const lateChange = late && r.curve.length ? r.curve.at(-1)!.valAccuracy[r.best] - late.valAccuracy[r.best] : Number.NaN;
  const edge = (xs: number[], x: number) => xs.length > 1 && (x === xs[0] || x === xs[xs.length - 1]);
  const p = r.curve.at(-1)?.valAccuracy[r.best] ?? 0;
  const plateauTolerance = Math.max(PLATEAU_TOLERANCE, Math.sqrt((p * (1 - p)) / Math.max(1, r.heldOut)));
  const halfScheduleGain = r.halfSchedule ? p - r.halfSchedule.valAccuracy : undefined;
  const converged =
    halfScheduleGain !== undefined
      ? Math.abs(halfScheduleGain) < plateauTolerance
      : late !== r.curve.at(-1) && Math.abs(lateChange) < plateauTolerance;
  return { lrAtGridEdge: edge(lrs, best.lr), wdAtGridEdge: edge(wds, best.wd), lateChange, halfScheduleGain, plateauTolerance, converged };
}
