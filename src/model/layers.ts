/**
 * Building blocks in two forms (runtime/forms.ts): for stock wasm's fast paths (shared notes
 * "tfjs-on-node.md": only plain 2-D matmuls without transpose flags, gradients that transpose
 * explicitly, bias gradients as a matmul with a row of ones, transposes of rank <= 4), and plain
 * batched ones where products of any form are fast (wasm-native, webgpu).
 * Weights are kept in PyTorch's layout (out x in), so checkpoints map 1:1 to the reference.
 */
import * as tf from '@tensorflow/tfjs';
import { batchedProductsFast, biasInProduct, fusedGeluActive } from '../runtime/forms.js';
import { fusedGelu } from '../runtime/fused-gelu.js';

type BinaryGrad = (
  a: tf.Tensor,
  b: tf.Tensor,
  save: tf.GradSaveFunc,
) => {
  value: tf.Tensor;
  gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[];
};

/** tf.customGrad for a two-input op, typed. */
function customGrad2<A extends tf.Tensor, B extends tf.Tensor, R extends tf.Tensor>(f: BinaryGrad): (a: A, b: B) => R {
  return tf.customGrad(f as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (a: A, b: B) => R;
}

/**
 * y = x @ w^T for x [M, in], w [out, in]. Where a transposed product is as fast as a plain one
 * (runtime/forms.ts) tfjs's own gradient serves; on stock wasm only plain 2-D products are fast,
 * so the gradient transposes explicitly.
 */
export function linear2d(x: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  return batchedProductsFast() ? tf.matMul(x, w, false, true) : linear2dPlain(x, w);
}

const linear2dPlain = customGrad2<tf.Tensor2D, tf.Tensor2D, tf.Tensor2D>((x, w, save) => {
  save([x, w]);
  const value = tf.matMul(x as tf.Tensor2D, tf.transpose(w as tf.Tensor2D));
  const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
    const [xs, ws] = saved as tf.Tensor2D[];
    const dx = tf.matMul(dy as tf.Tensor2D, ws); // [M, out] @ [out, in]
    const dwT = tf.matMul(tf.transpose(xs), dy as tf.Tensor2D); // [in, out]
    return [dx, tf.transpose(dwT)];
  };
  return { value, gradFunc };
});

/** y = x + b for x [M, n], b [n]; the bias gradient is ones[1, M] @ dy (fast on wasm). */
export const addBias = customGrad2<tf.Tensor2D, tf.Tensor1D, tf.Tensor2D>((x, b, save) => {
  save([]);
  const value = tf.add(x, b);
  const gradFunc = (dy: tf.Tensor) => {
    const ones = tf.ones([1, dy.shape[0]!]) as tf.Tensor2D;
    return [dy, tf.matMul(ones, dy as tf.Tensor2D).reshape([dy.shape[1]!])];
  };
  return { value, gradFunc };
});

/** Linear layer on any leading shape: x [..., in], w [out, in] -> [..., out]. */
export function linear(x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor): tf.Tensor {
  const shape = x.shape;
  const inDim = shape[shape.length - 1];
  const x2d = x.reshape([-1, inDim]) as tf.Tensor2D;
  let y: tf.Tensor2D;
  if (b && biasInProduct()) {
    // tfjs's gradient sums dy for the bias.
    y = tf.fused.matMul({ a: x2d, b: w as tf.Tensor2D, transposeB: true, bias: b }) as tf.Tensor2D;
  } else {
    y = linear2d(x2d, w as tf.Tensor2D);
    if (b) y = addBias(y, b as tf.Tensor1D);
  }
  return y.reshape([...shape.slice(0, -1), w.shape[0]]);
}

/** RMSNorm over the last axis: x / sqrt(mean(x^2) + eps) (* weight when given). */
export function rmsNorm(x: tf.Tensor, weight: tf.Tensor | undefined, eps: number): tf.Tensor {
  const ms = tf.mean(tf.mul(x, x), -1, true);
  const y = tf.mul(x, tf.rsqrt(tf.add(ms, eps)));
  return weight ? tf.mul(y, weight) : y;
}

/** x / max(||x||_2, eps) over the last axis (torch.nn.functional.normalize). */
export function l2Normalize(x: tf.Tensor, eps: number): tf.Tensor {
  const norm = tf.sqrt(tf.sum(tf.mul(x, x), -1, true));
  return tf.div(x, tf.maximum(norm, eps));
}

/** Exact GELU: 0.5 x (1 + erf(x / sqrt 2)); one fused kernel (and one for its gradient) where the backend has them. */
export function gelu(x: tf.Tensor): tf.Tensor {
  if (fusedGeluActive()) return fusedGelu(x);
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
}

/**
 * How RoPE pairs channels (method spec 2.5):
 *  - 'reference': rotate-half over the whole head dim, pairing a row-angle channel c with the
 *    column-angle channel c + D/2 (the reference's quirk; needed to load official weights);
 *  - 'axial': rotate-half inside each half, so each pair shares one angle (a true rotation).
 */
export type RopeMode = 'reference' | 'axial';

/** Base frequency matrix [2, D] of spec 2.5 (cycles per image side, times 2 pi). */
export function ropeFrequencies(headDim: number, maxFreq = 7, minFreq = 7e-4): Float32Array {
  const q = headDim / 4;
  const out = new Float32Array(2 * headDim);
  for (let j = 0; j < q; j++) {
    const f = maxFreq * (minFreq / maxFreq) ** (j / (q - 1));
    const w = 2 * Math.PI * f;
    out[j] = w; // row 0: g = [f, f] on the first half
    out[j + q] = w;
    out[headDim + headDim / 2 + j] = w; // row 1: g on the second half
    out[headDim + headDim / 2 + j + q] = w;
  }
  return out;
}

/** Swaps the two halves of axis 2 of x [M, parts, 2, half] and multiplies by signs [1, 1, 2, 1]. */
function swapHalvesSigned(x: tf.Tensor, signs: tf.Tensor): tf.Tensor {
  return tf.mul(tf.gather(x, SWAP.indices(), 2), signs);
}

const SWAP = {
  idx: undefined as tf.Tensor | undefined,
  fwd: undefined as tf.Tensor | undefined,
  bwd: undefined as tf.Tensor | undefined,
  indices(): tf.Tensor {
    if (!this.idx || this.idx.isDisposed) this.idx = tf.keep(tf.tensor1d([1, 0], 'int32'));
    return this.idx;
  },
  /** [a, b] -> [-b, a] */
  forwardSigns(): tf.Tensor {
    if (!this.fwd || this.fwd.isDisposed) this.fwd = tf.keep(tf.tensor([-1, 1], [1, 1, 2, 1]));
    return this.fwd;
  },
  /** The transpose of the above: [u, v] -> [v, -u] */
  backwardSigns(): tf.Tensor {
    if (!this.bwd || this.bwd.isDisposed) this.bwd = tf.keep(tf.tensor([1, -1], [1, 1, 2, 1]));
    return this.bwd;
  },
};

/** rotate-half on [M, parts, 2, half]; its gradient is the transposed permutation (no scatter). */
const rotateGrouped = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
  save([]);
  return {
    value: swapHalvesSigned(x, SWAP.forwardSigns()),
    gradFunc: (dy: tf.Tensor) => [swapHalvesSigned(dy, SWAP.backwardSigns())],
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (x: tf.Tensor) => tf.Tensor;

/**
 * rotate_half over the last axis, split into `parts` equal groups (1: [a, b] -> [-b, a] over
 * the whole axis; 2: the same inside each half). The swap is a gather of a size-2 axis, which
 * copies whole rows on wasm (split + concat and reverse measured several times slower).
 */
function rotateHalf(x: tf.Tensor, parts: number): tf.Tensor {
  const shape = x.shape;
  const d = shape[shape.length - 1];
  // Where products are fast, the swap is a product with the signed permutation (tfjs's own
  // gradient): on wasm-native 4x faster than wasm's single-threaded gather of the fmnist-tiny
  // step (OpenBLAS, both cores); on webgpu one dispatch each way instead of two.
  if (batchedProductsFast()) return tf.matMul(x.reshape([-1, d]), rotationMatrix(d, parts)).reshape(shape);
  return rotateGrouped(x.reshape([-1, parts, 2, d / (2 * parts)])).reshape(shape);
}

const rotationMatrices = new Map<string, tf.Tensor>();

/** R [D, D] with x R = rotate_half(x) in `parts` groups: column i of a group's first half takes -x of its second half, and back. */
function rotationMatrix(d: number, parts: number): tf.Tensor {
  const key = `${d}/${parts}`;
  const cached = rotationMatrices.get(key);
  if (cached && !cached.isDisposed) return cached;
  const r = new Float32Array(d * d);
  const group = d / parts;
  const half = group / 2;
  for (let g = 0; g < parts; g++) {
    for (let i = 0; i < half; i++) {
      const a = g * group + i;
      const b = a + half;
      r[b * d + a] = -1; // out[a] = -x[b]
      r[a * d + b] = 1; // out[b] = x[a]
    }
  }
  const t = tf.keep(tf.tensor2d(r, [d, d]));
  rotationMatrices.set(key, t);
  return t;
}

/**
 * Applies RoPE to x [B, h, n, D] with cos/sin of the angles [B, 1, n, D]:
 * z' = z cos(theta) + rot(z) sin(theta).
 */
export function applyRope(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor, mode: RopeMode): tf.Tensor {
  const rotated = rotateHalf(x, mode === 'reference' ? 1 : 2);
  return tf.add(tf.mul(x, cos), tf.mul(rotated, sin));
}

/**
 * cos and sin of the RoPE angles for coords [B, n, 2] and freqs [2, D], shaped [B, 1, n, D].
 * Memoised per coordinates tensor and frequency values: every layer holds the same frozen
 * frequencies, so one forward computes them once instead of once per layer. The values' key is
 * read once per tensor buffer (a variable's buffer changes only when it is assigned: the EMA
 * teacher's every step), not once per block. A GPU backend cannot read a buffer synchronously
 * (webgpu.ts): there each buffer is its own key, so each layer computes its angles (the same values).
 */
const ropeMemo = new WeakMap<tf.Tensor, Map<string, { cos: tf.Tensor; sin: tf.Tensor }>>();
const freqKeys = new WeakMap<object, string>();
let buffers = 0;

function freqKey(freqs: tf.Tensor): string {
  let key = freqKeys.get(freqs.dataId);
  if (key === undefined) {
    key = tf.getBackend() === 'webgpu' ? `buffer ${buffers++}` : Array.from(freqs.dataSync()).join(',');
    freqKeys.set(freqs.dataId, key);
  }
  return key;
}

export function ropeAngles(coords: tf.Tensor, freqs: tf.Tensor): { cos: tf.Tensor; sin: tf.Tensor } {
  const key = freqKey(freqs);
  let perCoords = ropeMemo.get(coords);
  const hit = perCoords?.get(key);
  if (hit && !hit.cos.isDisposed && !hit.sin.isDisposed) return hit;
  const [b, n] = coords.shape;
  const d = freqs.shape[1]!;
  const angle = tf.matMul(coords.reshape([b! * n!, 2]) as tf.Tensor2D, freqs as tf.Tensor2D).reshape([b!, 1, n!, d]);
  const result = { cos: tf.cos(angle), sin: tf.sin(angle) };
  if (!perCoords) {
    perCoords = new Map();
    ropeMemo.set(coords, perCoords);
  }
  perCoords.set(key, result);
  return result;
}

/** [B, n, h*D] -> [B, h, n, D] */
export function splitHeads(x: tf.Tensor, heads: number): tf.Tensor {
  const [b, n, d] = x.shape;
  return tf.transpose(x.reshape([b!, n!, heads, d! / heads]), [0, 2, 1, 3]);
}

/** [B, h, n, D] -> [B, n, h*D] */
export function mergeHeads(x: tf.Tensor): tf.Tensor {
  const [b, h, n, d] = x.shape;
  return tf.transpose(x, [0, 2, 1, 3]).reshape([b!, n!, h! * d!]);
}

/** a @ b for 2-D a [M, K], b [K, N]; the gradient transposes explicitly (fast path on wasm). */
export const matMul2d = customGrad2<tf.Tensor2D, tf.Tensor2D, tf.Tensor2D>((a, b, save) => {
  save([a, b]);
  const value = tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D);
  const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
    const [as, bs] = saved as tf.Tensor2D[];
    return [tf.matMul(dy as tf.Tensor2D, tf.transpose(bs)), tf.matMul(tf.transpose(as), dy as tf.Tensor2D)];
  };
  return { value, gradFunc };
});

/** Rows per attention group: the block-diagonal trick below wastes g-fold flops to save op count. */
const ATTENTION_GROUP_ROWS = 256;
const blockMasks = new Map<string, tf.Tensor2D>();

/** Additive mask [g nq, g nk]: 0 on the g diagonal blocks, -1e9 elsewhere (kept for reuse). */
function blockDiagonalMask(g: number, nq: number, nk: number): tf.Tensor2D {
  const key = `${g},${nq},${nk}`;
  let m = blockMasks.get(key);
  if (!m) {
    const values = new Float32Array(g * nq * g * nk).fill(-1e9);
    for (let b = 0; b < g; b++) {
      for (let i = 0; i < nq; i++) values.fill(0, (b * nq + i) * g * nk + b * nk, (b * nq + i) * g * nk + (b + 1) * nk);
    }
    m = tf.keep(tf.tensor2d(values, [g * nq, g * nk]));
    blockMasks.set(key, m);
  }
  return m;
}

/**
 * softmax(q k^T / sqrt(D)) v for q [B, h, nq, D], k and v [B, h, nk, D].
 * Batched matmuls leave XNNPACK on wasm (about 1 GFLOP/s), so the (batch x head) pairs are
 * processed as 2-D matmuls, g pairs at a time stacked block-diagonally with a mask: with short
 * sequences this cuts the op count g-fold for a g-fold flop overhead, which measured faster
 * (shared notes, pattern 2).
 */
export function scaledDotProductAttention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor): tf.Tensor {
  if (batchedProductsFast()) {
    // One batched product per side (the grouping below is a stock-wasm workaround).
    // The 1/sqrt(D) scale goes on the smaller of q (nq x D) and the scores (nq x nk).
    const scale = 1 / Math.sqrt(q.shape[3]!);
    const scoresSmaller = k.shape[2]! < q.shape[3]!;
    const s = tf.matMul((scoresSmaller ? q : tf.mul(q, scale)) as tf.Tensor4D, k as tf.Tensor4D, false, true);
    return tf.matMul(tf.softmax(scoresSmaller ? tf.mul(s, scale) : s) as tf.Tensor4D, v as tf.Tensor4D);
  }
  const [b, h, nq, d] = q.shape as number[];
  const nk = k.shape[2]!;
  const pairs = b * h;
  let g = Math.max(1, Math.floor(ATTENTION_GROUP_ROWS / Math.max(nq, nk)));
  while (pairs % g !== 0) g--;
  // Scaling q (n D values) is cheaper than scaling the scores (g n^2 per pair).
  // (tf.unstack of a single slice breaks its own gradient, so one group is a plain reshape.)
  const groups = (t: tf.Tensor, n: number) => (pairs === g ? [t.reshape([g * n, d])] : tf.unstack(t.reshape([pairs / g, g * n, d])));
  const qs = groups(tf.mul(q, 1 / Math.sqrt(d)), nq);
  const ks = groups(k, nk);
  const vs = groups(v, nk);
  const mask = g > 1 ? blockDiagonalMask(g, nq, nk) : undefined;
  const outs = qs.map((qi, i) => {
    let s = matMul2d(qi as tf.Tensor2D, tf.transpose(ks[i]) as tf.Tensor2D);
    if (mask) s = tf.add(s, mask);
    return matMul2d(tf.softmax(s) as tf.Tensor2D, vs[i] as tf.Tensor2D);
  });
  return (outs.length === 1 ? outs[0] : tf.stack(outs)).reshape([b, h, nq, d]);
}
