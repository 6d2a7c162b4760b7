/** Per-channel feature standardisation with statistics from the train split only (eval spec 3.4). */

export interface Standardizer {
  mean: Float64Array;
  std: Float64Array;
}

/** Mean and population std per channel of x [n, D]. */
export function fitStandardizer(x: Float32Array, dim: number): Standardizer {
  const n = x.length / dim;
  const mean = new Float64Array(dim);
  const sq = new Float64Array(dim);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < dim; j++) {
      const v = x[i * dim + j];
      mean[j] += v;
      sq[j] += v * v;
    }
  }
  const std = new Float64Array(dim);
  for (let j = 0; j < dim; j++) {
    mean[j] /= n;
    std[j] = Math.sqrt(Math.max(sq[j] / n - mean[j] * mean[j], 0));
  }
  return { mean, std };
}

/** (x - mean) / std, a new array; channels with zero spread are only centred. */
export function applyStandardizer(s: Standardizer, x: Float32Array): Float32Array {
  const dim = s.mean.length;
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const j = i % dim;
    out[i] = (x[i] - s.mean[j]) / (s.std[j] > 0 ? s.std[j] : 1);
  }
  return out;
}
