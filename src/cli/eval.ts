/**
 * `npm run eval -- --task NAME --checkpoint RUN_OR_FILE [options]`: frozen-feature evaluation
 * with the paper's protocol (eval spec), for the checkpoint and the baselines, written under
 * results/<task>/.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { LabeledDataset } from '../data/dataset.js';
import { loadFashionMnist, locateFashionMnist } from '../data/fashion-mnist.js';
import { fmnistScenes, SCENES_DEFAULTS } from '../data/fmnist-scenes.js';
import { imageFolder } from '../data/image-folder.js';
import type { SegmentationDataset } from '../data/segmentation-datasets.js';
import { ade20k, cityscapes, voc2012 } from '../data/segmentation-datasets.js';
import type { EvalTransform, Features, ImageSource } from '../features/extract.js';
import { augmentedFeatures } from '../features/augmented.js';
import { evalBox, extractFeatures } from '../features/extract.js';
import type { FeatureModel } from '../features/models.js';
import { capiFeatureModel, pixelFeatureModel, randomCapiFeatureModel } from '../features/models.js';
import { IMAGENET_MEAN, IMAGENET_STD, renderImage } from '../data/transforms.js';
import { loadEncoder } from '../model/io/load.js';
import { attentiveFamily, linearFamily } from '../probes/families.js';
import type { ProbeFamily } from '../probes/families.js';
import type { GridResult } from '../probes/grid.js';
import { trainProbeGridsOnline } from '../probes/online.js';
import type { OnlineSource } from '../probes/online.js';
import { knnClassify } from '../probes/knn-classify.js';
import { trainProbeGrid } from '../probes/train.js';
import { savePcaPicture } from '../report/pca.js';
import type { EvalResult } from '../report/results.js';
import { writeResult } from '../report/results.js';
import { EXACT_KNN_MAX_FLOP, KNN_INDEXES, runSegmentation } from '../segmentation/task.js';
import type { KnnIndex } from '../segmentation/task.js';
import { patchSet } from '../segmentation/patch-set.js';
import { backendInfo, BACKEND_CHOICES, initBackend } from '../runtime/backend.js';
import type { BackendRequest } from '../runtime/backend.js';
import { parseArgs, runMain } from './args.js';
import { ProgressBar } from './progress.js';

const PROBE_MODES = ['fast', 'reference'] as const;
type ProbeMode = (typeof PROBE_MODES)[number];
const TASKS = ['fmnist', 'fmnist-scenes', 'imagenet', 'ade20k', 'voc', 'cityscapes'] as const;
type Task = (typeof TASKS)[number];
const CLASSIFICATION_PROBES = ['attentive', 'linear', 'knn', 'predictor-pooling', 'pca'];
const SEGMENTATION_PROBES = ['knn', 'logreg', 'pca'];

export interface EvalConfig {
  task: Task;
  checkpoint: string;
  name: string;
  preset: string;
  weights: string;
  dataRoot: string;
  dataDir: string;
  probes: string[];
  baselines: boolean;
  resolution: number;
  limitTrain: number;
  limitTest: number;
  scenesTrain: number;
  scenesTest: number;
  epochs: number;
  batchSize: number;
  featureBatch: number;
  probeMode: ProbeMode;
  trainPatchStride: number;
  knnIndex: KnnIndex;
  standardize: boolean;
  logregMaxIter: number;
  seed: number;
  out: string;
  cacheDir: string;
  maxFeatureGb: number;
  pcaImages: number;
  backend: BackendRequest;
  threads: number;
}

const DEFAULTS: Omit<EvalConfig, 'task' | 'checkpoint'> = {
  name: '', preset: '', weights: 'teacher', dataRoot: '', dataDir: '', probes: [], baselines: true, resolution: 0, limitTrain: 0, limitTest: 0,
  scenesTrain: 2000, scenesTest: 500, epochs: 10, batchSize: 256, featureBatch: 0, probeMode: 'fast', trainPatchStride: 1, knnIndex: 'auto', standardize: true, logregMaxIter: 1000, seed: 0,
  out: 'results', cacheDir: '.cache/features', maxFeatureGb: 8, pcaImages: 6, backend: 'auto', threads: 2,
};

const HELP = `Usage: npm run eval -- --task TASK --checkpoint RUN_OR_FILE [options]

Frozen-feature evaluation with the CAPI paper's protocol, for the checkpoint and (by default)
two baselines: the same architecture with random weights, and raw pixel patches.

Tasks: ${TASKS.join(', ')}
  fmnist         classification (Fashion-MNIST train / test); --dataDir as for pretrain
  fmnist-scenes  segmentation on canvases of Fashion-MNIST items (background + 10 classes)
  imagenet       classification from --data-root with train/ and val/ class folders
  ade20k, voc, cityscapes   segmentation from --data-root in the datasets' own layouts
Options:
  --probes LIST        classification: ${CLASSIFICATION_PROBES.join(',')}
                       segmentation: ${SEGMENTATION_PROBES.join(',')} (default: all)
  --name NAME          row name in the tables (default: the checkpoint's folder or file name)
  --preset P           check a reference .pth against a preset (default: shapes from the file)
  --weights W          teacher (default, the EMA model the paper evaluates) | student: which
                       weights of a capi-ts run or checkpoint.safetensors to evaluate
  --resolution S       input side (default: the model's pretraining size; 56 for fmnist-scenes)
  --limit-train N, --limit-test N   evaluate the first N images of a split (0: all)
  --scenes-train N, --scenes-test N  fmnist-scenes canvases per split (default 2000 / 500)
  --probe-mode M       fast (default): probes train on cached un-augmented features;
                       reference: every batch RandomResizedCrop(0.08-1) + flip, one frozen
                       forward shared by all grids (the paper's protocol; a forward per step)
  --epochs E           probe training epochs over the 90% split (default 10)
  --batch-size B       probe batch (default 256; grid lrs are scaled by B/256)
  --feature-batch B    images per frozen forward (default 0: automatic, at most 64 and few
                       enough that one block's activations stay under ~0.5 GiB: 7 for ViT-L/14)
  --train-patch-stride K   segmentation: keep every K-th training patch, streamed while the
                       features are extracted (the reference's train_set_subsampling; default 1)
  --knn-index I        segmentation k-NN search: exact | hnsw (approximate, hnswlib-node) | auto
                       (default: exact unless one search would exceed ${EXACT_KNN_MAX_FLOP.toExponential(0)} FLOP)
  --no-standardize     segmentation without feature standardisation (Table 7)
  --no-baselines       only the checkpoint
  --seed S, --out DIR (default results), --cache-dir DIR (default .cache/features; '' to disable)
  --max-feature-gb G   refuse feature arrays above G GiB (default 8)
  --backend, --threads as for pretrain`;

function parseConfig(argv: string[]): EvalConfig {
  const { values } = parseArgs(argv);
  const cfg: Record<string, unknown> = { ...DEFAULTS };
  for (const [k, v] of Object.entries(values)) {
    if (!(k in DEFAULTS) && k !== 'task' && k !== 'checkpoint') throw new Error(`unknown option --${k} (see --help)`);
    const cur = cfg[k];
    if (typeof cur === 'number') {
      if (Number.isNaN(Number(v)) || v === '') throw new Error(`invalid --${k}: expected a number, got '${v}'`);
      cfg[k] = Number(v);
    } else if (typeof cur === 'boolean') cfg[k] = v !== 'false';
    else if (Array.isArray(cur)) cfg[k] = v.split(',').map((s) => s.trim()).filter(Boolean);
    else cfg[k] = v;
  }
  const c = cfg as unknown as EvalConfig;
  if (!c.task) throw new Error(`--task is required: one of ${TASKS.join(', ')}`);
  if (!TASKS.includes(c.task)) throw new Error(`unknown --task '${c.task}': one of ${TASKS.join(', ')}`);
  if (!c.checkpoint) throw new Error('--checkpoint is required: a capi-ts run folder, teacher export, .safetensors or .pth file');
  if (!BACKEND_CHOICES.includes(c.backend)) throw new Error(`invalid --backend '${c.backend}'`);
  const allowed = isSegmentation(c.task) ? SEGMENTATION_PROBES : CLASSIFICATION_PROBES;
  if (!c.probes.length) c.probes = allowed;
  for (const p of c.probes) if (!allowed.includes(p)) throw new Error(`probe '${p}' does not apply to ${c.task}: choose from ${allowed.join(', ')}`);
  if (!Number.isInteger(c.trainPatchStride) || c.trainPatchStride < 1) throw new Error(`invalid --train-patch-stride ${c.trainPatchStride}: a positive integer`);
  if (!Number.isInteger(c.featureBatch) || c.featureBatch < 0) throw new Error(`invalid --feature-batch ${c.featureBatch}: a positive integer (0: automatic)`);
  if (!PROBE_MODES.includes(c.probeMode)) throw new Error(`invalid --probe-mode '${c.probeMode}': ${PROBE_MODES.join(', ')}`);
  if (!KNN_INDEXES.includes(c.knnIndex)) throw new Error(`invalid --knn-index '${c.knnIndex}': ${KNN_INDEXES.join(', ')}`);
  if (c.weights !== 'teacher' && c.weights !== 'student') throw new Error(`invalid --weights '${c.weights}': teacher or student`);
  if (!c.name) {
    c.name = path.basename(c.checkpoint.replace(/[/\\]+$/, '')).replace(/\.(pth|pt|safetensors)$/, '');
    if (c.weights === 'student') c.name += '-student';
  }
  return c;
}

const isSegmentation = (t: Task) => t !== 'fmnist' && t !== 'imagenet';

const limit = <T extends { size: number }>(d: T, n: number): T => (n > 0 && n < d.size ? { ...d, size: n } : d);

function classificationData(c: EvalConfig): { train: LabeledDataset; test: LabeledDataset; transform: EvalTransform } {
  if (c.task === 'fmnist') {
    const dir = locateFashionMnist(c.dataDir || undefined);
    return { train: loadFashionMnist(dir, 'train'), test: loadFashionMnist(dir, 't10k'), transform: 'resize' };
  }
  const root = c.dataRoot || (() => { throw new Error('--data-root is required for imagenet (train/ and val/ class folders)'); })();
  return { train: imageFolder(path.join(root, 'train')), test: imageFolder(path.join(root, 'val')), transform: 'center-crop' };
}

function segmentationData(c: EvalConfig): { train: SegmentationDataset; test: SegmentationDataset } {
  if (c.task === 'fmnist-scenes') {
    const dir = locateFashionMnist(c.dataDir || undefined);
    const opts = { ...SCENES_DEFAULTS, seed: c.seed };
    return {
      train: fmnistScenes(loadFashionMnist(dir, 'train'), 'train', { ...opts, count: c.scenesTrain }),
      test: fmnistScenes(loadFashionMnist(dir, 't10k'), 'test', { ...opts, count: c.scenesTest }),
    };
  }
  if (!c.dataRoot) throw new Error(`--data-root is required for ${c.task}`);
  if (c.task === 'ade20k') return { train: ade20k(c.dataRoot, 'training'), test: ade20k(c.dataRoot, 'validation') };
  if (c.task === 'voc') return { train: voc2012(c.dataRoot, 'train'), test: voc2012(c.dataRoot, 'val') };
  return { train: cityscapes(c.dataRoot, 'train'), test: cityscapes(c.dataRoot, 'val') };
}

/** --feature-batch, or the largest batch up to 64 whose activations fit FEATURE_ACTIVATION_BUDGET. */
const FEATURE_ACTIVATION_BUDGET = 2 ** 29;
function featureBatch(c: EvalConfig, model: FeatureModel, size: number): number {
  if (c.featureBatch > 0) return c.featureBatch;
  return Math.max(1, Math.min(64, Math.floor(FEATURE_ACTIVATION_BUDGET / model.activationBytesPerImage(size))));
}

async function features(model: FeatureModel, src: ImageSource, c: EvalConfig, size: number, transform: EvalTransform, label: string, patchStride = 1): Promise<Features> {
  let bar: ProgressBar | undefined;
  const f = await extractFeatures(model, src, {
    size, transform, patchStride, batchSize: featureBatch(c, model, size), cacheDir: c.cacheDir, maxBytes: c.maxFeatureGb * 2 ** 30,
    onProgress: (done, total) => {
      bar ??= new ProgressBar(total, `${label} features`);
      bar.update(done);
    },
  });
  if (f.fromCache) console.error(`${label} features: from cache`);
  return f;
}

async function savePca(c: EvalConfig, model: FeatureModel, src: ImageSource, f: Features, size: number, transform: EvalTransform): Promise<string[]> {
  const dir = path.join(c.out, c.task, 'pca');
  fs.mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  for (let i = 0; i < Math.min(c.pcaImages, src.size); i++) {
    const img = await src.load(i);
    const px = new Float32Array(3 * size * size);
    renderImage(img, { size, box: evalBox(img, transform), flip: false }, px, 0);
    // Back to bytes for the picture (undo the normalisation).
    const rgb = new Uint8Array(size * size * 3);
    for (let k = 0; k < size * size; k++) for (let ch = 0; ch < 3; ch++) rgb[k * 3 + ch] = Math.max(0, Math.min(255, Math.round((px[ch * size * size + k] * IMAGENET_STD[ch] + IMAGENET_MEAN[ch]) * 255)));
    const file = path.join(dir, `${model.name.replace(/[^A-Za-z0-9._-]+/g, '_')}-${i}.png`);
    const t = f.tokens;
    await savePcaPicture(file, rgb, 3, size, f.patch.subarray(i * t * f.patchDim, (i + 1) * t * f.patchDim), f.grid, f.patchDim);
    files.push(file);
  }
  return files;
}

async function evaluateModel(c: EvalConfig, model: FeatureModel, kind: EvalResult['kind'], source: string, size: number): Promise<EvalResult> {
  const metrics: Record<string, number> = {};
  const notes: Record<string, string> = {};
  const details: Record<string, unknown> = {};
  const seconds: Record<string, number> = {};
  const t0 = performance.now();
  if (!isSegmentation(c.task)) {
    const data = classificationData(c);
    const train = limit(data.train, c.limitTrain);
    const test = limit(data.test, c.limitTest);
    const ftr = await features(model, train, c, size, data.transform, `${model.name} train`);
    const fte = await features(model, test, c, size, data.transform, `${model.name} test`);
    seconds.features = ftr.seconds + fte.seconds;
    const labels = (d: LabeledDataset) => Int32Array.from({ length: d.size }, (_, i) => d.label(i));
    const ytr = labels(train), yte = labels(test);
    const classes = train.numClasses;
    const sources: OnlineSource[] = [];
    const source = (name: string, family: ProbeFamily, x: Float32Array, xt: Float32Array, rowShape: number[]) =>
      sources.push({ name, family, rowShape, evalTrain: { x, rowShape, labels: ytr }, test: { x: xt, rowShape, labels: yte } });
    if (c.probes.includes('attentive')) source('attentive', attentiveFamily, ftr.patch, fte.patch, [ftr.tokens, ftr.patchDim]);
    if (c.probes.includes('linear') || c.probes.includes('predictor-pooling')) source('linear(avg)', linearFamily, ftr.avg, fte.avg, [ftr.patchDim]);
    if (c.probes.includes('predictor-pooling')) source('linear(pred-pool)', linearFamily, ftr.global, fte.global, [ftr.globalDim]);
    const opts = { epochs: c.epochs, batchSize: c.batchSize, seed: c.seed };
    const record = (name: string, r: GridResult, mode: string) => {
      metrics[`${name}.top1`] = 100 * r.testAccuracy;
      notes[`${name}.top1`] = `best of ${r.grid.length} (lr ${r.grid[r.best].lr.toExponential(1)}, wd ${r.grid[r.best].wd}) on 10% held out; ${c.epochs} epochs, ${mode}`;
      details[name] = { valAccuracy: r.valAccuracy, grid: r.grid, best: r.best, iterations: r.iterations, probeMode: c.probeMode };
      seconds[name] = r.secondsPerEpoch * c.epochs;
      seconds[`${name}.perEpoch`] = r.secondsPerEpoch;
    };
    if (c.probeMode === 'fast') {
      for (const s of sources) {
        let bar: ProgressBar | undefined;
        const r = trainProbeGrid(s.family, s.evalTrain, s.test, classes, {
          ...opts, onProgress: (d, t) => { bar ??= new ProgressBar(t, `${model.name} ${s.name}`); bar.update(d); },
        });
        record(s.name, r, 'fast mode (cached un-augmented features)');
      }
    } else if (sources.length) {
      const augmented = augmentedFeatures(model, train, size, { seed: c.seed, batchSize: featureBatch(c, model, size) });
      let bar: ProgressBar | undefined;
      const rs = await trainProbeGridsOnline(sources, ytr, classes, {
        ...opts, onProgress: (d, t) => { bar ??= new ProgressBar(t, `${model.name} probes (reference mode)`); bar.update(d); },
      }, async (idx) => {
        const f = await augmented(idx);
        return { attentive: f.patch, 'linear(avg)': f.avg, 'linear(pred-pool)': f.global };
      });
      for (const s of sources) record(s.name, rs[s.name], 'reference mode (RandomResizedCrop 0.08-1 + flip per batch, one frozen forward shared by every grid)');
    }
    if (c.probes.includes('knn') || c.probes.includes('predictor-pooling')) {
      metrics['knn(avg).top1'] = 100 * knnClassify(ftr.avg, ytr, fte.avg, yte, ftr.patchDim, classes);
      notes['knn(avg).top1'] = 'weighted k-NN, k=20, T=0.07, cosine on average-pooled patch tokens';
    }
    if (c.probes.includes('predictor-pooling')) {
      metrics['knn(pred-pool).top1'] = 100 * knnClassify(ftr.global, ytr, fte.global, yte, ftr.globalDim, classes);
      notes['knn(pred-pool).top1'] = 'weighted k-NN, k=20, T=0.07, cosine on the predictor-pooled vector';
    }
    if (c.probes.includes('pca')) details.pca = await savePca(c, model, test, fte, size, data.transform);
  } else {
    const data = segmentationData(c);
    const train = limit(data.train, c.limitTrain);
    const test = limit(data.test, c.limitTest);
    const img = (d: SegmentationDataset): ImageSource => ({ description: d.description, size: d.size, load: async (i) => (await d.load(i)).image });
    const ftr = await features(model, img(train), c, size, 'resize', `${model.name} train`, c.trainPatchStride);
    const fte = await features(model, img(test), c, size, 'resize', `${model.name} test`);
    seconds.features = ftr.seconds + fte.seconds;
    const p = model.patchSize;
    const [trSet, teSet] = [await patchSet(train, ftr, size, p), await patchSet(test, fte, size, p)];
    if (c.probes.includes('knn') || c.probes.includes('logreg')) {
      const r = runSegmentation(trSet, teSet, {
        dim: ftr.patchDim, pixelsPerPatch: p * p, numLabels: 256, classes: train.numClasses, ignore: train.ignore,
        standardize: c.standardize, seed: c.seed, logregMaxIter: c.logregMaxIter, knnIndex: c.knnIndex,
        onProgress: (w) => console.error(`${model.name}: ${w}`),
      });
      const std = c.standardize ? 'standardised (train-split statistics)' : 'not standardised';
      for (const [probe, res] of [['knn', r.knn], ['logreg', r.logreg]] as const) {
        if (!c.probes.includes(probe)) continue;
        metrics[`seg.${probe}.mIoU`] = 100 * res.mIoU;
        metrics[`seg.${probe}.acc`] = 100 * res.accuracy;
        const search = res.index ? ` (${res.index === 'hnsw' ? 'approximate HNSW' : 'exact'} search)` : '';
        notes[`seg.${probe}.mIoU`] = `${res.best}${search} chosen on 10% validation, refit on train+val; features ${std}; ignore ${train.ignore}${c.trainPatchStride > 1 ? `; every ${c.trainPatchStride}-th training patch` : ''}`;
        details[probe] = res.validation;
        seconds[probe] = res.seconds;
      }
    }
    if (c.probes.includes('pca')) details.pca = await savePca(c, model, img(test), fte, size, 'resize');
  }
  seconds.total = (performance.now() - t0) / 1000;
  const { backend, threads, ...restCfg } = c;
  return {
    // Reference-mode probes are another protocol: their own row (and file) next to the fast one.
    task: c.task, model: c.probeMode === 'reference' && !isSegmentation(c.task) ? `${model.name} (reference probes)` : model.name, kind, source, metrics, notes, details,
    config: { ...restCfg, resolution: size, featureBatch: featureBatch(c, model, size) }, seed: c.seed, backend: { ...backendInfo(), requested: backend, threads },
    seconds, command: `npm run eval -- ${process.argv.slice(2).join(' ')}`, createdAt: new Date().toISOString(),
  };
}

runMain(async () => {
  if (process.argv.includes('--help')) {
    console.log(HELP);
    return;
  }
  const c = parseConfig(process.argv.slice(2));
  await initBackend(c.backend, c.threads);
  const enc = loadEncoder(c.checkpoint, { preset: c.preset || undefined, imageSize: c.resolution || undefined, weights: c.weights as 'teacher' | 'student' });
  const size = c.resolution || (c.task === 'fmnist-scenes' ? SCENES_DEFAULTS.size : enc.config.imageSize);
  if (size % enc.config.patchSize !== 0) throw new Error(`--resolution ${size} is not a multiple of the patch size ${enc.config.patchSize}`);
  console.error(`model: ${enc.source}`);
  // Built one at a time, so a large model and its random-init baseline are never in memory together.
  const models: [() => FeatureModel, EvalResult['kind'], string][] = [[() => capiFeatureModel(c.name, enc.hash, enc.params, enc.config), 'capi', enc.source]];
  if (c.baselines) {
    models.push([() => randomCapiFeatureModel(enc.config, c.seed), 'baseline', 'same architecture, reference init, no training']);
    models.push([() => pixelFeatureModel(enc.config.patchSize), 'baseline', `raw normalised ${enc.config.patchSize}x${enc.config.patchSize} pixel patches`]);
  }
  for (const [build, kind, source] of models) {
    const model = build();
    const r = await evaluateModel(c, model, kind, source, size);
    const file = writeResult(c.out, r);
    console.error(`${model.name}: ${Object.entries(r.metrics).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')} -> ${file}`);
    model.dispose();
  }
});
