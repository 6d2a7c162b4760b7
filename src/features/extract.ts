/**
 * Feature extraction, once per (model, dataset, split, resolution, transform), kept in the sharded store
 * (DINOv2's eval split: features extracted once, then many cheap classifiers). Batched, with
 * progress. Features that would exceed the memory budget raise an error that says how to
 * subsample (a patch stride, fewer images), instead of being cut silently.
 */
import type { RawImage } from '../data/dataset.js';
import type { CropBox } from '../data/transforms.js';
import { centerCropBox, renderImage } from '../data/transforms.js';
import { runningMs } from '../runtime/clock.js';
import type { FeatureModel } from './models.js';
import type { FeatureStore } from './store.js';
import { defaultShardImages, openFeatureStore, requireShard, shardBuffer, shardRange, shardsToExtract, writeShard } from './store.js';

/** 'resize': squash to S x S (segmentation, small images); 'center-crop': the 256 -> 224 crop of classification. */
export type EvalTransform = 'resize' | 'center-crop';

export interface ImageSource {
  description: string;
  size: number;
  load(index: number): Promise<RawImage>;
}

export interface Features {
  n: number;
  /** Patch tokens per image. */
  tokens: number;
  grid: number;
  patchDim: number;
  globalDim: number;
  /** Kept patch rows: those with (image * tokens + token) % patchStride == 0. */
  patchStride: number;
  /** [ceil(n * tokens / patchStride), patchDim] */
  patch: Float32Array;
  /** [n, globalDim] */
  global: Float32Array;
  /** [n, patchDim]: mean of all the image's patch tokens (before any stride). */
  avg: Float32Array;
  fromCache: boolean;
  seconds: number;
}

export interface ExtractOptions {
  size: number;
  transform: EvalTransform;
  batchSize: number;
  /** Keep every k-th patch row (the reference's `train_set_subsampling`, eval spec 3.3); 1 keeps all. */
  patchStride?: number;
  /** Folder of the cache; '' disables it. */
  cacheDir: string;
  /** Largest patch-feature array allowed in memory, in bytes. */
  maxBytes: number;
  onProgress?: (done: number, total: number) => void;
  /** Images a store shard (default: about 256 MiB of patch features); not part of the store's key. */
  shardImages?: number;
  /** Only the shards this says (a Slurm array task's share); default all. */
  shards?: (shard: number) => boolean;
  /** Asked between shards: true stops the extraction there (Slurm preemption); the shards done are kept. */
  preempted?: () => boolean;
  /** Damaged or foreign shards found (and extracted again) are said here. */
  log?: (line: string) => void;
}

export function evalBox(img: RawImage, transform: EvalTransform): CropBox {
  return transform === 'center-crop'
    ? centerCropBox(img.height, img.width, 224 / 256)
    : { top: 0, left: 0, height: img.height, width: img.width };
}

export function averagePatches(patch: Float32Array, n: number, tokens: number, d: number): Float32Array {
  const avg = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    for (let t = 0; t < tokens; t++) {
      const row = (i * tokens + t) * d;
      for (let j = 0; j < d; j++) avg[i * d + j] += patch[row + j] / tokens;
    }
  }
  return avg;
}

/** One shard's (or one in-memory extraction's) images through the model: all patch rows, the global and average vectors. */
async function extractRange(
  model: FeatureModel,
  data: ImageSource,
  first: number,
  count: number,
  opts: Pick<ExtractOptions, 'size' | 'transform' | 'batchSize'>,
  tokens: number,
  onBatch: (done: number) => void,
  keep: (row: number) => boolean = () => true,
): Promise<{ patch: Float32Array; global: Float32Array; avg: Float32Array; kept: number }> {
  const d = model.patchDim;
  const s = opts.size;
  let kept = 0;
  for (let r = first * tokens; r < (first + count) * tokens; r++) if (keep(r)) kept++;
  const patch = new Float32Array(kept * d);
  const global = new Float32Array(count * model.globalDim);
  const avg = new Float32Array(count * d);
  let row = 0;
  for (let start = 0; start < count; start += opts.batchSize) {
    const b = Math.min(opts.batchSize, count - start);
    const pixels = new Float32Array(b * 3 * s * s);
    for (let i = 0; i < b; i++) {
      const img = await data.load(first + start + i);
      renderImage(img, { size: s, box: evalBox(img, opts.transform), flip: false }, pixels, i * 3 * s * s);
    }
    const out = await model.forward(pixels, b, s);
    global.set(out.global, start * model.globalDim);
    avg.set(averagePatches(out.patch, b, tokens, d), start * d);
    const r0 = (first + start) * tokens;
    for (let t = 0; t < b * tokens; t++) {
      if (!keep(r0 + t)) continue;
      patch.set(out.patch.subarray(t * d, (t + 1) * d), row * d);
      row++;
    }
    onBatch(start + b);
  }
  return { patch, global, avg, kept };
}

/**
 * Features of every image of `data`. With a cache folder they go through the sharded store
 * (src/features/store.ts): missing or damaged shards are extracted (a killed extraction continues
 * where it stopped), then the kept rows are read back; without one, they are extracted straight
 * into memory. With a patch stride only rows r with r % stride == 0 are kept, and the memory
 * budget applies to what is kept.
 */
export async function extractFeatures(model: FeatureModel, data: ImageSource, opts: ExtractOptions): Promise<Features> {
  const t0 = runningMs();
  const stride = opts.patchStride ?? 1;
  if (!Number.isInteger(stride) || stride < 1) throw new Error(`patch stride must be a positive integer (got ${stride})`);
  const grid = Math.floor(opts.size / model.patchSize);
  const tokens = grid * grid;
  const n = data.size;
  const d = model.patchDim;
  const kept = Math.ceil((n * tokens) / stride); // rows r with r % stride == 0
  const bytes = kept * d * 4;
  if (bytes > opts.maxBytes) {
    throw new Error(
      `patch features of ${data.description} need ${(bytes / 2 ** 30).toFixed(1)} GiB (${kept} patch rows x ${d}) ` +
        `over the ${(opts.maxBytes / 2 ** 30).toFixed(1)} GiB budget: raise --max-feature-gb, keep every k-th training patch ` +
        `with --train-patch-stride (segmentation) or evaluate fewer images with --limit-train/--limit-test`,
    );
  }
  const keep = (r: number) => r % stride === 0;
  const result = (patch: Float32Array, global: Float32Array, avg: Float32Array, fromCache: boolean): Features => ({
    n,
    tokens,
    grid,
    patchDim: d,
    globalDim: model.globalDim,
    patchStride: stride,
    patch,
    global,
    avg,
    fromCache,
    seconds: (runningMs() - t0) / 1000,
  });
  if (!opts.cacheDir) {
    const f = await extractRange(model, data, 0, n, opts, tokens, (done) => opts.onProgress?.(done, n), keep);
    return result(f.patch, f.global, f.avg, false);
  }
  const store = openStoreFor(model, data, opts, tokens, grid);
  const extracted = await fillStore(model, data, store, opts);
  const patch = new Float32Array(kept * d);
  const global = new Float32Array(n * model.globalDim);
  const avg = new Float32Array(n * d);
  let row = 0;
  const buffer = shardBuffer();
  for (let i = 0; i < store.shards; i++) {
    const sh = requireShard(store, i, buffer);
    global.set(sh.global, sh.first * model.globalDim);
    avg.set(sh.avg, sh.first * d);
    const r0 = sh.first * tokens;
    if (stride === 1) patch.set(sh.patch, r0 * d);
    else
      for (let t = 0; t < sh.count * tokens; t++) {
        if (!keep(r0 + t)) continue;
        patch.set(sh.patch.subarray(t * d, (t + 1) * d), row * d);
        row++;
      }
  }
  return result(patch, global, avg, extracted === 0);
}

/** The store of `model`'s features of `data` at these settings, under `opts.cacheDir`. */
export function openStoreFor(
  model: FeatureModel,
  data: ImageSource,
  opts: Pick<ExtractOptions, 'cacheDir' | 'size' | 'transform' | 'shardImages'>,
  tokens: number,
  grid: number,
): FeatureStore {
  return openFeatureStore(opts.cacheDir, {
    model: model.key,
    dataset: data.description,
    images: data.size,
    size: opts.size,
    transform: opts.transform,
    tokens,
    grid,
    patchDim: model.patchDim,
    globalDim: model.globalDim,
    dtype: 'float32',
    shardImages: opts.shardImages ?? defaultShardImages(tokens, model.patchDim),
  });
}

/**
 * Extracts the store's missing or damaged shards (those `opts.shards` selects, default all), each
 * written atomically as it is done; returns how many were extracted.
 */
export async function fillStore(
  model: FeatureModel,
  data: ImageSource,
  store: FeatureStore,
  opts: Pick<ExtractOptions, 'size' | 'transform' | 'batchSize' | 'onProgress' | 'log' | 'shards' | 'preempted'>,
): Promise<number> {
  const todo = shardsToExtract(store, opts.shards ?? (() => true), opts.log ?? (() => {}));
  const images = todo.reduce((a, i) => a + shardRange(store, i).count, 0);
  let done = 0;
  for (const i of todo) {
    if (opts.preempted?.()) break;
    const { first, count } = shardRange(store, i);
    const f = await extractRange(model, data, first, count, opts, store.manifest.tokens, (k) => opts.onProgress?.(done + k, images));
    writeShard(store, i, f.patch, f.global, f.avg);
    done += count;
  }
  return todo.length;
}
