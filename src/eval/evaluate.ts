/**
 * evaluate(cfg): the evaluation counterpart of the pretraining loop. Loads the task's data, its
 * labels and (dense tasks) patch labels once; then, for the checkpoint and each baseline in
 * turn, extracts features (or reads them from the cache) and runs only the classifiers the
 * probes ask for (DINOv2's split: protocol on features -> with a model -> main).
 */
import * as path from 'node:path';
import type { ImageDataset, LabeledDataset, RawImage } from '../data/dataset.js';
import { ImageMemo, memoized } from '../data/memo.js';
import type { SegmentationDataset } from '../data/segmentation-datasets.js';
import { IMAGENET_MEAN, IMAGENET_STD, renderImage } from '../data/transforms.js';
import { augmentedFeatures } from '../features/augmented.js';
import type { EvalTransform, Features, ImageSource } from '../features/extract.js';
import { evalBox, extractFeatures } from '../features/extract.js';
import type { FeatureModel } from '../features/models.js';
import {
  capiFeatureModel,
  initCapiFeatureModel,
  pixelFeatureModel,
  pixelImageFeatureModel,
  randomCapiFeatureModel,
} from '../features/models.js';
import type { LoadedEncoder } from '../model/io/load.js';
import { loadEncoder } from '../model/io/load.js';
import { knnClassify } from '../probes/knn-classify.js';
import type { GridResult } from '../probes/grid.js';
import { probeQuality } from '../probes/grid.js';
import type { OnlineSource } from '../probes/online.js';
import { trainProbeGridsOnline } from '../probes/online.js';
import { trainProbeGrid } from '../probes/train.js';
import type { PatchLabels } from '../segmentation/patches.js';
import { patchLabels, patchModes } from '../segmentation/patches.js';
import { denseReferences } from '../segmentation/metrics.js';
import { prepareSegmentation } from '../segmentation/protocol.js';
import { backendInfo } from '../runtime/backend.js';
import type { KnnClassifier, ProbeGridClassifier, SegClassifier } from './classifiers.js';
import { CLASSIFIERS, classifiersFor } from './classifiers.js';
import type { EvalConfig } from './config.js';
import type { MetricNotes, MetricQualities, Metrics } from './metrics.js';
import { binomialSE } from './metrics.js';
import type { EvalResult } from './result.js';
import type { ClassificationTask, SegmentationTask } from './tasks.js';
import { TASKS } from './tasks.js';

/** A phase's progress sink (the CLI draws a bar; tests may record). */
export interface Progress {
  update(done: number, info?: string): void;
}

/** An input image and its patch features, for a PCA picture (written by src/report/pca.ts). */
export interface PcaPicture {
  name: string;
  /** RGB bytes of the evaluation view, side `size`. */
  rgb: Uint8Array;
  size: number;
  /** [grid * grid, dim] */
  feats: Float32Array;
  grid: number;
  dim: number;
}

export interface EvalHooks {
  log(line: string): void;
  progress(label: string, total: number): Progress;
  /** Writes a PCA picture; returns its file. */
  savePca?(picture: PcaPicture): Promise<string>;
  /** Each model's result as soon as it is done. */
  onResult?(result: EvalResult): void;
}

/** Decoded images kept in memory between models, per split, at most this many bytes (else re-decoded). */
const IMAGE_MEMO_BYTES = 2 ** 30;

/** The largest feature batch <= 64 whose estimated one-block activations fit this budget. */
const FEATURE_ACTIVATION_BUDGET = 2 ** 29;

export function featureBatch(cfg: Pick<EvalConfig, 'featureBatch'>, model: FeatureModel, size: number): number {
  if (cfg.featureBatch > 0) return cfg.featureBatch;
  return Math.max(1, Math.min(64, Math.floor(FEATURE_ACTIVATION_BUDGET / model.activationBytesPerImage(size))));
}

const limit = <T extends { size: number }>(d: T, n: number): T => (n > 0 && n < d.size ? { ...d, size: n } : d);

/** The default row name: the checkpoint's folder or file name (+ '-student'). */
export function defaultModelName(cfg: Pick<EvalConfig, 'checkpoint' | 'weights'>): string {
  const base = path.basename(cfg.checkpoint.replace(/[/\\]+$/, '')).replace(/\.(pth|pt|safetensors)$/, '');
  return cfg.weights === 'student' ? `${base}-student` : base;
}

/** The row names evaluate() will write, in order (checkpoint, then baselines). */
export function resultNames(cfg: EvalConfig, canInit = true): string[] {
  const names = [
    cfg.name || defaultModelName(cfg),
    ...(cfg.baselines ? [...(canInit ? ['init'] : []), 'random-init', 'pixel-patches', 'pixels'] : []),
  ];
  const reference = cfg.probeMode === 'reference' && TASKS[cfg.task].kind === 'classification';
  return names.map((n) => (reference ? `${n} (reference probes)` : n));
}

interface ModelEntry {
  build(): FeatureModel;
  kind: EvalResult['kind'];
  source: string;
}

/**
 * The checkpoint, then (unless --no-baselines): the run's own step-0 weights (capi-ts runs), the
 * same architecture at the reference's random init, raw pixel patches, and the whole image.
 */
function modelEntries(cfg: EvalConfig, enc: LoadedEncoder, size: number): ModelEntry[] {
  const name = cfg.name || defaultModelName(cfg);
  const models: ModelEntry[] = [
    { build: () => capiFeatureModel(name, enc.hash, enc.params, enc.config), kind: 'capi', source: enc.source },
  ];
  if (cfg.baselines) {
    const seed = enc.runSeed;
    if (seed !== undefined) {
      models.push({
        build: () => initCapiFeatureModel(enc.config, seed),
        kind: 'baseline',
        source: `the run's own step-0 weights (seed ${seed}): the gap is what training did`,
      });
    }
    models.push({
      build: () => randomCapiFeatureModel(enc.config, cfg.seed),
      kind: 'baseline',
      source: 'same architecture, reference init, no training',
    });
    const p = enc.config.patchSize;
    models.push({ build: () => pixelFeatureModel(p), kind: 'baseline', source: `raw normalised ${p}x${p} pixel patches` });
    models.push({
      build: () => pixelImageFeatureModel(p, size),
      kind: 'baseline',
      source: `the whole normalised ${size}x${size} image flattened (the pred-pool columns hold it); patches: pixel patch + position`,
    });
  }
  return models;
}

/** A dense task's floors and ceiling, written as rows of their own next to the models. */
const REFERENCE_ROWS = {
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

/** Everything of a model's evaluation that goes into its result. */
interface Outcome {
  metrics: Metrics;
  notes: MetricNotes;
  quality: MetricQualities;
  details: Record<string, unknown>;
  seconds: Record<string, number>;
}

const newOutcome = (): Outcome => ({ metrics: {}, notes: {}, quality: {}, details: {}, seconds: {} });

export async function evaluate(cfg: EvalConfig, hooks: EvalHooks): Promise<EvalResult[]> {
  const task = TASKS[cfg.task];
  const probes = cfg.probes.length ? cfg.probes : task.probes;
  const enc = loadEncoder(cfg.checkpoint, {
    preset: cfg.preset || undefined,
    imageSize: cfg.resolution || undefined,
    weights: cfg.weights,
  });
  const size = cfg.resolution || task.resolution(enc.config.imageSize);
  if (size % enc.config.patchSize !== 0)
    throw new Error(`--resolution ${size} is not a multiple of the patch size ${enc.config.patchSize}`);
  hooks.log(`model: ${enc.source}`);
  const ctx: Context = { cfg, hooks, size, probes };
  const results: EvalResult[] = [];
  const emit = (r: EvalResult) => {
    results.push(r);
    hooks.onResult?.(r);
  };
  const perModel =
    task.kind === 'classification'
      ? await classificationRunner(ctx, task)
      : await segmentationRunner(ctx, task, enc.config.patchSize, emit);
  // Built one at a time, so a large model and its random-init baseline are never in memory together.
  for (const entry of modelEntries(cfg, enc, size)) {
    const model = entry.build();
    try {
      const t0 = performance.now();
      const o = await perModel(model);
      o.seconds.total = (performance.now() - t0) / 1000;
      emit(toResult(cfg, model.name, model, entry, o, size));
    } finally {
      model.dispose();
    }
  }
  return results;
}

interface Context {
  cfg: EvalConfig;
  hooks: EvalHooks;
  size: number;
  probes: readonly EvalConfig['probes'][number][];
}

function toResult(
  cfg: EvalConfig,
  name: string,
  model: FeatureModel | undefined,
  entry: Omit<ModelEntry, 'build'>,
  o: Outcome,
  size: number,
): EvalResult {
  const { backend, threads, ...rest } = cfg;
  const segmentation = TASKS[cfg.task].kind === 'segmentation';
  return {
    task: cfg.task,
    // Reference-mode probes are another protocol: their own row (and file) next to the fast one.
    model: cfg.probeMode === 'reference' && !segmentation ? `${name} (reference probes)` : name,
    kind: entry.kind,
    source: entry.source,
    metrics: o.metrics,
    notes: o.notes,
    quality: o.quality,
    details: o.details,
    config: {
      ...rest,
      name: cfg.name || defaultModelName(cfg),
      resolution: size,
      ...(model ? { featureBatch: featureBatch(cfg, model, size) } : {}),
    },
    seed: cfg.seed,
    backend: { ...backendInfo(), requested: backend, threads },
    seconds: o.seconds,
    command: `npm run eval -- ${process.argv.slice(2).join(' ')}`,
    createdAt: new Date().toISOString(),
  };
}

async function features(
  ctx: Context,
  model: FeatureModel,
  src: ImageSource,
  transform: EvalTransform,
  label: string,
  patchStride = 1,
): Promise<Features> {
  const { cfg, hooks, size } = ctx;
  let bar: Progress | undefined;
  const f = await extractFeatures(model, src, {
    size,
    transform,
    patchStride,
    batchSize: featureBatch(cfg, model, size),
    cacheDir: cfg.cacheDir,
    maxBytes: cfg.maxFeatureGb * 2 ** 30,
    onProgress: (done, total) => {
      bar ??= hooks.progress(`${label} features`, total);
      bar.update(done);
    },
  });
  if (f.fromCache) hooks.log(`${label} features: from cache`);
  return f;
}

/** Eval-view RGB bytes of `img` (the normalisation undone) for pictures. */
function viewBytes(img: RawImage, size: number, transform: EvalTransform): Uint8Array {
  const px = new Float32Array(3 * size * size);
  renderImage(img, { size, box: evalBox(img, transform), flip: false }, px, 0);
  const rgb = new Uint8Array(size * size * 3);
  for (let k = 0; k < size * size; k++) {
    for (let ch = 0; ch < 3; ch++) {
      rgb[k * 3 + ch] = Math.max(0, Math.min(255, Math.round((px[ch * size * size + k] * IMAGENET_STD[ch] + IMAGENET_MEAN[ch]) * 255)));
    }
  }
  return rgb;
}

async function pcaPictures(ctx: Context, model: FeatureModel, src: ImageSource, f: Features, transform: EvalTransform): Promise<string[]> {
  if (!ctx.hooks.savePca) return [];
  const files: string[] = [];
  const t = f.tokens;
  for (let i = 0; i < Math.min(ctx.cfg.pcaImages, src.size); i++) {
    const rgb = viewBytes(await src.load(i), ctx.size, transform);
    const feats = f.patch.subarray(i * t * f.patchDim, (i + 1) * t * f.patchDim);
    files.push(await ctx.hooks.savePca({ name: `${model.name}-${i}`, rgb, size: ctx.size, feats, grid: f.grid, dim: f.patchDim }));
  }
  return files;
}

type ModelRunner = (model: FeatureModel) => Promise<Outcome>;

const MODE_NOTE = {
  fast: 'fast mode (cached un-augmented features)',
  reference: 'reference mode (RandomResizedCrop 0.08-1 + flip per batch, one frozen forward shared by every grid)',
};

/** Classification: the data and labels once; per model, features then the asked-for classifiers. */
async function classificationRunner(ctx: Context, task: ClassificationTask): Promise<ModelRunner> {
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
      o.quality[c.metric] = { se: binomialSE(r.testAccuracy, yte.length), atGridEdge: q.lrAtGridEdge, converged: q.converged };
      o.notes[c.metric] =
        `best of ${r.grid.length} (lr ${best.lr.toExponential(1)}, wd ${best.wd}) on 10% held out; ${r.iterations} steps (${cfg.epochs} epochs), ${MODE_NOTE[cfg.probeMode]}` +
        `${q.lrAtGridEdge ? '; lr at the grid edge' : ''}${q.converged ? '' : `; held-out not plateaued (${(100 * q.lateChange).toFixed(2)} points over the last 20%)`}`;
      o.details[name] = {
        valAccuracy: r.valAccuracy,
        grid: r.grid,
        best: r.best,
        bestPoint: best,
        iterations: r.iterations,
        ...q,
        curve: r.curve,
        probeMode: cfg.probeMode,
      };
      o.seconds[name] = r.secondsPerEpoch * cfg.epochs; // secondsPerEpoch is the run's time / cfg.epochs
      o.seconds[`${name}.perEpoch`] = r.secondsPerEpoch;
    };
    const opts = { epochs: cfg.epochs, steps: cfg.probeSteps || undefined, batchSize: cfg.batchSize, seed: cfg.seed };
    const onProgress = (label: string) => {
      let bar: Progress | undefined;
      return (done: number, total: number, best?: number) => {
        bar ??= hooks.progress(label, total);
        bar.update(done, best === undefined ? '' : `best held-out ${(100 * best).toFixed(1)}%`);
      };
    };
    if (cfg.probeMode === 'fast') {
      for (const s of sources)
        record(
          s.name as (typeof grids)[number],
          trainProbeGrid(s.family, s.evalTrain, s.test, classes, { ...opts, onProgress: onProgress(`${model.name} ${s.name}`) }),
        );
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
      let bar: Progress | undefined;
      const progress = (done: number, total: number) => {
        bar ??= hooks.progress(`${model.name} ${name} search`, total);
        bar.update(done);
      };
      const acc = knnClassify(pick(ftr, c.source), ytr, pick(fte, c.source), yte, dim, classes, { onProgress: progress });
      o.metrics[c.metric] = 100 * acc;
      o.quality[c.metric] = { se: binomialSE(acc, yte.length) };
      o.notes[c.metric] = c.note;
    }
    if (ctx.probes.includes('pca')) o.details.pca = await pcaPictures(ctx, model, test, fte, task.transform);
    return o;
  };
}

/** The images of a dense split, as an image source for extraction. */
const imagesOf = (d: SegmentationDataset): ImageDataset => ({
  description: d.description,
  size: d.size,
  load: async (i) => (await d.load(i)).image,
});

/** Segmentation: images (kept in memory when they fit) and patch labels once; per model, features and the classifiers. */
async function segmentationRunner(
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
  const names = classifiersFor(ctx.probes, 'segmentation');
  // The task's floors and ceiling on the same test pixels, once (they depend on no model).
  const pp = patchSize * patchSize;
  const refs = denseReferences(test.labels.pixels, patchModes(test.labels.pixels, pp, 256), pp, task.labels.ignore, task.labels.background);
  for (const [key, row] of Object.entries(REFERENCE_ROWS) as [
    keyof typeof REFERENCE_ROWS,
    (typeof REFERENCE_ROWS)[keyof typeof REFERENCE_ROWS],
  ][]) {
    const o = newOutcome();
    for (const c of names.map((n) => CLASSIFIERS[n] as SegClassifier)) {
      o.metrics[c.metrics.mIoU] = 100 * refs[key].mIoU;
      o.metrics[c.metrics.acc] = 100 * refs[key].accuracy;
      o.notes[c.metrics.mIoU] = row.source;
    }
    if (names.length) emit(toResult(cfg, row.name, undefined, { kind: 'reference', source: row.source }, o, size));
  }
  const std = cfg.standardize ? 'standardised (train-split statistics)' : 'not standardised';

  return async (model) => {
    const o = newOutcome();
    const ftr = await features(ctx, model, train.images, task.transform, `${model.name} train`, cfg.trainPatchStride);
    const fte = await features(ctx, model, test.images, task.transform, `${model.name} test`);
    o.seconds.features = ftr.seconds + fte.seconds;
    for (const [f, l, what] of [
      [ftr, train.labels, 'train'],
      [fte, test.labels, 'test'],
    ] as const) {
      if (f.patch.length / f.patchDim !== l.pixels.length / (patchSize * patchSize))
        throw new Error(`${what}: ${f.patch.length / f.patchDim} feature rows but ${l.rowImage.length} label rows`);
    }
    if (names.length) {
      const splitsOnFeatures = prepareSegmentation(
        { feats: ftr.patch, ...train.labels },
        { feats: fte.patch, ...test.labels },
        {
          dim: ftr.patchDim,
          pixelsPerPatch: patchSize * patchSize,
          numLabels: 256,
          classes: task.labels.classes,
          ignore: [...task.labels.ignore],
          standardize: cfg.standardize,
          seed: cfg.seed,
        },
      );
      for (const name of names) {
        const c = CLASSIFIERS[name] as SegClassifier;
        const t0 = performance.now();
        const bars = new Map<string, Progress>();
        const out = c.run(splitsOnFeatures, {
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
        o.quality[c.metrics.mIoU] = {
          se: score.mIoUSE === undefined ? undefined : 100 * score.mIoUSE,
          atGridEdge: out.selection.atGridEdge,
        };
        o.notes[c.metrics.mIoU] =
          `${out.bestLabel} chosen on 10% validation, refit on train+val; features ${std}; ignore ${task.labels.ignore}` +
          (cfg.trainPatchStride > 1 ? `; every ${cfg.trainPatchStride}-th training patch` : '');
        o.details[name] = {
          ...out.extra,
          validation: out.selection.validation,
          best: out.selection.best,
          atGridEdge: out.selection.atGridEdge,
          refit: score.fit,
        };
        o.seconds[name] = (performance.now() - t0) / 1000;
      }
    }
    if (ctx.probes.includes('pca')) o.details.pca = await pcaPictures(ctx, model, test.images, fte, task.transform);
    return o;
  };
}
