/**
 * The dense protocol's kernels on plain float32 arrays, off the wasm heap (eval spec 3: k-NN
 * search, logistic regression, standardisation at ADE20K scale): a matrix product, the k-NN's
 * running top-k, the softmax cross-entropy's gradient, column moments and an in-place row
 * transform. capi-native computes them (OpenBLAS sgemm, C loops) where it is built; elsewhere the
 * same arithmetic runs in JS, slower but with the same results (up to float rounding order).
 */
import { loadNativeAddon } from './native.js';

export interface CpuKernels {
  /** 'native' (capi-native, OpenBLAS) or 'js'. */
  name: 'native' | 'js';
  /** c [m, n] = op(a) op(b), row-major; op transposes: a is [k, m] with transA, b is [n, k] with transB. */
  matmul(a: Float32Array, b: Float32Array, c: Float32Array, m: number, n: number, k: number, transA: boolean, transB: boolean): void;
  /**
   * Merges the columns of each row of scores [m, n] (plus colAdd[j], when given) into that row's k
   * best so far: vals [m, k] descending (empty slots -Infinity), idx the column's number + base.
   */
  topkMerge(
    scores: Float32Array,
    m: number,
    n: number,
    colAdd: Float32Array | undefined,
    base: number,
    k: number,
    vals: Float32Array,
    idx: Int32Array,
  ): void;
  /**
   * Rows < n of logits [n, c], plus `bias` (if given), become softmax - onehot(labels), added to
   * `colSum` (if given: the bias's gradient); returns the summed cross-entropy (float64).
   */
  softmaxXent(logits: Float32Array, labels: Int32Array, n: number, c: number, bias?: Float32Array, colSum?: Float64Array): number;
  /** Adds each column's sum and sum of squares over rows < n of x [n, d]. */
  colMoments(x: Float32Array, n: number, d: number, sum: Float64Array, sumSq: Float64Array): void;
  /** x = (x - shift) * scale per column, in place; with normalize, each row then divided by its l2 norm. */
  affineRows(x: Float32Array, n: number, d: number, shift: Float32Array, scale: Float32Array, normalize: boolean): void;
  /** out[i] = -|x_i|^2 for rows < n. */
  rowSqNorms(x: Float32Array, n: number, d: number, out: Float32Array): void;
}

const js: CpuKernels = {
  name: 'js',
  matmul(a, b, c, m, n, k, transA, transB) {
    const at = (i: number, p: number) => (transA ? a[p * m + i] : a[i * k + p]);
    const bt = (p: number, j: number) => (transB ? b[j * k + p] : b[p * n + j]);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += at(i, p) * bt(p, j);
        c[i * n + j] = s;
      }
    }
  },
  topkMerge(scores, m, n, colAdd, base, k, vals, idx) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        const s = scores[i * n + j] + (colAdd ? colAdd[j] : 0);
        if (!(s > vals[i * k + k - 1])) continue;
        let p = k - 1;
        while (p > 0 && s > vals[i * k + p - 1]) {
          vals[i * k + p] = vals[i * k + p - 1];
          idx[i * k + p] = idx[i * k + p - 1];
          p--;
        }
        vals[i * k + p] = s;
        idx[i * k + p] = base + j;
      }
    }
  },
  softmaxXent(logits, labels, n, c, bias, colSum) {
    let loss = 0;
    for (let i = 0; i < n; i++) {
      const row = logits.subarray(i * c, (i + 1) * c);
      if (bias) for (let j = 0; j < c; j++) row[j] += bias[j];
      let mx = row[0];
      for (let j = 1; j < c; j++) mx = Math.max(mx, row[j]);
      const target = row[labels[i]] - mx;
      let sum = 0;
      for (let j = 0; j < c; j++) {
        row[j] = Math.exp(row[j] - mx);
        sum += row[j];
      }
      loss += Math.log(sum) - target;
      for (let j = 0; j < c; j++) row[j] /= sum;
      row[labels[i]] -= 1;
      if (colSum) for (let j = 0; j < c; j++) colSum[j] += row[j];
    }
    return loss;
  },
  colMoments(x, n, d, sum, sumSq) {
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < d; j++) {
        const v = x[i * d + j];
        sum[j] += v;
        sumSq[j] += v * v;
      }
    }
  },
  affineRows(x, n, d, shift, scale, normalize) {
    for (let i = 0; i < n; i++) {
      let sq = 0;
      for (let j = 0; j < d; j++) {
        const v = (x[i * d + j] - shift[j]) * scale[j];
        x[i * d + j] = v;
        sq += v * v;
      }
      if (normalize) {
        const inv = 1 / Math.sqrt(sq);
        for (let j = 0; j < d; j++) x[i * d + j] *= inv;
      }
    }
  },
  rowSqNorms(x, n, d, out) {
    for (let i = 0; i < n; i++) {
      let sq = 0;
      for (let j = 0; j < d; j++) sq += x[i * d + j] * x[i * d + j];
      out[i] = -sq;
    }
  },
};

/** The native kernels where capi-native is built (and not turned off), else the JS ones. */
export function cpuKernels(): CpuKernels {
  const { addon } = loadNativeAddon();
  if (!addon || typeof addon.topkMerge !== 'function') return js; // not built, or built before these kernels
  const empty = new Float32Array(0);
  const none64 = new Float64Array(0);
  return {
    name: 'native',
    matmul: (a, b, c, m, n, k, transA, transB) => addon.sgemm(a, b, c, 1, m, n, k, transA, transB, 0, 0),
    topkMerge: (scores, m, n, colAdd, base, k, vals, idx) => addon.topkMerge(scores, m, n, colAdd ?? empty, base, k, vals, idx),
    softmaxXent: (logits, labels, n, c, bias, colSum) => addon.softmaxXent(logits, labels, n, c, bias ?? empty, colSum ?? none64),
    colMoments: (x, n, d, sum, sumSq) => addon.colMoments(x, n, d, sum, sumSq),
    affineRows: (x, n, d, shift, scale, normalize) => addon.affineRows(x, n, d, shift, scale, normalize),
    rowSqNorms: (x, n, d, out) => addon.rowSqNorms(x, n, d, out),
  };
}

/** The JS kernels, whatever is built (tests compare the two). */
export const jsKernels = (): CpuKernels => js;
