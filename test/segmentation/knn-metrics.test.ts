/** Exact k-NN vs brute force, pixel voting, mIoU/accuracy by hand, train-only standardisation. */
import { describe, expect, it } from 'vitest';
import { knnSearch, knnVotePatches, knnVotePixels } from '../../src/features/knn.js';
import { bootstrapMIoU, denseReferences, imageResampler, foregroundIoU, segmentationScores } from '../../src/segmentation/metrics.js';
import { patchModes, patchPixelLabels, unpatchLabels } from '../../src/segmentation/patches.js';
import { applyStandardizer, fitStandardizer } from '../../src/segmentation/standardize.js';
import { Rng } from '../../src/runtime/rng.js';

function brute(base: Float32Array, n: number, q: Float32Array, dim: number, k: number, metric: 'l2' | 'cosine'): number[] {
  const d = Array.from({ length: n }, (_, i) => {
    let dot = 0,
      nb = 0,
      nq = 0,
      l2 = 0;
    for (let j = 0; j < dim; j++) {
      const a = base[i * dim + j],
        b = q[j];
      dot += a * b;
      nb += a * a;
      nq += b * b;
      l2 += (a - b) ** 2;
    }
    return metric === 'l2' ? l2 : 1 - dot / Math.sqrt(nb * nq);
  });
  return d
    .map((v, i) => [v, i] as const)
    .sort((a, b) => a[0] - b[0])
    .slice(0, k)
    .map(([, i]) => i);
}

describe('exact k-NN', () => {
  it('equals a brute-force loop for L2 and cosine, across chunk boundaries', async () => {
    const rng = new Rng(1);
    const n = 300,
      m = 40,
      dim = 7;
    const base = Float32Array.from({ length: n * dim }, () => rng.normal());
    const queries = Float32Array.from({ length: m * dim }, () => rng.normal());
    for (const metric of ['l2', 'cosine'] as const) {
      const res = await knnSearch(base, queries, dim, 10, metric, { queryChunk: 16, baseChunk: 64 });
      for (let q = 0; q < m; q++) {
        const got = Array.from(res.indices.subarray(q * 10, q * 10 + 10));
        expect(got).toEqual(brute(base, n, queries.subarray(q * dim, (q + 1) * dim), dim, 10, metric));
      }
    }
  });

  it('pixel voting takes the per-pixel majority of the neighbours, ties to the smallest label', async () => {
    // Three neighbours with 2-pixel label vectors: [1,5], [2,5], [2,3]
    const pixelLabels = Int32Array.from([1, 5, 2, 5, 2, 3, 9, 9]);
    const res = { indices: Int32Array.from([0, 1, 2]), scores: new Float32Array(3), k: 3 };
    expect(Array.from(knnVotePixels(res, 3, pixelLabels, 2, 10))).toEqual([2, 5]);
    // k = 2: [1,5],[2,5] -> pixel 0 tie between 1 and 2 -> 1
    expect(Array.from(knnVotePixels(res, 2, pixelLabels, 2, 10))).toEqual([1, 5]);
  });

  it("patch voting: the majority of the neighbours' patch labels for all of the query's pixels (ties -> smallest)", async () => {
    // Two queries with 3 neighbours each among 4 base patches labeled [4, 2, 4, 7].
    const patchLabels = Int32Array.from([4, 2, 4, 7]);
    const res = { indices: Int32Array.from([0, 1, 2, 3, 1, 0]), scores: new Float32Array(6), k: 3 };
    // Query 0: labels 4, 2, 4 -> 4. Query 1: labels 7, 2, 4 -> a three-way tie -> 2.
    expect(Array.from(knnVotePatches(res, 3, patchLabels, 2, 10))).toEqual([4, 4, 2, 2]);
    // k = 1: the nearest neighbour's label.
    expect(Array.from(knnVotePatches(res, 1, patchLabels, 2, 10))).toEqual([4, 4, 7, 7]);
    // Pixel voting on the same neighbours copies their layouts: pixel 1 of both queries is 9,
    // the label neighbours 0 and 1 share there, where patch voting gives each query one label.
    const layouts = Int32Array.from([4, 9, 2, 9, 4, 4, 7, 7]);
    expect(Array.from(knnVotePixels(res, 3, layouts, 2, 10))).toEqual([4, 9, 2, 9]);
  });
});

describe('segmentation metrics', () => {
  it('mIoU and pixel accuracy by hand, with ignored labels and a predicted-only class', async () => {
    const gt = [1, 1, 2, 2, 0, 255, 3, 3];
    const pred = [1, 2, 2, 2, 1, 1, 3, 4];
    // Ignored: gt 0 and 255. Kept pixels: (1,1) (1,2) (2,2) (2,2) (3,3) (3,4)
    // class 1: tp 1, gt 2, pred 1 -> 1/2; class 2: tp 2, gt 2, pred 3 -> 2/3; class 3: tp 1, gt 2, pred 1 -> 1/2; class 4: 0
    const s = segmentationScores(gt, pred, [0, 255]);
    expect(s.pixels).toBe(6);
    expect(s.accuracy).toBeCloseTo(4 / 6, 12);
    expect(s.mIoU).toBeCloseTo((1 / 2 + 2 / 3 + 1 / 2 + 0) / 4, 12);
    // With only 255 ignored (VOC), class 0 is scored: gt 0 predicted 1.
    const v = segmentationScores(gt, pred, [255]);
    expect(v.pixels).toBe(7);
    expect(v.perClass.get(0)).toBe(0);
    expect(v.perClass.get(1)).toBeCloseTo(1 / 3, 12);
  });
});

describe('patch labels and standardisation', () => {
  it('patch pixel labels round-trip and modes break ties to the smallest label', async () => {
    const labels = Int32Array.from({ length: 2 * 4 * 4 }, (_, i) => i % 7);
    const per = patchPixelLabels(labels, 2, 4, 4, 2);
    expect(per.length).toBe(32);
    expect(Array.from(per.subarray(0, 4))).toEqual([0, 1, 4, 5]);
    expect(Array.from(unpatchLabels(per, 2, 4, 4, 2))).toEqual(Array.from(labels));
    expect(Array.from(patchModes(Int32Array.from([3, 3, 1, 1, 2, 2, 2, 0]), 4, 4))).toEqual([1, 2]);
  });

  it('statistics come from the train split only: test data changes nothing', async () => {
    const rng = new Rng(3);
    const train = Float32Array.from({ length: 100 * 3 }, () => 5 + 2 * rng.normal());
    const s = fitStandardizer(train, 3);
    const z = applyStandardizer(s, train);
    for (let j = 0; j < 3; j++) {
      let m = 0,
        v = 0;
      for (let i = 0; i < 100; i++) m += z[i * 3 + j] / 100;
      for (let i = 0; i < 100; i++) v += (z[i * 3 + j] - m) ** 2 / 100;
      expect(Math.abs(m)).toBeLessThan(1e-5);
      expect(v).toBeCloseTo(1, 4);
    }
    const testA = Float32Array.from([1, 2, 3]);
    const testB = Float32Array.from([100, -50, 7]);
    const a1 = applyStandardizer(s, testA);
    applyStandardizer(s, testB);
    expect(Array.from(applyStandardizer(s, testA))).toEqual(Array.from(a1));
    expect(a1[0]).toBeCloseTo((1 - s.mean[0]) / s.std[0], 5);
  });
});

describe('bootstrap standard error of the mIoU', () => {
  it('is 0 when every image scores alike, and near the analytic value for independent images', async () => {
    // 50 identical images: every resample has the same counts.
    const gt = Int32Array.from({ length: 50 * 4 }, (_, i) => i % 2);
    expect(bootstrapMIoU(gt, gt, (i) => Math.floor(i / 4), 50, [], 2).se).toBe(0);
    // 400 one-pixel images of label 0, each predicted right with p = 0.75 (else label 1).
    const rng = new Rng(4);
    const n = 400;
    const g = new Int32Array(n);
    const pr = Int32Array.from({ length: n }, () => (rng.uniform() < 0.75 ? 0 : 1));
    const { se } = bootstrapMIoU(g, pr, (i) => i, n, [], 2, 2000, 1);
    // IoU_0 = c / n (c correct), IoU_1 = 0: mIoU = c / (2 n); its SE is sqrt(p (1 - p) / n) / 2.
    expect(se).toBeGreaterThan(0.8 * (Math.sqrt((0.75 * 0.25) / n) / 2));
    expect(se).toBeLessThan(1.2 * (Math.sqrt((0.75 * 0.25) / n) / 2));
  });
});

describe('bootstrap replicates of the mIoU', () => {
  it('are the mIoU of each resample of whole images, and two results on one test set are resampled alike', () => {
    // 30 images of 6 pixels over 3 labels (label 2 ignored), two prediction sets.
    const rng = new Rng(9);
    const images = 30;
    const gt = Int32Array.from({ length: images * 6 }, () => Math.floor(rng.uniform() * 3));
    const predA = Int32Array.from(gt, (g) => (rng.uniform() < 0.7 ? g : Math.floor(rng.uniform() * 2)));
    const predB = Int32Array.from(gt, (g) => (rng.uniform() < 0.5 ? g : Math.floor(rng.uniform() * 2)));
    const image = (i: number) => Math.floor(i / 6);
    const a = bootstrapMIoU(gt, predA, image, images, [2], 3, 40);
    const b = bootstrapMIoU(gt, predB, image, images, [2], 3, 40);
    // Independently: draw the same resamples, concatenate the drawn images' pixels, score them.
    const draw = imageResampler(images);
    const gap: number[] = [];
    for (let r = 0; r < 40; r++) {
      const picked = Array.from({ length: images }, draw);
      const pixels = (x: Int32Array) => Int32Array.from(picked.flatMap((j) => Array.from(x.subarray(j * 6, (j + 1) * 6))));
      const ma = segmentationScores(pixels(gt), pixels(predA), [2]).mIoU;
      const mb = segmentationScores(pixels(gt), pixels(predB), [2]).mIoU;
      expect(a.replicates[r]).toBeCloseTo(ma, 12);
      expect(b.replicates[r]).toBeCloseTo(mb, 12);
      gap.push(ma - mb);
    }
    // The SE is the replicates' sample std.
    const mean = a.replicates.reduce((x, y) => x + y, 0) / 40;
    expect(a.se).toBeCloseTo(Math.sqrt(a.replicates.reduce((x, v) => x + (v - mean) ** 2, 0) / 39), 12);
    expect(gap.some((g) => g !== gap[0])).toBe(true);
  });
});

describe('dense task floor and ceiling', () => {
  it('on a hand-made label map: majority, background oracle, oracle patch labels', async () => {
    // Two patches of 4 pixels: [0 0 0 1 | 2 2 1 1]; background 0; patch modes 0 and 1 (tie -> smallest).
    const pixels = Int32Array.from([0, 0, 0, 1, 2, 2, 1, 1]);
    const refs = denseReferences(pixels, patchModes(pixels, 4, 3), 4, [], 0);
    // Majority (0 and 1 tie at 3 pixels: the smaller label): IoU_0 = 3/8, IoU_1 = IoU_2 = 0.
    expect(refs.majority.mIoU).toBeCloseTo(1 / 8, 12);
    expect(refs.majority.accuracy).toBeCloseTo(3 / 8, 12);
    // Background oracle: 0 where gt is 0, else 1: IoU_0 = 1, IoU_1 = 3/5, IoU_2 = 0.
    expect(refs.backgroundOracle.mIoU).toBeCloseTo((1 + 3 / 5) / 3, 12);
    // Patch oracle: [0 0 0 0 | 1 1 1 1]: IoU_0 = 3/4, IoU_1 = 2/5, IoU_2 = 0.
    expect(refs.patchOracle.mIoU).toBeCloseTo((3 / 4 + 2 / 5) / 3, 12);
    expect(refs.patchOracle.accuracy).toBeCloseTo(5 / 8, 12);
  });
});

describe('foreground mIoU', () => {
  it('is the mean IoU without the background label', async () => {
    const gt = Int32Array.from([0, 0, 1, 1, 2, 2]);
    const pred = Int32Array.from([0, 1, 1, 1, 2, 0]);
    const r = segmentationScores(gt, pred, []);
    // IoU_0 = 1/3, IoU_1 = 2/3, IoU_2 = 1/2.
    expect(r.mIoU).toBeCloseTo((1 / 3 + 2 / 3 + 1 / 2) / 3, 12);
    expect(foregroundIoU(r.perClass, 0)).toBeCloseTo((2 / 3 + 1 / 2) / 2, 12);
  });
});
