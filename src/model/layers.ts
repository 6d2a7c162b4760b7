/**
 * Building blocks written for the wasm backend's fast paths (shared notes "tfjs-on-node.md"):
 * only plain 2-D matmuls without transpose flags, gradients that transpose explicitly, bias
 * gradients as a matmul with a row of ones, transposes of rank <= 4.
 * Weights are kept in PyTorch's layout (out x in), so checkpoints map 1:1 to the reference.
 */
import * as tf from '@tensorflow/tfjs';

/** y = x @ w^T for x [M, in], w [out, in]; the gradient uses only 2-D plain matmuls. */
export const linear2d: (x: tf.Tensor2D, w: tf.Tensor2D) => tf.Tensor2D = tf.customGrad(
  (x: tf.Tensor, w: tf.Tensor, save: tf.GradSaveFunc) => {
    save([x, w]);
    const value = tf.matMul(x as tf.Tensor2D, tf.transpose(w as tf.Tensor2D));
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [xs, ws] = saved as tf.Tensor2D[];
      const dx = tf.matMul(dy as tf.Tensor2D, ws); // [M, out] @ [out, in]
      const dwT = tf.matMul(tf.transpose(xs), dy as tf.Tensor2D); // [in, out]
      return [dx, tf.transpose(dwT)];
    };
    return { value, gradFunc };
  },
) as unknown as (x: tf.Tensor2D, w: tf.Tensor2D) => tf.Tensor2D;

/** y = x + b for x [M, n], b [n]; the bias gradient is ones[1, M] @ dy (fast on wasm). */
export const addBias: (x: tf.Tensor2D, b: tf.Tensor1D) => tf.Tensor2D = tf.customGrad(
  (x: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
    save([]);
    const value = tf.add(x, b);
    const gradFunc = (dy: tf.Tensor) => {
      const ones = tf.ones([1, dy.shape[0]!]) as tf.Tensor2D;
      return [dy, tf.matMul(ones, dy as tf.Tensor2D).reshape([dy.shape[1]!])];
    };
    return { value, gradFunc };
  },
) as unknown as (x: tf.Tensor2D, b: tf.Tensor1D) => tf.Tensor2D;

/** Linear layer on any leading shape: x [..., in], w [out, in] -> [..., out]. */
export function linear(x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor): tf.Tensor {
  const shape = x.shape;
  const inDim = shape[shape.length - 1];
  let y = linear2d(x.reshape([-1, inDim]) as tf.Tensor2D, w as tf.Tensor2D);
  if (b) y = addBias(y, b as tf.Tensor1D);
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

/** Exact GELU: 0.5 x (1 + erf(x / sqrt 2)). */
export function gelu(x: tf.Tensor): tf.Tensor {
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
    const f = maxFreq * Math.pow(minFreq / maxFreq, j / (q - 1));
    const w = 2 * Math.PI * f;
    out[j] = w; // row 0: g = [f, f] on the first half
    out[j + q] = w;
    out[headDim + headDim / 2 + j] = w; // row 1: g on the second half
    out[headDim + headDim / 2 + j + q] = w;
  }
  return out;
}

/** rotate_half([a, b]) = [-b, a] over the last axis. */
function rotateHalf(x: tf.Tensor): tf.Tensor {
  const [a, b] = tf.split(x, 2, -1);
  return tf.concat([tf.neg(b), a], -1);
}

/**
 * Applies RoPE to x [B, h, n, D] with angles [B, n, D] (coords @ freqs).
 * z' = z cos(theta) + rot(z) sin(theta).
 */
export function applyRope(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor, mode: RopeMode): tf.Tensor {
  let rotated: tf.Tensor;
  if (mode === 'reference') {
    rotated = rotateHalf(x);
  } else {
    const [u, v] = tf.split(x, 2, -1);
    rotated = tf.concat([rotateHalf(u), rotateHalf(v)], -1);
  }
  return tf.add(tf.mul(x, cos), tf.mul(rotated, sin));
}

/** cos and sin of the RoPE angles for coords [B, n, 2] and freqs [2, D], shaped [B, 1, n, D]. */
export function ropeAngles(coords: tf.Tensor, freqs: tf.Tensor): { cos: tf.Tensor; sin: tf.Tensor } {
  const [b, n] = coords.shape;
  const d = freqs.shape[1]!;
  const angle = tf.matMul(coords.reshape([b * n, 2]) as tf.Tensor2D, freqs as tf.Tensor2D).reshape([b!, 1, n!, d]);
  return { cos: tf.cos(angle), sin: tf.sin(angle) };
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

/** softmax(q k^T / sqrt(D)) v for q [B, h, nq, D], k and v [B, h, nk, D]. */
export function scaledDotProductAttention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor): tf.Tensor {
  const d = q.shape[3]!;
  const scores = tf.matMul(q as tf.Tensor4D, k as tf.Tensor4D, false, true);
  const attn = tf.softmax(tf.mul(scores, 1 / Math.sqrt(d)));
  return tf.matMul(attn as tf.Tensor4D, v as tf.Tensor4D);
}
