/**
 * Per-step diagnostics of a run (whether it ran long enough, and what training did): how
 * much of its random initialisation the EMA teacher still is, how far the prototypes moved, and
 * whether cluster assignments encode patch position (what position-wise Sinkhorn-Knopp is meant
 * to prevent).
 */
import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../runtime/rng.js';
import { scheduleValue } from './schedules.js';

/**
 * The EMA teacher after steps with momenta m_0..m_t is prod(m_s) its initialisation plus the
 * rest from the student: that product ("init share").
 */
export function teacherInitShare(momenta: Iterable<number>): number {
  let p = 1;
  for (const m of momenta) p *= m;
  return p;
}

/**
 * The mean age (in steps) of the students the EMA teacher holds, weighted by their share of it:
 * after momenta m_0..m_{T-1} the student of step t (written by update t) has weight
 * (1 - m_t) prod_{s>t} m_s and age T - 1 - t; the init share (`teacherInitShare`) is left out of
 * the average. The paper's schedules give 9.1k steps (1.8% of 500k at peak 0.999) and 2.2k
 * (2.2% of 100k at 0.996): the figures a run's teacher is compared with.
 */
export function teacherMeanAge(momenta: ArrayLike<number>): number {
  const age = new TeacherAge();
  for (let t = 0; t < momenta.length; t++) age.update(momenta[t]);
  return age.meanAge;
}

/** The paper's teachers: peak momentum 0.999 over 500k steps (its runs) and 0.996 over 100k (its ablations). */
export const PAPER_TEACHERS = [
  { peak: 0.999, steps: 500_000 },
  { peak: 0.996, steps: 100_000 },
] as const;

/** The momenta of the paper's teacher schedule (method spec 8.2: start 1, the peak, final 1, 10% warmup, truncation 0.8). */
export function paperTeacherMomenta(peak: number, steps: number): Float64Array {
  const shape = { start: 1, base: peak, final: 1, warmupSteps: steps / 10, totalSteps: steps, truncation: 0.8 };
  return Float64Array.from({ length: steps }, (_, t) => scheduleValue(shape, t));
}

/**
 * teacherMeanAge kept step by step: each update ages what the teacher holds by one step and mixes
 * in 1 - m of a new student of age 0.
 */
export class TeacherAge {
  /** Sum of weight x age, and the weight, over the students (the init left out). */
  private weightedAge = 0;
  private weight = 0;

  update(momentum: number): void {
    this.weightedAge = momentum * (this.weightedAge + this.weight);
    this.weight = momentum * this.weight + (1 - momentum);
  }

  get meanAge(): number {
    return this.weight > 0 ? this.weightedAge / this.weight : Number.NaN;
  }
}

/**
 * Mutual information (nats) between the row and column variables of a contingency table of
 * counts [rows, cols], plug-in estimate, and its Miller-Madow correction (the plug-in estimate is
 * biased upwards by about (nonzero cells - nonzero rows - nonzero cols + 1) / (2 total); where
 * most cells hold a few counts that is far off, either way: see positionClusterMI).
 */
export function mutualInformation(counts: ArrayLike<number>, rows: number, cols: number): { mi: number; corrected: number } {
  const rowSum = new Float64Array(rows);
  const colSum = new Float64Array(cols);
  let total = 0;
  let cells = 0;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const v = counts[r * cols + c];
      rowSum[r] += v;
      colSum[c] += v;
      total += v;
      if (v > 0) cells++;
    }
  }
  if (total === 0) return { mi: 0, corrected: 0 };
  let mi = 0;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const v = counts[r * cols + c];
      if (v > 0) mi += (v / total) * Math.log((v * total) / (rowSum[r] * colSum[c]));
    }
  }
  const nz = (a: Float64Array) => a.reduce((n, v) => n + (v > 0 ? 1 : 0), 0);
  const bias = (nz(rowSum) + nz(colSum) - cells - 1) / (2 * total);
  return { mi, corrected: mi + bias };
}

/** How many shuffles of the positions estimate the plug-in MI's bias (each ~0.2 ms at 49 x 256 tokens). */
const MI_SHUFFLES = 4;

/**
 * MI between patch position and assigned cluster, from position-major assignments
 * [positions * images]: plug-in, Miller-Madow, and, given an rng, `shuffled`: the mean plug-in MI
 * of the same assignments with the positions shuffled among all tokens, its level where position
 * and cluster are independent at the same cluster marginals. A plug-in well above it is MI beyond
 * chance. Why not one corrected number: at 49 positions x 256 clusters x 12,544 tokens most cells
 * hold a few counts; Miller-Madow's term took plan medium's default arm to -0.13 nats and leaves
 * 0.27 of bias with uniformly drawn clusters; and position-wise Sinkhorn-Knopp balances each
 * position's clusters, so its plug-in sits below the shuffled level (canvas-capi-s0's final
 * teacher: 0.26 against 0.56), which subtracting would call a negative MI.
 */
export function positionClusterMI(
  assigned: ArrayLike<number>,
  positions: number,
  clusters: number,
  rng?: Rng,
): { mi: number; corrected: number; shuffled?: number } {
  const images = assigned.length / positions;
  const table = (order?: Int32Array) => {
    const counts = new Int32Array(positions * clusters);
    for (let i = 0; i < assigned.length; i++) counts[Math.floor(i / images) * clusters + assigned[order ? order[i] : i]]++;
    return counts;
  };
  const { mi, corrected } = mutualInformation(table(), positions, clusters);
  if (!rng) return { mi, corrected };
  let shuffled = 0;
  for (let s = 0; s < MI_SHUFFLES; s++) shuffled += mutualInformation(table(rng.permutation(assigned.length)), positions, clusters).mi;
  return { mi, corrected, shuffled: shuffled / MI_SHUFFLES };
}

/** Mean cosine similarity between matching rows of two [K, d] prototype matrices. */
export async function meanRowCosine(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  const t = tf.tidy(() => tf.mean(tf.sum(tf.mul(tf.div(a, tf.norm(a, 2, 1, true)), tf.div(b, tf.norm(b, 2, 1, true))), 1)));
  try {
    return (await t.data())[0];
  } finally {
    t.dispose();
  }
}
