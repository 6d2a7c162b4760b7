/**
 * Reference mode of the probe grids (eval spec 1.4-1.5): every training batch is augmented
 * once (RandomResizedCrop + flip), the frozen model runs once, and every feature source's grid
 * (attentive on patch tokens, linear on average pooling, linear on predictor pooling) takes one
 * step on those shared features. Held-out selection and test use eval-transform features. The
 * features of a batch come from a callback, so this module knows nothing of models or images.
 */
import * as tf from '@tensorflow/tfjs';
import { runningMs } from '../runtime/clock.js';
import { Rng } from '../runtime/rng.js';
import type { ProbeFamily } from './families.js';
import type { GridResult } from './grid.js';
import { heldOutSplit, probeGrid, probeLrScale } from './grid.js';
import type { ProbeData, ProbeOptions } from './train.js';
import { createGridTrainer, gridTrainStep, HeldOutCurve, heldOutAccuracy, probeBatches, probeSteps, selectAndTest } from './train.js';

export interface OnlineSource {
  name: string;
  family: ProbeFamily;
  /** Shape of one sample's features: [D] or [N, D]. */
  rowShape: number[];
  /** Eval-transform features of the whole training split (its held-out 10% selects). */
  evalTrain: ProbeData;
  test: ProbeData;
}

/** Augmented features of the training images `indices`, one array per source name. */
export type BatchFeatures = (indices: Int32Array, step: number) => Promise<Record<string, Float32Array>>;

export async function trainProbeGridsOnline(
  sources: OnlineSource[],
  labels: Int32Array,
  classes: number,
  opts: ProbeOptions,
  batchFeatures: BatchFeatures,
): Promise<Record<string, GridResult>> {
  const grid = opts.grid ?? probeGrid(opts.batchSize, opts.lrs);
  const { train: tr, val } = heldOutSplit(labels.length);
  const rng = new Rng(opts.seed);
  const trainers = sources.map((s) => createGridTrainer(s.family, grid, s.rowShape[s.rowShape.length - 1], classes, rng));
  const total = probeSteps(tr.length, opts).total;
  const curves = sources.map(() => new HeldOutCurve(total, opts.curvePoints));
  const t0 = runningMs();
  for (const { step, indices } of probeBatches(tr, opts, rng)) {
    const feats = await batchFeatures(indices, step);
    const y = Int32Array.from(indices, (r) => labels[r]);
    for (const [k, s] of sources.entries()) {
      const x = tf.tensor(feats[s.name], [indices.length, ...s.rowShape]);
      gridTrainStep(trainers[k], x, y, probeLrScale(step, total));
      x.dispose();
      if (curves[k].due(step + 1)) curves[k].record(step + 1, await heldOutAccuracy(trainers[k], s.evalTrain, val));
    }
    const best = curves.map((c) => c.best()).filter((b) => b !== undefined);
    opts.onProgress?.(step + 1, total, best.length ? Math.max(...best) : undefined);
  }
  const seconds = (runningMs() - t0) / 1000;
  const out: Record<string, GridResult> = {};
  for (const [k, s] of sources.entries()) {
    out[s.name] = {
      ...(await selectAndTest(trainers[k], curves[k].final(), s.test)),
      grid,
      iterations: total,
      batchSize: opts.batchSize,
      heldOut: val.length,
      curve: curves[k].points,
      seconds,
    };
  }
  return out;
}
