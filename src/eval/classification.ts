/** Classification tasks: the data and labels once; per model, features then the asked-for classifiers (grid probes, k-NN). */
import type { LabeledDataset } from '../data/dataset.js';
import { ImageMemo, memoized } from '../data/memo.js';
import { augmentedFeatures } from '../features/augmented.js';
import type { Features } from '../features/extract.js';
import { knnClassify } from '../probes/knn-classify.js';
import type { GridResult } from '../probes/grid.js';
import type { ProbeQuality } from '../probes/grid.js';
import { heldOutSplit, PROBE_LRS, probeQuality, REFERENCE_PROBE_LRS, REFINE_KEEP } from '../probes/grid.js';
import type { OnlineSource } from '../probes/online.js';
import { trainProbeGridsOnline } from '../probes/online.js';
import { trainProbeGrid } from '../probes/train.js';
import type { KnnClassifier, ProbeGridClassifier } from './classifiers.js';
import { allClassifiers, CLASSIFIERS, classifiersFor } from './classifiers.js';
import { binomialSE, encodeCorrect } from './metrics.js';
import { probeSchedule } from './config.js';
import type { ClassificationTask } from './tasks.js';

import type { Context, ModelRunner } from './context.js';
import { newOutcome, toResult } from './context.js';
import { lazyProgress } from './hooks.js';
import { featureBatch, features, IMAGE_MEMO_BYTES, limit, pcaPictures } from './feature-source.js';
import type { EvalResult } from './result.js';

const MODE_NOTE = {
  fast: 'fast mode (cached un-augmented features)',
  reference: 'reference mode (RandomResizedCrop 0.08-1 + flip per batch, one frozen forward shared by every grid)',
};

/** Classification: the data and labels once; per model, features then the asked-for classifiers. */
/** Why a probe counts as not converged, for its note. */
function notConverged(q: ProbeQuality): string {
  return q.halfScheduleGain !== undefined
    ? `half the steps: held-out ${(100 * q.halfScheduleGain).toFixed(2)} points lower`
    : `held-out moved ${(100 * q.lateChange).toFixed(2)} points over the last 20%`;
}

/** A classification task's floor: every test image predicted as the most frequent training class (ties: smallest). */
export const MAJORITY_ROW = {
  name: 'floor: majority class',
  source: 'every test image predicted as the most frequent training class',
} as const;

/** Test accuracy (0-1) of predicting the most frequent training label for every test image. */
export function majorityFloor(trainLabels: Int32Array, testLabels: Int32Array, classes: number): number {
  const counts = new Int32Array(classes);
  for (const y of trainLabels) counts[y]++;
  const majority = counts.indexOf(Math.max(...counts));
  return testLabels.length ? testLabels.filter((y) => y === majority).length / testLabels.length : 0;
}

export async function classificationRunner(ctx: Context, task: ClassificationTask, emit: (r: EvalResult) => void): Promise<ModelRunner> {
  const { cfg, hooks } = ctx;
  const data = task.load(cfg);
  const train = memoized(limit(data.train, cfg.limitTrain), new ImageMemo(IMAGE_MEMO_BYTES));
  const test = memoized(limit(data.test, cfg.limitTest), new ImageMemo(IMAGE_MEMO_BYTES));
  const labels = (d: LabeledDataset) => Int32Array.from({ length: d.size }, (_, i) => d.label(i));
  const ytr = labels(train);
  const yte = labels(test);
  const classes = train.numClasses;
  const names = classifiersFor(ctx.probes, 'classification');
  const grids = names.filter((n) => CLASSIFIERS[n].kind === 'probe-grid') as ('attentive' | 'linear(avg)' | 'linear(pred-pool)')[];
  const knns = names.filter((n) => CLASSIFIERS[n].kind === 'knn') as ('knn(avg)' | 'knn(pred-pool)')[];
  if (grids.length) heldOutSplit(ytr.length); // too few training images: said before any feature is extracted
  // The task's floor, once, for every classification metric: it depends on no model and no probe,
  // so evaluations asking for different probes write the same row (none drops another's metrics);
  // not written again where it exists (a resumed study).
  if (names.length && cfg.probeMode === 'fast' && !hooks.skipModel?.(MAJORITY_ROW.name)) {
    const floor = newOutcome();
    const acc = majorityFloor(ytr, yte, classes);
    for (const c of allClassifiers('classification').map((n) => CLASSIFIERS[n] as ProbeGridClassifier | KnnClassifier)) {
      floor.metrics[c.metric] = 100 * acc;
      floor.quality[c.metric] = { se: binomialSE(acc, yte.length) };
      floor.notes[c.metric] = MAJORITY_ROW.source;
    }
    emit(toResult(ctx, MAJORITY_ROW.name, undefined, { kind: 'reference', source: MAJORITY_ROW.source }, floor));
  }

  return async (model) => {
    const o = newOutcome();
    const ftr = await features(ctx, model, train, task.transform, `${model.name} train`);
    const fte = await features(ctx, model, test, task.transform, `${model.name} test`);
    o.seconds.features = ftr.seconds + fte.seconds;
    const pick = (f: Features, s: 'patch' | 'avg' | 'global') => (s === 'patch' ? f.patch : s === 'avg' ? f.avg : f.global);
    const rowShape = (s: 'patch' | 'avg' | 'global') =>
      s === 'patch' ? [ftr.tokens, ftr.patchDim] : [s === 'avg' ? ftr.patchDim : ftr.globalDim];
    const sources: OnlineSource[] = grids.map((name) => {
      const c = CLASSIFIERS[name] as ProbeGridClassifier;
      const shape = rowShape(c.source);
      return {
        name,
        family: c.family,
        rowShape: shape,
        evalTrain: { x: pick(ftr, c.source), rowShape: shape, labels: ytr },
        test: { x: pick(fte, c.source), rowShape: shape, labels: yte },
      };
    });
    const record = (name: (typeof grids)[number], r: GridResult) => {
      const c = CLASSIFIERS[name];
      const best = r.grid[r.best];
      const q = probeQuality(r);
      o.metrics[c.metric] = 100 * r.testAccuracy;
      o.quality[c.metric] = {
        se: binomialSE(r.testAccuracy, yte.length),
        atGridEdge: q.lrAtGridEdge,
        converged: q.converged,
        testCorrect: encodeCorrect(r.testCorrect),
      };
      const chosen = r.coarse
        ? `best of ${r.coarse.grid.length} at ${r.coarse.steps} steps, its ${r.grid.length} best again at ${r.iterations} steps of ${r.batchSize} (successive halving)`
        : `best of ${r.grid.length}`;
      const schedule = r.coarse ? '' : ` ${r.iterations} steps of ${r.batchSize},`;
      o.notes[c.metric] =
        `${chosen} (lr ${best.lr.toExponential(1)}, wd ${best.wd}) on 10% held out;${schedule} ${MODE_NOTE[cfg.probeMode]}` +
        `${q.lrAtGridEdge ? '; lr at the grid edge' : ''}${q.converged ? '' : `; not converged (${notConverged(q)})`}`;
      o.details[name] = {
        valAccuracy: r.valAccuracy,
        grid: r.grid,
        best: r.best,
        bestPoint: best,
        iterations: r.iterations,
        batchSize: r.batchSize,
        ...q,
        curve: r.curve,
        ...(r.halfSchedule ? { halfSchedule: r.halfSchedule } : {}),
        ...(r.coarse ? { coarse: r.coarse } : {}),
        probeMode: cfg.probeMode,
      };
      o.seconds[name] = r.seconds;
    };
    const lrs = cfg.probeLrs === 'paper' ? REFERENCE_PROBE_LRS : PROBE_LRS;
    const opts = { ...probeSchedule(cfg), batchSize: cfg.batchSize, seed: cfg.seed, lrs };
    const onProgress = (label: string) => {
      const report = lazyProgress(hooks, label);
      return (done: number, total: number, best?: number) =>
        report(done, total, best === undefined ? '' : `best held-out ${(100 * best).toFixed(1)}%`);
    };
    if (cfg.probeMode === 'fast') {
      for (const s of sources) {
        const own =
          s.name === 'attentive'
            ? {
                steps: cfg.attentiveSteps ?? opts.steps,
                epochs: cfg.attentiveSteps ? 0 : opts.epochs,
                batchSize: cfg.attentiveBatchSize ?? opts.batchSize,
                refine: cfg.attentiveRefineSteps ? { keep: REFINE_KEEP, steps: cfg.attentiveRefineSteps } : undefined,
              }
            : {};
        record(
          s.name as (typeof grids)[number],
          await trainProbeGrid(s.family, s.evalTrain, s.test, classes, {
            ...opts,
            ...own,
            onProgress: onProgress(`${model.name} ${s.name}`),
          }),
        );
      }
    } else if (sources.length) {
      const augmented = augmentedFeatures(model, train, ctx.size, { seed: cfg.seed, batchSize: featureBatch(cfg, model, ctx.size) });
      const rs = await trainProbeGridsOnline(
        sources,
        ytr,
        classes,
        { ...opts, onProgress: onProgress(`${model.name} probes (reference mode)`) },
        async (idx) => {
          const f = await augmented(idx);
          return { attentive: f.patch, 'linear(avg)': f.avg, 'linear(pred-pool)': f.global };
        },
      );
      for (const s of sources) record(s.name as (typeof grids)[number], rs[s.name]);
    }
    for (const name of knns) {
      const c = CLASSIFIERS[name] as KnnClassifier;
      const dim = c.source === 'avg' ? ftr.patchDim : ftr.globalDim;
      const onProgress = lazyProgress(hooks, `${model.name} ${name} search`);
      const knn = await knnClassify(pick(ftr, c.source), ytr, pick(fte, c.source), yte, dim, classes, { onProgress });
      o.metrics[c.metric] = 100 * knn.accuracy;
      o.quality[c.metric] = { se: binomialSE(knn.accuracy, yte.length), testCorrect: encodeCorrect(knn.correct) };
      o.notes[c.metric] = c.note;
    }
    if (ctx.probes.includes('pca')) o.details.pca = await pcaPictures(ctx, model, test, fte, task.transform);
    return o;
  };
}
