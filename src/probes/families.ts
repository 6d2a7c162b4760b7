/**
 * Probe families, each a stack of P probes evaluated together on shared features.
 *
 * Linear (spec 1.3): logits_p = x W_p + b_p.
 *
 * Attentive (spec 1.2): a learned query q, one linear layer D -> 2D with bias for keys and
 * values, heads of 64, softmax(q_h . k_h / 8) pooling, an output layer D -> C with bias. The
 * projections are folded, exactly: scores_h = q_h . (W_k,h x + b_k,h) = (W_k,h^T q_h) . x + const
 * (the constant cancels in the softmax), and sum_n a_n (W_v,h x_n + b_v,h) = W_v,h (sum_n a_n x_n)
 * + b_v,h (the weights sum to 1). So keys and values are never computed per token: the cost per
 * token is one D-vector product per head instead of a D x 2D projection. The key bias thus gets
 * no gradient and is not materialised.
 */
import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../runtime/rng.js';
import { truncNormal } from './grid.js';

export interface ProbeFamily {
  name: string;
  /** Stacked parameters for P probes. */
  init(p: number, dim: number, classes: number, rng: Rng): Record<string, tf.Tensor>;
  /** x: [B, D] (linear) or [B, N, D] (attentive) -> logits [P, B, C]. */
  logits(params: Record<string, tf.Tensor>, x: tf.Tensor): tf.Tensor;
}

export const linearFamily: ProbeFamily = {
  name: 'linear',
  init: (p, d, c, rng) => ({ weight: truncNormal([p, d, c], rng), bias: tf.zeros([p, 1, c]) }),
  logits(params, x) {
    const [p, d, c] = params.weight.shape;
    const w2 = tf.transpose(params.weight, [1, 0, 2]).reshape([d!, p! * c!]); // [D, P*C]
    const y = tf.matMul(x as tf.Tensor2D, w2 as tf.Tensor2D).reshape([-1, p!, c!]); // [B, P, C]
    return tf.add(tf.transpose(y, [1, 0, 2]), params.bias);
  },
};

/** Heads of 64 channels (eval spec 1.2); features whose width is not a multiple of 64 (raw pixel patches) get one head. */
export const attentiveHeads = (d: number): number => (d % 64 === 0 ? d / 64 : 1);

export const attentiveFamily: ProbeFamily = {
  name: 'attentive',
  init(p, d, c, rng) {
    return {
      query: truncNormal([p, d], rng),
      kv_weight: truncNormal([p, d, 2 * d], rng), // x -> [k, v], stored in x W form (in x out)
      v_bias: tf.zeros([p, 1, d]),
      out_weight: truncNormal([p, d, c], rng),
      out_bias: tf.zeros([p, 1, c]),
    };
  },
  logits(params, x) {
    const [b, n, d] = x.shape as number[];
    const p = params.query.shape[0]!;
    const heads = attentiveHeads(d);
    const hd = d / heads;
    const wk = params.kv_weight.slice([0, 0, 0], [-1, -1, d]); // [P, D, D]
    const wv = params.kv_weight.slice([0, 0, d], [-1, -1, d]);
    // u[p, :, h] = W_k[p][:, h block] q[p][h block] -> [P, D, H]
    const u = tf.sum(tf.mul(wk.reshape([p, d, heads, hd]), params.query.reshape([p, 1, heads, hd])), -1);
    const u2 = tf.transpose(u, [1, 0, 2]).reshape([d, p * heads]);
    const scores = tf.matMul(x.reshape([b * n, d]) as tf.Tensor2D, u2 as tf.Tensor2D).reshape([b, n, p * heads]);
    const attn = tf.softmax(tf.mul(tf.transpose(scores, [0, 2, 1]), 1 / Math.sqrt(hd))); // [B, P*H, N]
    const pooled = tf.matMul(attn as tf.Tensor3D, x as tf.Tensor3D); // [B, P*H, D]
    // Per probe and head: pooled_{p,h} W_v[p][:, h block] -> [P*H, B, hd]
    const pooledPH = tf.transpose(pooled, [1, 0, 2]); // [P*H, B, D]
    const wvPH = tf.transpose(wv.reshape([p, d, heads, hd]), [0, 2, 1, 3]).reshape([p * heads, d, hd]);
    const heads3 = tf.matMul(pooledPH as tf.Tensor3D, wvPH as tf.Tensor3D); // [P*H, B, hd]
    const o = tf.add(tf.transpose(heads3.reshape([p, heads, b, hd]), [0, 2, 1, 3]).reshape([p, b, d]), params.v_bias);
    return tf.add(tf.matMul(o as tf.Tensor3D, params.out_weight as tf.Tensor3D), params.out_bias); // [P, B, C]
  },
};
