/**
 * Approximate k-nearest neighbours with an HNSW index (hnswlib-node), for training sets too
 * large for the exact search of knn.ts in the time budget (eval spec 3.5 is exact; this is the
 * port's fallback and every result that used it says so). Same result layout as the exact
 * search: indices nearest first, scores comparable to knnSearch's (cosine similarity; for L2,
 * 2 q.x - |x|^2 = |q|^2 - |q - x|^2).
 */
import { createRequire } from 'node:module';
import { type KnnMetric, type KnnResult, rowCount } from './knn-common.js';

export interface HnswOptions {
  /** Graph degree (hnswlib's M). */
  m: number;
  efConstruction: number;
  /** Candidate list size at query time (raised to k when smaller). */
  efSearch: number;
  seed: number;
  onProgress?: (done: number, total: number) => void;
}

/** Recall@k above 0.95 on our tests and on bench:eval's features (see the closing notes). */
export const HNSW_DEFAULTS: HnswOptions = { m: 16, efConstruction: 200, efSearch: 128, seed: 100 };

interface HnswIndex {
  initIndex(maxElements: number, m?: number, efConstruction?: number, randomSeed?: number): void;
  addPoint(point: number[], label: number): void;
  setEf(ef: number): void;
  searchKnn(query: number[], k: number): { distances: number[]; neighbors: number[] };
}
type HnswModule = { HierarchicalNSW: new (space: 'l2' | 'cosine', dim: number) => HnswIndex };

let hnswlib: HnswModule | undefined;
function loadHnswlib(): HnswModule {
  if (hnswlib) return hnswlib;
  try {
    hnswlib = createRequire(import.meta.url)('hnswlib-node') as HnswModule;
    return hnswlib;
  } catch (e) {
    throw new Error(
      `approximate k-NN needs hnswlib-node, which did not load (${(e as Error).message.split('\n')[0]}): ` +
        'run `npm rebuild hnswlib-node` (it builds with python3, make and g++), or use --knn-index exact',
    );
  }
}

/** The k nearest rows of `base` [n, D] for every row of `queries` [m, D], approximately. */
export function knnSearchHnsw(
  base: Float32Array,
  queries: Float32Array,
  dim: number,
  k: number,
  metric: KnnMetric,
  opts: Partial<HnswOptions> = {},
): KnnResult {
  const n = rowCount(base, dim, 'base');
  const m = rowCount(queries, dim, 'queries');
  const o = { ...HNSW_DEFAULTS, ...opts };
  const { HierarchicalNSW } = loadHnswlib();
  const index = new HierarchicalNSW(metric, dim);
  index.initIndex(n, o.m, o.efConstruction, o.seed);
  // hnswlib-node takes plain arrays only: one conversion per row.
  for (let i = 0; i < n; i++) {
    index.addPoint(Array.from(base.subarray(i * dim, (i + 1) * dim)), i);
    if (i % 4096 === 4095) o.onProgress?.(i + 1, n + m);
  }
  const kk = Math.min(k, n);
  index.setEf(Math.max(o.efSearch, kk));
  const indices = new Int32Array(m * kk);
  const scores = new Float32Array(m * kk);
  for (let q = 0; q < m; q++) {
    const row = queries.subarray(q * dim, (q + 1) * dim);
    const { distances, neighbors } = index.searchKnn(Array.from(row), kk); // nearest first
    let qq = 0;
    if (metric === 'l2') for (let j = 0; j < dim; j++) qq += row[j] * row[j];
    neighbors.forEach((nb, j) => {
      indices[q * kk + j] = nb;
      // hnswlib's 'l2' is the squared distance, its 'cosine' is 1 - cos.
      scores[q * kk + j] = metric === 'l2' ? qq - distances[j] : 1 - distances[j];
    });
    if (q % 4096 === 4095) o.onProgress?.(n + q + 1, n + m);
  }
  o.onProgress?.(n + m, n + m);
  return { indices, scores, k: kk };
}

/** Fraction of the exact k nearest neighbours that the approximate search found. */
export function knnRecall(exact: KnnResult, approx: KnnResult): number {
  const k = exact.k;
  const m = exact.indices.length / k;
  let hit = 0;
  for (let q = 0; q < m; q++) {
    const truth = new Set(exact.indices.subarray(q * k, (q + 1) * k));
    for (let j = 0; j < approx.k; j++) if (truth.has(approx.indices[q * approx.k + j])) hit++;
  }
  return hit / (m * k);
}
