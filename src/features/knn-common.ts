/**
 * What the exact (knn.ts) and approximate (knn-hnsw.ts) k-NN searches share: the metric, the
 * result layout and the row check. Its own module so that knn.ts, which dispatches to
 * knn-hnsw.ts, and knn-hnsw.ts do not import each other.
 */

export type KnnMetric = 'l2' | 'cosine';

export interface KnnResult {
  /** [m, k] indices into the base, nearest first. */
  indices: Int32Array;
  /** [m, k] similarity scores (higher = nearer; for L2: 2 q.x - |x|^2). */
  scores: Float32Array;
  k: number;
}

/** The number of rows of a row-major [rows, dim] matrix; throws when `data` is not whole rows. */
export function rowCount(data: Float32Array, dim: number, what: string): number {
  if (dim < 1 || data.length % dim !== 0) throw new Error(`k-NN ${what}: ${data.length} values are not rows of ${dim}`);
  return data.length / dim;
}
