/**
 * Feature extraction: the training-patch stride (eval spec 3.3, `train_set_subsampling`) keeps
 * exactly every k-th patch row of the full extraction, streamed (the budget applies to what is
 * kept), with matching pixel labels; the cache keys on the stride. Augmented features (reference
 * mode) are redrawn per call and reproducible from the seed.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadFashionMnist } from '../../src/data/fashion-mnist.js';
import { fmnistScenes, SCENES_DEFAULTS } from '../../src/data/fmnist-scenes.js';
import type { ImageSource } from '../../src/features/extract.js';
import { extractFeatures } from '../../src/features/extract.js';
import { augmentedFeatures } from '../../src/features/augmented.js';
import { pixelFeatureModel } from '../../src/features/models.js';
import { patchLabels } from '../../src/segmentation/patches.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'capi-extract-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const scenes = fmnistScenes(loadFashionMnist(path.resolve('data/fmnist-slice'), 'train'), 'train', {
  ...SCENES_DEFAULTS,
  count: 5,
  seed: 3,
});
const images: ImageSource = { description: scenes.description, size: scenes.size, load: async (i) => (await scenes.load(i)).image };
const model = pixelFeatureModel(8);
const size = 56; // 7 x 7 = 49 patches per image, 192 dims
const opts = { size, transform: 'resize' as const, batchSize: 2, cacheDir: '', maxBytes: 2 ** 30 };

describe('training-patch stride', () => {
  it('keeps rows r with r % k == 0 of the full extraction, and their pixel labels', async () => {
    const full = await extractFeatures(model, images, opts);
    const k = 3; // does not divide 49, so the kept tokens differ from image to image
    const sub = await extractFeatures(model, images, { ...opts, patchStride: k });
    const d = full.patchDim;
    const rows = full.n * full.tokens;
    expect(sub.patch.length / d).toBe(Math.ceil(rows / k));
    for (let j = 0; j * k < rows; j++) {
      expect(sub.patch.subarray(j * d, (j + 1) * d)).toEqual(full.patch.subarray(j * k * d, (j * k + 1) * d));
    }
    expect(sub.avg).toEqual(full.avg); // averages use every token, whatever is kept
    expect(sub.global).toEqual(full.global);

    const label = async (i: number) => (await scenes.load(i)).label;
    const fullSet = await patchLabels(scenes.size, label, size, 8);
    const subSet = await patchLabels(scenes.size, label, size, 8, k);
    expect(subSet.pixels.length / 64).toBe(sub.patch.length / d);
    const pp = 64;
    for (let j = 0; j * k < rows; j++) {
      expect(subSet.pixels.subarray(j * pp, (j + 1) * pp)).toEqual(fullSet.pixels.subarray(j * k * pp, (j * k + 1) * pp));
      expect(subSet.rowImage[j]).toBe(Math.floor((j * k) / full.tokens));
    }
    expect(fullSet.rowImage[rows - 1]).toBe(full.n - 1);
  });

  it('applies the memory budget to the kept rows only, and says how to subsample', async () => {
    const rowBytes = 192 * 4;
    const maxBytes = Math.ceil((5 * 49) / 4) * rowBytes; // fits with stride 4, not with stride 1
    await expect(extractFeatures(model, images, { ...opts, maxBytes })).rejects.toThrow(/--train-patch-stride/);
    const sub = await extractFeatures(model, images, { ...opts, maxBytes, patchStride: 4 });
    expect(sub.patch.length).toBe(maxBytes / 4);
  });

  it('one store serves every stride: the rows are extracted once, the stride applied when they are read', async () => {
    const cacheDir = path.join(tmp, 'cache');
    const a = await extractFeatures(model, images, { ...opts, cacheDir, patchStride: 2 });
    const b = await extractFeatures(model, images, { ...opts, cacheDir, patchStride: 2 });
    const c = await extractFeatures(model, images, { ...opts, cacheDir });
    expect([a.fromCache, b.fromCache, c.fromCache]).toEqual([false, true, true]);
    expect(b.patch).toEqual(a.patch);
    expect(b.avg).toEqual(a.avg);
    expect(c.patch.length).toBe(2 * a.patch.length - 192); // 245 rows vs ceil(245 / 2) = 123
    expect(c).toMatchObject({ patch: (await extractFeatures(model, images, opts)).patch });
  });
});

describe('augmented features (reference-mode probes)', () => {
  it('draw a new crop and flip per call, reproducibly from the seed, with consistent pooling', async () => {
    const idx = Int32Array.from([0, 3, 1]);
    const a = augmentedFeatures(model, images, size, { seed: 1, batchSize: 2 });
    const b = augmentedFeatures(model, images, size, { seed: 1, batchSize: 3 });
    const first = await a(idx);
    const again = await a(idx);
    expect(first.patch.length).toBe(3 * 49 * 192);
    expect(again.patch).not.toEqual(first.patch); // a new augmentation at every step
    expect((await b(idx)).patch).toEqual(first.patch); // same seed, same draws, whatever the chunking
    const full = await extractFeatures(model, images, opts);
    expect(first.patch.subarray(0, 192)).not.toEqual(full.patch.subarray(0, 192)); // not the eval transform
    for (let j = 0; j < 192; j++) {
      let mean = 0;
      for (let t = 0; t < 49; t++) mean += first.patch[t * 192 + j] / 49;
      expect(first.avg[j]).toBeCloseTo(mean, 5);
    }
  });
});
