/**
 * Feature extraction, once per (model, dataset, split, resolution, transform), cached on disk
 * (DINOv2's eval split: features extracted once, then many cheap classifiers). Batched, with
 * progress. Features that would exceed the memory budget raise an error that says how to
 * subsample, instead of being cut silently.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RawImage } from '../data/dataset.js';
import type { CropBox } from '../data/transforms.js';
import { centerCropBox, renderImage } from '../data/transforms.js';
import { readSafetensors, writeSafetensors } from '../model/io/safetensors.js';
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
  /** [n * tokens, patchDim] */
  patch: Float32Array;
  /** [n, globalDim] */
  global: Float32Array;
  /** [n, patchDim]: mean of the patch tokens. */
  avg: Float32Array;
  fromCache: boolean;
  seconds: number;
}

export interface ExtractOptions {
  size: number;
  transform: EvalTransform;
  batchSize: number;
  /** Folder of the cache; '' disables it. */
  cacheDir: string;
  /** Largest patch-feature array allowed in memory, in bytes. */
  maxBytes: number;
  onProgress?: (done: number, total: number) => void;
}

export function evalBox(img: RawImage, transform: EvalTransform): CropBox {
  return transform === 'center-crop' ? centerCropBox(img.height, img.width, 224 / 256) : { top: 0, left: 0, height: img.height, width: img.width };
}

function averagePatches(patch: Float32Array, n: number, tokens: number, d: number): Float32Array {
  const avg = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    for (let t = 0; t < tokens; t++) {
      const row = (i * tokens + t) * d;
      for (let j = 0; j < d; j++) avg[i * d + j] += patch[row + j] / tokens;
    }
  }
  return avg;
}

export async function extractFeatures(model: FeatureModel, data: ImageSource, opts: ExtractOptions): Promise<Features> {
  const t0 = performance.now();
  const grid = Math.floor(opts.size / model.patchSize);
  const tokens = grid * grid;
  const n = data.size;
  const bytes = n * tokens * model.patchDim * 4;
  if (bytes > opts.maxBytes) {
    throw new Error(
      `patch features of ${data.description} need ${(bytes / 2 ** 30).toFixed(1)} GiB (${n} images x ${tokens} patches x ${model.patchDim}) ` +
        `over the ${(opts.maxBytes / 2 ** 30).toFixed(1)} GiB budget: raise --max-feature-gb or evaluate fewer images with --limit`,
    );
  }
  const key = createHash('sha256').update(JSON.stringify([model.key, data.description, n, opts.size, opts.transform])).digest('hex').slice(0, 24);
  const file = opts.cacheDir ? path.join(opts.cacheDir, `${key}.safetensors`) : '';
  if (file && fs.existsSync(file)) {
    const { tensors } = readSafetensors(file);
    const patch = tensors.get('patch')!.data as Float32Array;
    const global = tensors.get('global')!.data as Float32Array;
    return {
      n, tokens, grid, patchDim: model.patchDim, globalDim: model.globalDim, patch, global,
      avg: averagePatches(patch, n, tokens, model.patchDim), fromCache: true, seconds: (performance.now() - t0) / 1000,
    };
  }
  const patch = new Float32Array(n * tokens * model.patchDim);
  const global = new Float32Array(n * model.globalDim);
  const s = opts.size;
  for (let start = 0; start < n; start += opts.batchSize) {
    const b = Math.min(opts.batchSize, n - start);
    const pixels = new Float32Array(b * 3 * s * s);
    for (let i = 0; i < b; i++) {
      const img = await data.load(start + i);
      renderImage(img, { size: s, box: evalBox(img, opts.transform), flip: false }, pixels, i * 3 * s * s);
    }
    const out = model.forward(pixels, b, s);
    patch.set(out.patch, start * tokens * model.patchDim);
    global.set(out.global, start * model.globalDim);
    opts.onProgress?.(start + b, n);
  }
  if (file) {
    fs.mkdirSync(opts.cacheDir, { recursive: true });
    writeSafetensors(file, new Map([
      ['patch', { shape: [n * tokens, model.patchDim], data: patch }],
      ['global', { shape: [n, model.globalDim], data: global }],
    ]), { model: model.key, dataset: data.description, size: String(s), transform: opts.transform });
  }
  return {
    n, tokens, grid, patchDim: model.patchDim, globalDim: model.globalDim, patch, global,
    avg: averagePatches(patch, n, tokens, model.patchDim), fromCache: false, seconds: (performance.now() - t0) / 1000,
  };
}
