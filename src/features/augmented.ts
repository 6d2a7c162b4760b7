/**
 * Features of augmented training images, recomputed for every batch (the reference mode of the
 * probes, eval spec 1.4): RandomResizedCrop(scale 0.08-1, ratio 3/4-4/3) + horizontal flip
 * (p 0.5), then one frozen forward in chunks of `batchSize` images.
 */
import type { ImageDataset } from '../data/dataset.js';
import { randomResizedCropFlip, renderImage } from '../data/transforms.js';
import { Rng, STREAM } from '../runtime/rng.js';
import { averagePatches } from './extract.js';
import type { FeatureModel } from './models.js';

export interface AugmentedBatch {
  /** [B * N, D] */
  patch: Float32Array;
  /** [B, D]: mean of the patch tokens */
  avg: Float32Array;
  /** [B, D_g] */
  global: Float32Array;
}

export function augmentedFeatures(
  model: FeatureModel,
  images: ImageDataset,
  size: number,
  opts: { seed: number; batchSize: number },
): (indices: Int32Array) => Promise<AugmentedBatch> {
  const rng = Rng.derive(opts.seed, STREAM.probeAugment);
  const plane = 3 * size * size;
  const g = Math.floor(size / model.patchSize),
    t = g * g,
    d = model.patchDim;
  return async (idx) => {
    const n = idx.length;
    const patch = new Float32Array(n * t * d);
    const global = new Float32Array(n * model.globalDim);
    for (let s = 0; s < n; s += opts.batchSize) {
      const b = Math.min(opts.batchSize, n - s);
      const pixels = new Float32Array(b * plane);
      for (let i = 0; i < b; i++) {
        const img = await images.load(idx[s + i]);
        renderImage(img, randomResizedCropFlip(rng, img, size, [0.08, 1], 0.5), pixels, i * plane);
      }
      const out = await model.forward(pixels, b, size);
      patch.set(out.patch, s * t * d);
      global.set(out.global, s * model.globalDim);
    }
    return { patch, avg: averagePatches(patch, n, t, d), global };
  };
}
