/**
 * What the evaluation runners share (src/eval/classification.ts, src/eval/segmentation.ts):
 * the hooks a caller gives, the per-evaluation context, a model's outcome and how it becomes a
 * result, feature extraction with progress, and PCA pictures.
 */
import type { EvalDetails } from './details.js';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { RawImage } from '../data/dataset.js';
import { IMAGENET_MEAN, IMAGENET_STD, renderImage } from '../data/transforms.js';
import type { EvalTransform, Features, ImageSource } from '../features/extract.js';
import { evalBox, extractFeatures, fillStore, openStoreFor } from '../features/extract.js';
import { storeRows } from '../features/store.js';
import type { PatchRows } from '../segmentation/out-of-core.js';
import { arrayRows } from '../segmentation/out-of-core.js';
import type { FeatureModel } from '../features/models.js';
import { backendInfo, WASM_HEAP_BYTES, WASM_HEAP_RESERVE } from '../runtime/backend.js';
import type { EvalConfig } from './config.js';
import { EXECUTION_FIELDS, protocolHash } from './config.js';
import type { MetricNotes, MetricQualities, Metrics } from './metrics.js';
import type { EvalResult } from './result.js';
import { EVAL_PROTOCOL } from './result.js';
import { TASKS } from './tasks.js';
import { shellCommand } from '../runtime/shell.js';
import { codeVersion } from '../runtime/version.js';
import { withWasmHeap } from '../runtime/wasm-oom.js';

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
  /** `initial`: units already done before this call (a resumed run), left out of the rate behind the ETA. */
  progress(label: string, total: number, initial?: number): Progress;
  /** Writes a PCA picture; returns its file. */
  savePca?(picture: PcaPicture): Promise<string>;
  /** Each model's result as soon as it is done. */
  onResult?(result: EvalResult): void;
  /** Leave out a model (by its row name) whose result already exists (a resumed study). */
  skipModel?(name: string): boolean;
  /** The command recorded with every result (default: this process's `npm run eval -- ...`). */
  command?: string;
  /** This process as one task of a Slurm array (stages extract and grid): its index, the array's size, preemption. */
  share?: TaskShare;
}

export interface TaskShare {
  task: number;
  tasks: number;
  /** True once the job was told to make way (USR1): stop after the current unit. */
  preempted(): boolean;
}

/** Whether a unit (by name) is this task's: a stable hash of its name, round-robin over the tasks. */
export function ownsUnit(share: TaskShare, name: string): boolean {
  let h = 2166136261;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619);
  return (h >>> 0) % share.tasks === share.task;
}

/**
 * Where a model's units of dense work are kept for the tasks of one Slurm evaluation: under the
 * output folder, by what defines the work (the config but how it is run) and the model.
 */
export function unitsDir(cfg: EvalConfig, modelKey: string): string {
  const defining = Object.fromEntries(
    Object.entries(cfg).filter(
      ([k]) => !(EXECUTION_FIELDS as readonly string[]).includes(k) && !['name', 'out', 'overwrite', 'takeOver', 'pcaImages'].includes(k),
    ),
  );
  const hash = (x: string) => createHash('sha256').update(x).digest('hex').slice(0, 16);
  return path.join(cfg.out, cfg.task, '.work', hash(JSON.stringify(defining)), hash(modelKey));
}

/** Decoded images kept in memory between models, per split, at most this many bytes (else re-decoded). */
export const IMAGE_MEMO_BYTES = 2 ** 30;

/** The largest feature batch <= 64 whose estimated one-block activations fit this budget. */
const FEATURE_ACTIVATION_BUDGET = 2 ** 29;

export function featureBatch(cfg: Pick<EvalConfig, 'featureBatch'>, model: FeatureModel, size: number): number {
  if (cfg.featureBatch > 0) return cfg.featureBatch;
  return Math.max(1, Math.min(64, Math.floor(FEATURE_ACTIVATION_BUDGET / model.activationBytesPerImage(size))));
}

/**
 * A forced --feature-batch must fit the wasm heap next to the weights already loaded (`liveBytes`);
 * past the heap the threaded build hangs instead of failing, so refuse it in one line.
 */
export function checkFeatureBatch(batch: number, model: FeatureModel, size: number, liveBytes: number, heapBytes = WASM_HEAP_BYTES): void {
  const perImage = model.activationBytesPerImage(size);
  const budget = heapBytes * (1 - WASM_HEAP_RESERVE) - liveBytes;
  if (batch * perImage <= budget) return;
  const gib = (x: number) => (x / 2 ** 30).toFixed(1);
  throw new Error(
    `--feature-batch ${batch} needs about ${gib(batch * perImage + liveBytes)} GiB of the wasm backend's ${gib(heapBytes)} GiB heap ` +
      `(${(perImage / 2 ** 20).toFixed(0)} MiB per image at ${size} px, estimated, beside ${gib(liveBytes)} GiB of weights): ` +
      `use at most ${Math.max(1, Math.floor(budget / perImage))}, or 0 (automatic)`,
  );
}

export const limit = <T extends { size: number }>(d: T, n: number): T => (n > 0 && n < d.size ? { ...d, size: n } : d);

/** The default row name: the checkpoint's folder or file name (+ '-student'). */
export function defaultModelName(cfg: Pick<EvalConfig, 'checkpoint' | 'weights'>): string {
  const base = path.basename(cfg.checkpoint.replace(/[/\\]+$/, '')).replace(/\.(pth|pt|safetensors)$/, '');
  return cfg.weights === 'student' ? `${base}-student` : base;
}

/** Everything of a model's evaluation that goes into its result. */
export interface Outcome {
  metrics: Metrics;
  notes: MetricNotes;
  quality: MetricQualities;
  details: EvalDetails;
  seconds: Record<string, number>;
}

export const newOutcome = (): Outcome => ({ metrics: {}, notes: {}, quality: {}, details: {}, seconds: {} });

/** Where a row comes from: a model (capi, baseline) or a task reference. */
export interface RowSource {
  kind: EvalResult['kind'];
  source: string;
}

export interface Context {
  cfg: EvalConfig;
  hooks: EvalHooks;
  size: number;
  probes: readonly EvalConfig['probes'][number][];
}

export function toResult(ctx: Context, name: string, model: FeatureModel | undefined, entry: RowSource, o: Outcome): EvalResult {
  const { cfg, size } = ctx;
  const { backend, threads } = cfg;
  const rest = Object.fromEntries(Object.entries(cfg).filter(([k]) => !(EXECUTION_FIELDS as readonly string[]).includes(k)));
  const segmentation = TASKS[cfg.task].kind === 'segmentation';
  return {
    task: cfg.task,
    protocol: EVAL_PROTOCOL,
    protocolHash: protocolHash(cfg),
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
    code: codeVersion(),
    seconds: o.seconds,
    command: ctx.hooks.command ?? shellCommand(['npm', 'run', 'eval', '--', ...process.argv.slice(2)]),
    createdAt: new Date().toISOString(),
  };
}

export async function features(
  ctx: Context,
  model: FeatureModel,
  src: ImageSource,
  transform: EvalTransform,
  label: string,
  patchStride = 1,
): Promise<Features> {
  const { cfg, hooks, size } = ctx;
  if (cfg.featureBatch > 0 && backendInfo().backend === 'wasm') checkFeatureBatch(cfg.featureBatch, model, size, tf.memory().numBytes);
  let bar: Progress | undefined;
  const batch = featureBatch(cfg, model, size);
  const f = await withWasmHeap(`extracting ${label} features at ${batch} images a batch`, 'lower --feature-batch', () =>
    extractFeatures(model, src, {
      size,
      transform,
      patchStride,
      batchSize: batch,
      cacheDir: cfg.cacheDir,
      maxBytes: cfg.maxFeatureGb * 2 ** 30,
      shardImages: cfg.shardImages || undefined,
      log: hooks.log,
      onProgress: (done, total) => {
        bar ??= hooks.progress(`${label} features`, total);
        bar.update(done);
      },
    }),
  );
  if (f.fromCache) hooks.log(`${label} features: from cache`);
  return f;
}

/**
 * A model's patch rows of a split as a stream of blocks (the out-of-core dense protocol): from the
 * feature store (filled first, shard by shard), or from an in-memory extraction without one.
 */
export async function featureRows(
  ctx: Context,
  model: FeatureModel,
  src: ImageSource,
  transform: EvalTransform,
  label: string,
  patchStride = 1,
): Promise<{ source: PatchRows; seconds: number }> {
  const { cfg, hooks, size } = ctx;
  if (!cfg.cacheDir) {
    const f = await features(ctx, model, src, transform, label, patchStride);
    return { source: arrayRows(f.patch, f.patchDim), seconds: f.seconds };
  }
  const t0 = performance.now();
  const grid = Math.floor(size / model.patchSize);
  const opts = { size, transform, cacheDir: cfg.cacheDir, shardImages: cfg.shardImages || undefined };
  const store = openStoreFor(model, src, opts, grid * grid, grid);
  let bar: Progress | undefined;
  const extracted = await fillStore(model, src, store, {
    ...opts,
    batchSize: featureBatch(cfg, model, size),
    log: hooks.log,
    onProgress: (done, total) => {
      bar ??= hooks.progress(`${label} features`, total);
      bar.update(done);
    },
  });
  if (!extracted) hooks.log(`${label} features: from the store ${store.dir}`);
  return { source: storeRows(store, patchStride), seconds: (performance.now() - t0) / 1000 };
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

export async function pcaPictures(
  ctx: Context,
  model: FeatureModel,
  src: ImageSource,
  f: Features,
  transform: EvalTransform,
): Promise<string[]> {
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

export type ModelRunner = (model: FeatureModel) => Promise<Outcome>;
