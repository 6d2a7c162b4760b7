/**
 * A segmentation split as patch rows (eval spec 3.1, 3.3): the extracted patch features with the
 * p x p pixel labels each patch covers, at the evaluation resolution.
 */
import type { SegmentationDataset } from '../data/segmentation-datasets.js';
import type { Features } from '../features/extract.js';
import { patchPixelLabels } from './patches.js';
import type { PatchSet } from './task.js';

/** Nearest-neighbour resize of a label map to s x s (torch 'nearest': src = floor(dst * in / out)). */
export function resizeLabels(data: Uint8Array, h: number, w: number, s: number): Int32Array {
  const out = new Int32Array(s * s);
  for (let y = 0; y < s; y++) {
    const sy = Math.min(h - 1, Math.floor((y * h) / s));
    for (let x = 0; x < s; x++) out[y * s + x] = data[sy * w + Math.min(w - 1, Math.floor((x * w) / s))];
  }
  return out;
}

/** Pixel labels of the kept patch rows of `feats` (all rows, or every k-th with a patch stride). */
export async function patchSet(ds: SegmentationDataset, feats: Features, size: number, p: number): Promise<PatchSet> {
  const t = feats.tokens, k = feats.patchStride, pp = p * p;
  const rows = feats.patch.length / feats.patchDim;
  const pixels = new Int32Array(rows * pp);
  const rowImage = new Int32Array(rows);
  for (let i = 0; i < ds.size; i++) {
    const { label } = await ds.load(i);
    const perPatch = patchPixelLabels(resizeLabels(label.data, label.height, label.width, size), 1, size, size, p); // [T, p*p]
    for (let r = Math.ceil((i * t) / k) * k; r < (i + 1) * t; r += k) {
      pixels.set(perPatch.subarray((r - i * t) * pp, (r - i * t + 1) * pp), (r / k) * pp);
      rowImage[r / k] = i;
    }
  }
  return { feats: feats.patch, pixels, rowImage, images: ds.size };
}
