/**
 * Exact k-nearest neighbours on tfjs (eval spec 3.5): queries in chunks of 1024 against the base
 * in chunks, one plain 2-D matmul per pair of chunks plus top-k, then a merge of the candidates.
 * L2 ranks by 2 q.x - |x|^2 (the |q|^2 term does not change the order); cosine by q.x of
 * l2-normalised rows (no epsilon, as the reference).
 */
import * as tf from '@tensorflow/tfjs';
import { maxBindingBytes } from '../runtime/backend.js';
import { type KnnMetric, type KnnResult, rowCount } from './knn-common.js';
import { knnSearchHnsw } from './knn-hnsw.js';

export type { KnnMetric, KnnResult } from './knn-common.js';

export interface KnnOptions {
  queryChunk?: number;
  baseChunk?: number;
  /** Queries answered so far, of all. */
  onProgress?: (done: number, total: number) => void;
}

function normalizeRows(x: tf.Tensor2D): tf.Tensor2D {
  return tf.div(x, tf.norm(x, 'euclidean', 1, true)) as tf.Tensor2D;
}

/** The k nearest rows of `base` [n, D] for every row of `queries` [m, D] (read back asynchronously: webgpu.ts). */
export async function knnSearch(
  base: Float32Array,
  queries: Float32Array,
  dim: number,
  k: number,
  metric: KnnMetric,
  opts: KnnOptions = {},
): Promise<KnnResult> {
  const n = rowCount(base, dim, 'base');
  const m = rowCount(queries, dim, 'queries');
  // A base chunk [len, D] and the scores [queries, len] are each one GPU buffer, within the adapter's binding limit.
  const binding = maxBindingBytes() ?? Number.POSITIVE_INFINITY;
  const bc = opts.baseChunk ?? Math.max(1, Math.min(16384, Math.floor(binding / (4 * dim))));
  const qc = opts.queryChunk ?? Math.max(1, Math.min(1024, Math.floor(binding / (4 * Math.max(bc, dim)))));
  const kk = Math.min(k, n);
  // Base chunks, transposed once: [D, chunk] and the per-row offset (-|x|^2 for L2, 0 for cosine).
  const chunks = tf.tidy(() => {
    const out: { xT: tf.Tensor2D; offset?: tf.Tensor1D; start: number }[] = [];
    for (let s = 0; s < n; s += bc) {
      const len = Math.min(bc, n - s);
      let x = tf.tensor2d(base.subarray(s * dim, (s + len) * dim), [len, dim]);
      if (metric === 'cosine') x = normalizeRows(x);
      const item = { xT: tf.keep(tf.transpose(x) as tf.Tensor2D), start: s, offset: undefined as tf.Tensor1D | undefined };
      if (metric === 'l2') item.offset = tf.keep(tf.neg(tf.sum(tf.mul(x, x), 1)) as tf.Tensor1D);
      out.push(item);
    }
    return out;
  });
  const indices = new Int32Array(m * kk);
  const scores = new Float32Array(m * kk);
  for (let q0 = 0; q0 < m; q0 += qc) {
    const qlen = Math.min(qc, m - q0);
    const [vals, idx] = tf.tidy(() => {
      let q = tf.tensor2d(queries.subarray(q0 * dim, (q0 + qlen) * dim), [qlen, dim]);
      if (metric === 'cosine') q = normalizeRows(q);
      else q = tf.mul(q, 2) as tf.Tensor2D;
      const candVals: tf.Tensor[] = [];
      const candIdx: tf.Tensor[] = [];
      for (const c of chunks) {
        let s: tf.Tensor = tf.matMul(q, c.xT);
        if (c.offset) s = tf.add(s, c.offset);
        const top = tf.topk(s, Math.min(kk, c.xT.shape[1]));
        candVals.push(top.values);
        candIdx.push(tf.add(top.indices, c.start));
      }
      const allVals = tf.concat(candVals, 1);
      const allIdx = tf.concat(candIdx, 1);
      const best = tf.topk(allVals, kk);
      const rows = tf.tile(tf.range(0, qlen, 1, 'int32').reshape([qlen, 1]), [1, kk]);
      const picked = tf.gatherND(allIdx, tf.stack([rows, best.indices], 2));
      return [best.values, picked];
    });
    try {
      scores.set((await vals.data()) as Float32Array, q0 * kk);
      indices.set((await idx.data()) as Int32Array, q0 * kk);
    } finally {
      tf.dispose([vals, idx]);
    }
    opts.onProgress?.(q0 + qlen, m);
  }
  for (const c of chunks) tf.dispose([c.xT, ...(c.offset ? [c.offset] : [])]);
  return { indices, scores, k: kk };
}

/**
 * Pixel-level k-NN voting (eval spec 3.5): each query patch copies, per pixel position, the
 * majority label among its k neighbours' pixel labels (unweighted; ties -> smallest label).
 * `pixelLabels` is [n, P] (P pixels per patch); returns [m, P].
 */
export function knnVotePixels(res: KnnResult, k: number, pixelLabels: Int32Array, pixelsPerPatch: number, numLabels: number): Int32Array {
  const m = res.indices.length / res.k;
  const out = new Int32Array(m * pixelsPerPatch);
  const counts = new Int32Array(numLabels);
  const kUse = Math.min(k, res.k);
  for (let q = 0; q < m; q++) {
    for (let p = 0; p < pixelsPerPatch; p++) {
      let best = 0;
      let bestCount = -1;
      for (let j = 0; j < kUse; j++) counts[pixelLabels[res.indices[q * res.k + j] * pixelsPerPatch + p]]++;
      for (let j = 0; j < kUse; j++) {
        const l = pixelLabels[res.indices[q * res.k + j] * pixelsPerPatch + p];
        if (counts[l] > bestCount || (counts[l] === bestCount && l < best)) {
          best = l;
          bestCount = counts[l];
        }
      }
      for (let j = 0; j < kUse; j++) counts[pixelLabels[res.indices[q * res.k + j] * pixelsPerPatch + p]] = 0;
      out[q * pixelsPerPatch + p] = best;
    }
  }
  return out;
}

/**
 * Patch-level k-NN voting (beside the reference's pixel voting): each query patch takes the
 * majority of its k neighbours' patch labels (their mode labels; unweighted, ties -> smallest
 * label) for all its pixels, as the logistic regression predicts one label a patch. Pixel voting
 * can also score by copying a neighbour's label layout; this cannot. `patchLabels` is [n];
 * returns [m, P].
 */
export function knnVotePatches(res: KnnResult, k: number, patchLabels: Int32Array, pixelsPerPatch: number, numLabels: number): Int32Array {
  // One vote a patch is pixel voting with a single "pixel" a patch, spread over the patch's pixels.
  const perPatch = knnVotePixels(res, k, patchLabels, 1, numLabels);
  const out = new Int32Array(perPatch.length * pixelsPerPatch);
  for (let q = 0; q < perPatch.length; q++) out.fill(perPatch[q]!, q * pixelsPerPatch, (q + 1) * pixelsPerPatch);
  return out;
}

/** Exact search (this file), approximate (HNSW, knn-hnsw.ts), or exact unless too costly. */
export const KNN_INDEXES = ['exact', 'hnsw', 'auto'] as const;
export type KnnIndex = (typeof KNN_INDEXES)[number];

/**
 * Largest exact search 'auto' runs: 2 n m D multiply-adds. 1e13 is ~10 minutes at the ~16 GFLOP/s
 * the chunked matmul search reaches here (bench:eval), about ADE20K-size with ViT-S.
 */
export const EXACT_KNN_MAX_FLOP = 1e13;

export function chooseKnnIndex(index: KnnIndex, n: number, m: number, dim: number): 'exact' | 'hnsw' {
  if (index !== 'auto') return index;
  return 2 * n * m * dim > EXACT_KNN_MAX_FLOP ? 'hnsw' : 'exact';
}

/** knnSearch or knnSearchHnsw, as `index` says (already resolved from 'auto'). */
export async function searchNeighbours(
  index: 'exact' | 'hnsw',
  base: Float32Array,
  queries: Float32Array,
  dim: number,
  k: number,
  metric: KnnMetric,
  onProgress?: (done: number, total: number) => void,
): Promise<KnnResult> {
  return index === 'hnsw'
    ? knnSearchHnsw(base, queries, dim, k, metric, { onProgress })
    : knnSearch(base, queries, dim, k, metric, { onProgress });
}
