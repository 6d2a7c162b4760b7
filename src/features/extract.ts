/**
 * Feature extraction, once per (model, dataset, split, resolution, transform), cached on disk
 * (DINOv2's eval split: features extracted once, then many cheap classifiers). Batched, with
 * progress. Features that would exceed the memory budget raise an error that says how to
 * subsample (a patch stride, fewer images), instead of being cut silently.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RawImage } from '../data/dataset.js';
import type { CropBox } from '../data/transforms.js';
import { centerCropBox, renderImage } from '../data/transforms.js';
import { readSafetensors, writeSafetensors } from '../model/io/safetensors.js';
import { removeStaleTempFiles, makeDirs } from '../runtime/atomic.js';
import type { FeatureModel } from './models.js';

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

/**
 * Features of every image of `data`, streamed batch by batch into preallocated arrays; with a
 * patch stride only the kept rows are ever stored, so the budget applies to what is kept.
 */
export async function extractFeatures(model: FeatureModel, data: ImageSource, opts: ExtractOptions): Promise<Features> {
  const t0 = performance.now();
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
  const key = createHash('sha256')
    .update(JSON.stringify(['v2', model.key, data.description, n, opts.size, opts.transform, stride]))
    .digest('hex')
    .slice(0, 24);
  const file = opts.cacheDir ? path.join(opts.cacheDir, `${key}.safetensors`) : '';
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
    seconds: (performance.now() - t0) / 1000,
  });
  if (opts.cacheDir) removeStaleTempFiles(opts.cacheDir);
  if (file && fs.existsSync(file)) {
    const { tensors } = readSafetensors(file);
    const get = (name: string) => tensors.get(name)!.data as Float32Array;
    return result(get('patch'), get('global'), get('avg'), true);
  }
  const patch = new Float32Array(kept * d);
  const global = new Float32Array(n * model.globalDim);
  const avg = new Float32Array(n * d);
  const s = opts.size;
  for (let start = 0; start < n; start += opts.batchSize) {
    const b = Math.min(opts.batchSize, n - start);
    const pixels = new Float32Array(b * 3 * s * s);
    for (let i = 0; i < b; i++) {
      const img = await data.load(start + i);
      renderImage(img, { size: s, box: evalBox(img, opts.transform), flip: false }, pixels, i * 3 * s * s);
    }
    const out = model.forward(pixels, b, s);
    global.set(out.global, start * model.globalDim);
    avg.set(averagePatches(out.patch, b, tokens, d), start * d);
    const first = start * tokens;
    if (stride === 1) patch.set(out.patch, first * d);
    else {
      for (let r = Math.ceil(first / stride) * stride; r < first + b * tokens; r += stride) {
        patch.set(out.patch.subarray((r - first) * d, (r - first + 1) * d), (r / stride) * d);
      }
    }
    opts.onProgress?.(start + b, n);
  }
  if (file) {
    makeDirs(opts.cacheDir);
    writeSafetensors(
      file,
      new Map([
        ['patch', { shape: [kept, d], data: patch }],
        ['global', { shape: [n, model.globalDim], data: global }],
        ['avg', { shape: [n, d], data: avg }],
      ]),
      { model: model.key, dataset: data.description, size: String(s), transform: opts.transform, patchStride: String(stride) },
    );
  }
  return result(patch, global, avg, false);
}
