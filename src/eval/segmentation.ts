/** Dense tasks: images and patch labels once, the task's floors and ceiling, then per model the asked-for classifiers. */
import * as path from 'node:path';
import type { ImageDataset } from '../data/dataset.js';
import { ImageMemo, memoized } from '../data/memo.js';
import type { SegmentationDataset } from '../data/segmentation-datasets.js';
import type { ImageSource } from '../features/extract.js';
import { runningMs } from '../runtime/clock.js';
import type { PatchLabels } from '../segmentation/patches.js';
import { patchLabels, patchModes } from '../segmentation/patches.js';
import { denseReferences, foregroundIoU } from '../segmentation/metrics.js';
import { prepareSegmentation } from '../segmentation/protocol.js';
import { saveSegSplits } from '../segmentation/save-splits.js';
import { featureShares, subtractGroupMeans } from '../segmentation/variance.js';
import type { DenseSplits, SegClassifier, SegFeatures } from './classifiers.js';
import type { EvalConfig } from './config.js';
import { maxBindingBytes } from '../runtime/backend.js';
import { cpuKernels } from '../runtime/cpu-kernels.js';
import { withWasmHeap } from '../runtime/wasm-oom.js';
import { prepareOutOfCore } from '../segmentation/out-of-core.js';
import { outOfCoreNeighbours } from '../segmentation/out-of-core-knn.js';
import { outOfCoreLogRegValidation } from '../segmentation/out-of-core-logreg.js';
import { LOGREG_C_GRID } from '../segmentation/logreg.js';
import type { KnnPoint } from '../segmentation/protocol.js';
import { SEG_KNN_KS, SEG_KNN_METRICS } from '../segmentation/protocol.js';
import { allClassifiers, CLASSIFIERS, classifiersFor } from './classifiers.js';
import type { EvalResult } from './result.js';
import { encodeReplicates } from './metrics.js';
import type { SegmentationTask } from './tasks.js';

import type { Context, ModelRunner } from './context.js';
import type { Progress } from './hooks.js';
import { newOutcome, ownsUnit, toResult, unitsDir } from './context.js';
import { featureRows, features, IMAGE_MEMO_BYTES, limit, pcaPictures } from './feature-source.js';

/** A dense task's floors and ceiling, written as rows of their own next to the models. */
export const REFERENCE_ROWS = {
  majority: { name: 'floor: majority label', source: 'every pixel predicted as the most frequent test label' },
  backgroundOracle: {
    name: 'floor: background oracle',
    source: 'background where the ground truth is background, else the most frequent other label',
  },
  patchOracle: {
    name: 'ceiling: oracle patch labels',
    source: "every pixel predicted as its patch's mode label: the best any per-patch classifier can do at this patch size",
  },
} as const;

/** The images of a dense split, as an image source for extraction. */
const imagesOf = (d: SegmentationDataset): ImageDataset => ({
  description: d.description,
  size: d.size,
  load: async (i) => (await d.load(i)).image,
});

/** Feature rows and label rows must pair up, split by split. */
function checkRows(featureRows: number[], labels: PatchLabels[], patchSize: number): void {
  ['train', 'test'].forEach((what, i) => {
    const labelRows = labels[i].pixels.length / (patchSize * patchSize);
    if (featureRows[i] !== labelRows) throw new Error(`${what}: ${featureRows[i]} feature rows but ${labelRows} label rows`);
  });
}

/**
 * Which engine runs the dense protocol: 'tfjs' (in memory, on the backend: the wasm heap or a
 * GPU) or 'cpu' (out of core, src/segmentation/out-of-core.ts). Auto: in memory while the training
 * rows take at most 512 MiB (the in-memory protocol holds a few copies on a 4 GiB heap) and, on a
 * GPU, fit one buffer binding (`bindingBytes`: the logistic regression holds them as one tensor),
 * else out of core; a forced 'tfjs' beyond the binding is refused in one line.
 */
export function denseEngine(
  cfg: Pick<EvalConfig, 'denseEngine'>,
  trainRows: number,
  dim: number,
  bindingBytes = maxBindingBytes(),
): 'tfjs' | 'cpu' {
  const bytes = trainRows * dim * 4;
  const binds = bindingBytes === undefined || bytes <= bindingBytes;
  if (cfg.denseEngine === 'tfjs' && !binds) {
    const mib = (x: number) => (x / 2 ** 20).toFixed(0);
    throw new Error(
      `--dense-engine tfjs: the ${trainRows} training rows of ${dim} take ${mib(bytes)} MiB, over the WebGPU adapter's ${mib(bindingBytes!)} MiB binding limit: pass --dense-engine cpu (or auto), or keep fewer training patches (--train-patch-stride)`,
    );
  }
  if (cfg.denseEngine !== 'auto') return cfg.denseEngine;
  return bytes <= 512 * 2 ** 20 && binds ? 'tfjs' : 'cpu';
}

/** Segmentation: images (kept in memory when they fit) and patch labels once; per model, features and the classifiers. */
export async function segmentationRunner(
  ctx: Context,
  task: SegmentationTask,
  patchSize: number,
  emit: (r: EvalResult) => void,
): Promise<ModelRunner> {
  const { cfg, hooks, size } = ctx;
  const data = task.load(cfg);
  const splits = { train: limit(data.train, cfg.limitTrain), test: limit(data.test, cfg.limitTest) };
  // One decode per sample: its label becomes patch labels now, its image is kept for extraction.
  const decoded = async (d: SegmentationDataset, stride: number): Promise<{ images: ImageSource; labels: PatchLabels }> => {
    const memo = new ImageMemo(IMAGE_MEMO_BYTES);
    const labels = await patchLabels(
      d.size,
      async (i) => {
        const sample = await d.load(i);
        memo.put(i, sample.image);
        return sample.label;
      },
      size,
      patchSize,
      stride,
    );
    return { images: memoized(imagesOf(d), memo), labels };
  };
  const train = await decoded(splits.train, cfg.trainPatchStride);
  const test = await decoded(splits.test, 1);
  // Label values outside the label set, scored as ignored (--unknown-labels ignore): said, and recorded with every row.
  const unknown = { train: splits.train.unknownLabels?.(), test: splits.test.unknownLabels?.() };
  const relabeled = (unknown.train?.pixels ?? 0) + (unknown.test?.pixels ?? 0) > 0 ? unknown : undefined;
  if (relabeled)
    hooks.log(
      `--unknown-labels ignore: ${relabeled.train?.pixels ?? 0} training and ${relabeled.test?.pixels ?? 0} test pixels of values ${[...new Set([...(relabeled.train?.values ?? []), ...(relabeled.test?.values ?? [])])].join(', ')} scored as ignored`,
    );
  const names = classifiersFor(ctx.probes, 'segmentation');
  // The task's floors and ceiling on the same test pixels, once, for every dense metric: they depend
  // on no model and no probe, so evaluations asking for different probes write the same rows
  // (not again where they exist: a resumed study).
  const pp = patchSize * patchSize;
  const refs = denseReferences(test.labels.pixels, patchModes(test.labels.pixels, pp, 256), pp, task.labels.ignore, task.labels.background);
  for (const [key, row] of Object.entries(REFERENCE_ROWS) as [
    keyof typeof REFERENCE_ROWS,
    (typeof REFERENCE_ROWS)[keyof typeof REFERENCE_ROWS],
  ][]) {
    const o = newOutcome();
    for (const c of allClassifiers('segmentation').map((n) => CLASSIFIERS[n] as SegClassifier)) {
      o.metrics[c.metrics.mIoU] = 100 * refs[key].mIoU;
      o.metrics[c.metrics.acc] = 100 * refs[key].accuracy;
      if (task.labels.background !== undefined)
        o.metrics[c.metrics.fgIoU] = 100 * foregroundIoU(refs[key].perClass, task.labels.background);
      o.notes[c.metrics.mIoU] = row.source;
    }
    if (names.length && !hooks.skipModel?.(row.name))
      emit(toResult(ctx, row.name, undefined, { kind: 'reference', source: row.source }, o));
  }
  const std = cfg.standardize ? 'standardised (train-split statistics)' : 'not standardised';

  return async (model) => {
    const o = newOutcome();
    if (relabeled) o.details.unknownLabels = relabeled;
    const trainRows = train.labels.rowImage.length;
    // The tasks of a Slurm evaluation share units of out-of-core work.
    const engine = cfg.stage === 'all' ? denseEngine(cfg, trainRows, model.patchDim) : 'cpu';
    if (engine === 'cpu' && names.some((n) => (CLASSIFIERS[n] as SegClassifier).features !== 'standard'))
      throw new Error(`--probes knn-centered runs on the in-memory engine: drop it, or pass --dense-engine tfjs`);
    if (engine === 'cpu' && cfg.saveSplits)
      throw new Error(`--save-splits writes the in-memory engine's splits: pass --dense-engine tfjs, or drop --save-splits`);
    const labelsOf = { pixelsPerPatch: patchSize * patchSize, numLabels: 256, classes: task.labels.classes };
    const common = {
      ...labelsOf,
      ignore: [...task.labels.ignore],
      background: task.labels.background,
      standardize: cfg.standardize,
      seed: cfg.seed,
    };
    let splitsFor: (f: SegFeatures) => DenseSplits;
    if (engine === 'cpu') {
      // Out of core: the rows stay in the feature store (or in memory without one); blocks fit --memory-gb.
      const ftr = await featureRows(ctx, model, train.images, task.transform, `${model.name} train`, cfg.trainPatchStride);
      const fte = await featureRows(ctx, model, test.images, task.transform, `${model.name} test`);
      o.seconds.features = ftr.seconds + fte.seconds;
      checkRows([ftr.source.rows, fte.source.rows], [train.labels, test.labels], patchSize);
      const units =
        cfg.stage === 'all'
          ? undefined
          : {
              dir: unitsDir(cfg, model.key),
              mine: cfg.stage === 'grid' && hooks.share ? (u: string) => ownsUnit(hooks.share!, u) : undefined,
              preempted: hooks.share?.preempted,
            };
      const ooc = prepareOutOfCore(
        { source: ftr.source, ...train.labels },
        { source: fte.source, ...test.labels },
        { ...common, dim: model.patchDim, kernels: cpuKernels(), memoryBytes: cfg.memoryGb * 2 ** 30, units },
      );
      if (cfg.stage === 'grid') {
        // This task's units: its k-NN query blocks (both phases and metrics) and validation fits.
        const asked = names.map((n) => CLASSIFIERS[n] as SegClassifier);
        if (asked.some((c) => c.metrics.mIoU.startsWith('seg.knn')))
          for (const phase of ['validation', 'test'] as const)
            for (const metric of SEG_KNN_METRICS) outOfCoreNeighbours(ooc, phase, metric, Math.max(...SEG_KNN_KS));
        if (names.includes('seg.logreg')) await outOfCoreLogRegValidation(ooc, LOGREG_C_GRID, cfg.logregMaxIter);
        return o;
      }
      o.details.engine = {
        name: 'cpu',
        kernels: ooc.kernels.name,
        memoryGb: cfg.memoryGb,
        blockRows: ooc.blockRows,
        queryRows: ooc.queryRows,
      };
      splitsFor = () => ooc;
    } else {
      const ftr = await features(ctx, model, train.images, task.transform, `${model.name} train`, cfg.trainPatchStride);
      const fte = await features(ctx, model, test.images, task.transform, `${model.name} test`);
      o.seconds.features = ftr.seconds + fte.seconds;
      checkRows([ftr.patch.length / ftr.patchDim, fte.patch.length / fte.patchDim], [train.labels, test.labels], patchSize);
      const prepare = (trainFeats: Float32Array, testFeats: Float32Array) =>
        prepareSegmentation({ feats: trainFeats, ...train.labels }, { feats: testFeats, ...test.labels }, { ...common, dim: ftr.patchDim });
      const standard = prepare(ftr.patch, fte.patch);
      if (cfg.saveSplits) saveSegSplits(path.join(cfg.saveSplits, cfg.task, model.name), standard);
      // Prepared only if a classifier reads it: the same protocol on features without their image's mean.
      let centered: ReturnType<typeof prepare> | undefined;
      splitsFor = (f: SegFeatures) => {
        if (f === 'standard') return standard;
        const minusImageMean = (x: Float32Array, l: PatchLabels) => subtractGroupMeans(x, ftr.patchDim, l.rowImage, l.images);
        centered ??= prepare(minusImageMean(ftr.patch, train.labels), minusImageMean(fte.patch, test.labels));
        return centered;
      };
      o.details.engine = { name: 'tfjs' };
      // What the classifiers see, summarised: how much of it is per-image context (report: discussion of dense claims).
      if (names.length) o.details.featureShares = featureShares(standard.test, ftr.patchDim);
      if (ctx.probes.includes('pca')) o.details.pca = await pcaPictures(ctx, model, test.images, fte, task.transform);
    }
    if (names.length) {
      for (const name of names) {
        const c = CLASSIFIERS[name] as SegClassifier<KnnPoint | number>;
        const splitsOnFeatures = splitsFor(c.features);
        const t0 = runningMs();
        const bars = new Map<string, Progress>();
        const run = (opts: Parameters<typeof c.run>[1]) =>
          engine === 'tfjs'
            ? withWasmHeap(
                `running ${name} on ${trainRows} training rows of ${model.patchDim}`,
                'pass --dense-engine cpu (out of core, within --memory-gb), or keep fewer training patches (--train-patch-stride)',
                () => c.run(splitsOnFeatures, opts),
              )
            : c.run(splitsOnFeatures, opts);
        const out = await run({
          knnIndex: cfg.knnIndex,
          logregMaxIter: cfg.logregMaxIter,
          progress: (label, done, total, info) => {
            const key = `${model.name} ${label}`;
            if (!bars.has(key)) bars.set(key, hooks.progress(key, total));
            bars.get(key)!.update(done, info);
          },
        });
        const { test: score } = out.selection;
        o.metrics[c.metrics.mIoU] = 100 * score.mIoU;
        o.metrics[c.metrics.acc] = 100 * score.accuracy;
        if (score.fgIoU !== undefined) o.metrics[c.metrics.fgIoU] = 100 * score.fgIoU;
        o.quality[c.metrics.mIoU] = {
          se: score.mIoUSE === undefined ? undefined : 100 * score.mIoUSE,
          ...(score.mIoUReplicates
            ? {
                testReplicates: encodeReplicates(
                  score.mIoUReplicates.map((v) => 100 * v),
                  test.labels.images,
                ),
              }
            : {}),
          atGridEdge: out.selection.atGridEdge,
          // A fitted classifier converged only if its refit's gradient met the tolerance.
          ...(score.fit ? { converged: score.fit.stop === 'converged' } : {}),
        };
        o.notes[c.metrics.mIoU] =
          `${out.bestLabel} chosen on 10% validation, refit on train+val; features ${c.features === 'image-centered' ? "minus their image's mean patch feature, then " : ''}${std}; ignore ${task.labels.ignore}` +
          (cfg.trainPatchStride > 1 ? `; every ${cfg.trainPatchStride}-th training patch` : '') +
          (score.fit && score.fit.stop !== 'converged'
            ? `; refit not converged (${score.fit.stop}, |g|max ${score.fit.gradMax.toExponential(1)})`
            : '');
        o.details[name] = {
          ...out.extra,
          validation: out.selection.validation,
          best: out.selection.best,
          atGridEdge: out.selection.atGridEdge,
          refit: score.fit,
        };
        o.seconds[name] = (runningMs() - t0) / 1000;
      }
    }
    return o;
  };
}
