/** Approximate k-NN (HNSW) against the exact search: recall at the defaults, ordering, scores. */
import { describe, expect, it } from 'vitest';
import { chooseKnnIndex, knnSearch } from '../../src/features/knn.js';
import { knnRecall, knnSearchHnsw } from '../../src/features/knn-hnsw.js';
import { Rng } from '../../src/runtime/rng.js';
import type { PatchSet } from '../../src/segmentation/protocol.js';
import { prepareSegmentation, segKnnGrid, segKnnTest, segKnnValidation } from '../../src/segmentation/protocol.js';

/** Gaussian blobs around random centres (patch features are clustered, not uniform noise). */
function blobs(rng: Rng, n: number, dim: number, centres: Float32Array, spread: number): Float32Array {
  const c = centres.length / dim;
  const x = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const k = Math.floor(rng.uniform() * c);
    for (let j = 0; j < dim; j++) x[i * dim + j] = centres[k * dim + j] + spread * rng.normal();
  }
  return x;
}

describe('HNSW k-NN', () => {
  const rng = new Rng(7);
  const dim = 64,
    n = 20000,
    m = 400,
    k = 30;
  const centres = Float32Array.from({ length: 64 * dim }, () => rng.normal());
  const base = blobs(rng, n, dim, centres, 1.0);
  const queries = blobs(rng, m, dim, centres, 1.0);

  for (const metric of ['cosine', 'l2'] as const) {
    it(`recall@${k} above 0.95 at the defaults (${metric})`, async () => {
      const exact = await knnSearch(base, queries, dim, k, metric);
      const approx = knnSearchHnsw(base, queries, dim, k, metric);
      const recall = knnRecall(exact, approx);
      console.log(`HNSW recall@${k} ${metric}, ${n} x ${dim} base, ${m} queries, defaults: ${recall.toFixed(4)}`);
      expect(recall).toBeGreaterThan(0.95);
      // Nearest first, and the scores are the exact search's scores of the same rows.
      for (let q = 0; q < m; q++) {
        for (let j = 1; j < k; j++) expect(approx.scores[q * k + j]).toBeLessThanOrEqual(approx.scores[q * k + j - 1] + 1e-5);
      }
      expect(approx.scores[0]).toBeCloseTo(exact.scores[0], 3);
    });
  }

  it('both searches refuse arrays that are not whole rows of the dimension', async () => {
    const ragged = base.subarray(0, 10 * dim + 3);
    await expect(knnSearch(ragged, queries, dim, k, 'l2')).rejects.toThrow(/not rows of 64/);
    expect(() => knnSearchHnsw(base, ragged, dim, k, 'l2')).toThrow(/queries: .* not rows of 64/);
  });
});

describe('segmentation with the approximate index', () => {
  /** Patches whose features carry their class (+ noise); 4 pixels per patch, all of that class. */
  function patchSet(rng: Rng, images: number, tokens: number, stride = 1): PatchSet {
    const rows = Array.from({ length: images * tokens }, (_, r) => r).filter((r) => r % stride === 0);
    const feats = new Float32Array(rows.length * 8);
    const pixels = new Int32Array(rows.length * 4);
    rows.forEach((_, j) => {
      const c = Math.floor(rng.uniform() * 3);
      for (let k = 0; k < 8; k++) feats[j * 8 + k] = (k === c ? 2 : 0) + rng.normal();
      pixels.fill(c, j * 4, j * 4 + 4);
    });
    return { feats, pixels, rowImage: Int32Array.from(rows, (r) => Math.floor(r / tokens)), images };
  }

  it("gives the exact search's result on an easy task, with subsampled training rows", async () => {
    const rng = new Rng(3);
    const train = patchSet(rng, 40, 25, 3);
    const test = patchSet(rng, 10, 25);
    const s = prepareSegmentation(train, test, {
      dim: 8,
      pixelsPerPatch: 4,
      numLabels: 3,
      classes: 3,
      ignore: [],
      standardize: true,
      seed: 0,
    });
    const grid = segKnnGrid([1, 10]);
    const valExact = await segKnnValidation(s, grid, 'exact');
    const valApprox = await segKnnValidation(s, grid, 'hnsw');
    valApprox.forEach((v, i) => expect(v).toBeCloseTo(valExact[i], 2));
    const exact = await segKnnTest(s, grid[1], 'exact');
    const approx = await segKnnTest(s, grid[1], 'hnsw');
    expect(approx.mIoU).toBeCloseTo(exact.mIoU, 2);
    expect(exact.mIoU).toBeGreaterThan(0.6); // chance is ~0.2
    expect(chooseKnnIndex('auto', 1e6, 1e6, 1024)).toBe('hnsw');
    expect(chooseKnnIndex('auto', 1e5, 1e4, 128)).toBe('exact');
  });
});
