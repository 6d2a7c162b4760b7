/**
 * Weighted k-NN classification on l2-normalised global vectors (DINO style: k = 20, weights
 * exp(cos / 0.07)); the eval spec leaves Table 5's k-NN protocol unspecified [INFERRED].
 */
import { knnSearch } from '../features/knn.js';

export interface KnnClassifyOptions {
  k?: number;
  temperature?: number;
  onProgress?: (done: number, total: number) => void;
}

/** Test accuracy (0-1) and which test rows were classified right (1). */
export async function knnClassify(
  train: Float32Array,
  trainLabels: Int32Array,
  test: Float32Array,
  testLabels: Int32Array,
  dim: number,
  classes: number,
  opts: KnnClassifyOptions = {},
): Promise<{ accuracy: number; correct: Uint8Array }> {
  const { k = 20, temperature = 0.07 } = opts;
  if (train.length !== trainLabels.length * dim || test.length !== testLabels.length * dim) {
    throw new Error(`k-NN classification: ${train.length} / ${test.length} values are not one row of ${dim} per label`);
  }
  const res = await knnSearch(train, test, dim, k, 'cosine', { onProgress: opts.onProgress });
  const correct = new Uint8Array(testLabels.length);
  const votes = new Float64Array(classes);
  for (let q = 0; q < testLabels.length; q++) {
    votes.fill(0);
    for (let j = 0; j < res.k; j++) votes[trainLabels[res.indices[q * res.k + j]]] += Math.exp(res.scores[q * res.k + j] / temperature);
    let best = 0;
    for (let c = 1; c < classes; c++) if (votes[c] > votes[best]) best = c;
    correct[q] = best === testLabels[q] ? 1 : 0;
  }
  return { accuracy: correct.reduce((a, c) => a + c, 0) / Math.max(1, testLabels.length), correct };
}
