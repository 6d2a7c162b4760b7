/** Trains a stacked probe grid on cached features and selects on the held-out 10% (spec 1.4-1.6). */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../runtime/rng.js';
import type { ProbeFamily } from './families.js';
import type { GridPoint, GridResult } from './grid.js';
import { argmaxFirst, correctPerProbe, gridLoss, heldOutSplit, initStackedAdamW, probeGrid, probeLrScale, stackedAdamWStep } from './grid.js';

export interface ProbeData {
  /** Rows of `rowLen` values: [n, D] or [n, N, D] flattened. */
  x: Float32Array;
  rowShape: number[];
  labels: Int32Array;
}

export interface ProbeOptions {
  epochs: number;
  batchSize: number;
  seed: number;
  grid?: GridPoint[];
  onProgress?: (done: number, total: number) => void;
}

function rows(d: ProbeData, idx: Int32Array): Float32Array {
  const len = d.rowShape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(idx.length * len);
  idx.forEach((r, i) => out.set(d.x.subarray(r * len, (r + 1) * len), i * len));
  return out;
}

/** Logits [P, n, C] of every probe over `data` in batches, as correct counts per probe. */
function evaluate(family: ProbeFamily, params: Record<string, tf.Tensor>, d: ProbeData, idx: Int32Array, batch: number): number[] {
  const correct = new Array<number>(params[Object.keys(params)[0]].shape[0]!).fill(0);
  for (let s = 0; s < idx.length; s += batch) {
    const part = idx.subarray(s, s + batch);
    const logits = tf.tidy(() => family.logits(params, tf.tensor(rows(d, part), [part.length, ...d.rowShape])));
    correctPerProbe(logits, Int32Array.from(part, (r) => d.labels[r])).forEach((c, k) => (correct[k] += c));
    logits.dispose();
  }
  return correct.map((c) => c / Math.max(1, idx.length));
}

export function trainProbeGrid(family: ProbeFamily, train: ProbeData, test: ProbeData, classes: number, opts: ProbeOptions): GridResult {
  const grid = opts.grid ?? probeGrid(opts.batchSize);
  const { train: tr, val } = heldOutSplit(train.labels.length);
  const rng = new Rng(opts.seed);
  const dim = train.rowShape[train.rowShape.length - 1];
  const params: Record<string, tf.Variable> = {};
  for (const [k, t] of Object.entries(family.init(grid.length, dim, classes, rng))) params[k] = tf.variable(t);
  const opt = initStackedAdamW(params);
  const stepsPerEpoch = Math.max(1, Math.floor(tr.length / opts.batchSize));
  const total = Math.max(1, Math.round(opts.epochs * stepsPerEpoch));
  const t0 = performance.now();
  let perm = rng.permutation(tr.length);
  for (let t = 0; t < total; t++) {
    const e = t % stepsPerEpoch;
    if (e === 0 && t > 0) perm = rng.permutation(tr.length);
    const idx = Int32Array.from(perm.subarray(e * opts.batchSize, (e + 1) * opts.batchSize), (i) => tr[i]);
    const x = tf.tensor(rows(train, idx), [idx.length, ...train.rowShape]);
    const y = tf.tensor1d(Int32Array.from(idx, (r) => train.labels[r]), 'int32');
    const { grads, value } = tf.variableGrads(() => gridLoss(family.logits(params, x), y, classes), Object.values(params));
    const byName: Record<string, tf.Tensor> = {};
    for (const [k, v] of Object.entries(params)) byName[k] = grads[v.name];
    stackedAdamWStep(params, byName, opt, grid, probeLrScale(t, total));
    tf.dispose([x, y, value, grads]);
    opts.onProgress?.(t + 1, total);
  }
  const seconds = (performance.now() - t0) / 1000;
  const valAccuracy = evaluate(family, params, train, val, 512);
  const best = argmaxFirst(valAccuracy);
  const testIdx = Int32Array.from({ length: test.labels.length }, (_, i) => i);
  const testAccuracy = evaluate(family, params, test, testIdx, 512)[best];
  Object.values(params).forEach((v) => v.dispose());
  Object.values(opt.m).forEach((v) => v.dispose());
  Object.values(opt.v).forEach((v) => v.dispose());
  return { valAccuracy, best, testAccuracy, grid, iterations: total, secondsPerEpoch: seconds / Math.max(opts.epochs, 1e-9) };
}
