/**
 * Student head and online clustering head (method spec sections 5 and 7).
 * Head parameters keep the reference names: `head.last_layer.weight_{g,v}` (student) and
 * `clustering.layer.{weight,bias}` (the reference's `teacher.head.layer.*`).
 */
import * as tf from '@tensorflow/tfjs';
import { batchedProductsFast } from '../runtime/forms.js';
import type { Rng } from '../runtime/rng.js';
import type { Params } from './capi.js';
import { addBias, l2Normalize, linear2d } from './layers.js';

export const STUDENT_HEAD_G = 'head.last_layer.weight_g';
export const STUDENT_HEAD_V = 'head.last_layer.weight_v';
export const CLUSTER_W = 'clustering.layer.weight';
export const CLUSTER_B = 'clustering.layer.bias';

/** Student head init: v ~ N(0, 0.02^2) (torch's trunc_normal_ cuts at +-2, i.e. 100 std), g = 1. */
export function initStudentHead(dim: number, k: number, rng: Rng): Params {
  const v = new Float32Array(k * dim);
  for (let i = 0; i < v.length; i++) v[i] = 0.02 * rng.normal();
  return { [STUDENT_HEAD_G]: tf.ones([k, 1]), [STUDENT_HEAD_V]: tf.tensor2d(v, [k, dim]) };
}

/** Clustering head init: prototypes N(0, 1), bias 0 (spec 5.1). */
export function initClusteringHead(dim: number, k: number, rng: Rng): Params {
  const w = new Float32Array(k * dim);
  for (let i = 0; i < w.length; i++) w[i] = rng.normal();
  return { [CLUSTER_W]: tf.tensor2d(w, [k, dim]), [CLUSTER_B]: tf.zeros([k]) };
}

/** Weight-normalised cosine head: normalize(z) @ (g v / ||v||)^T, z [M, d] -> [M, K]. */
export function studentHeadLogits(p: Params, z: tf.Tensor): tf.Tensor {
  const v = p[STUDENT_HEAD_V];
  const vNorm = tf.sqrt(tf.sum(tf.mul(v, v), 1, true));
  const w = tf.mul(v, tf.div(p[STUDENT_HEAD_G], tf.add(vNorm, 1e-8)));
  return linear2d(l2Normalize(z, 1e-12) as tf.Tensor2D, w as tf.Tensor2D);
}

/** Clustering logits C x_hat + b for teacher tokens x [..., d] (x_hat = x / max(||x||, 1e-7)). */
export function clusteringLogits(p: Params, x: tf.Tensor): tf.Tensor {
  const shape = x.shape;
  const xn = l2Normalize(x, 1e-7).reshape([-1, shape[shape.length - 1]]) as tf.Tensor2D;
  return prototypeLogits(p, xn).reshape([...shape.slice(0, -1), p[CLUSTER_W].shape[0]]);
}

/** C x_hat + b for already normalised tokens x_hat [M, d] -> [M, K]. */
function prototypeLogits(p: Params, xhat: tf.Tensor2D): tf.Tensor2D {
  return addBias(linear2d(xhat, p[CLUSTER_W] as tf.Tensor2D), p[CLUSTER_B] as tf.Tensor1D) as tf.Tensor2D;
}

export interface SinkhornOptions {
  temperature: number;
  iterations: number;
  /** Position-wise (CAPI, default): balance prototypes over the images at each position. */
  positionwise: boolean;
}

/**
 * Sinkhorn-Knopp on position-major logits [N, B, K] (spec 5.2). Returns row-stochastic soft
 * assignments of the same shape. The column max shift (+50) cancels in the first column step.
 */
export function sinkhornKnopp(logits: tf.Tensor, opts: SinkhornOptions): tf.Tensor {
  return tf.tidy(() => {
    const [n, b, k] = logits.shape;
    // Columns: per position over the images (positionwise) or over all N*B tokens (standard).
    let m = opts.positionwise ? logits : logits.reshape([1, n! * b!, k!]);
    m = tf.div(m, opts.temperature);
    let q = tf.exp(tf.add(tf.sub(m, tf.max(m, 1, true)), 50));
    for (let i = 0; i < opts.iterations; i++) {
      q = tf.div(q, tf.add(sumKeepDims(q, 1), 1e-8));
      q = tf.div(q, tf.add(sumKeepDims(q, 2), 1e-8));
    }
    return q.reshape([n!, b!, k!]);
  });
}

/**
 * sum over axis 1 or 2 of q [N, B, K], dims kept. Where products are fast, as a product with a
 * vector of ones: wasm sums a middle axis by a transpose first, 9.5 ms of the fmnist-tiny step's
 * [49, 256, 256] per call against ~1 ms with OpenBLAS on both cores (webgpu: one dispatch, not two).
 */
function sumKeepDims(q: tf.Tensor, axis: 1 | 2): tf.Tensor {
  if (!batchedProductsFast()) return tf.sum(q, axis, true);
  const [, b, k] = q.shape as [number, number, number];
  return axis === 1 ? tf.matMul(tf.ones([1, 1, b]), q) : tf.matMul(q, tf.ones([1, k, 1]));
}

/** Per-row cross-entropy -sum_k targets * log softmax(logits / temperature), [M, K] -> [M]. */
export function softCrossEntropy(logits: tf.Tensor, targets: tf.Tensor, temperature: number): tf.Tensor {
  return tf.neg(tf.sum(tf.mul(targets, tf.logSoftmax(tf.div(logits, temperature))), -1));
}

/** Mean entropy of the rows of a probability matrix [M, K] (0 log 0 = 0). */
export function meanEntropy(p: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const safe = tf.where(tf.greater(p, 0), tf.log(tf.maximum(p, 1e-38)), tf.zerosLike(p));
    return tf.neg(tf.mean(tf.sum(tf.mul(p, safe), -1)));
  });
}

export interface ClusteringResult {
  /** Soft assignments [N, B, K] (position-major), constants for the student. */
  assignments: tf.Tensor;
  loss: tf.Tensor;
  /** Gradients of the loss w.r.t. the prototypes and their bias (nothing else receives it). */
  grads: Record<string, tf.Tensor>;
}

/**
 * Online clustering of teacher tokens x [N, B, d] (spec 5): logits, SK targets, the clustering
 * loss mean(-sum A log softmax(l / tau_c)) and its gradient w.r.t. C and b_c, written out:
 * dL/dl = (softmax(l / tau_c) * sum_k A - A) / (tau_c M) over the M = N B tokens.
 */
export function onlineClustering(p: Params, x: tf.Tensor, sk: SinkhornOptions, clusterTemp: number): ClusteringResult {
  return tf.tidy(() => {
    const [n, b, d] = x.shape;
    const k = p[CLUSTER_W].shape[0];
    const m = n! * b!;
    const xhat = l2Normalize(x, 1e-7).reshape([m, d!]) as tf.Tensor2D;
    const logits = prototypeLogits(p, xhat); // [M, K]
    const assignments = sinkhornKnopp(logits.reshape([n!, b!, k]), sk);
    const a = assignments.reshape([m, k]);
    const z = tf.div(logits, clusterTemp);
    const loss = tf.mean(tf.neg(tf.sum(tf.mul(a, tf.logSoftmax(z)), -1)));
    const dz = tf.div(tf.sub(tf.mul(tf.softmax(z), tf.sum(a, -1, true)), a), clusterTemp * m) as tf.Tensor2D;
    const dw = tf.matMul(tf.transpose(dz), xhat); // [K, d]
    const db = tf.matMul(tf.ones([1, m]) as tf.Tensor2D, dz).reshape([k]);
    return { assignments, loss, grads: { [CLUSTER_W]: dw, [CLUSTER_B]: db } };
  });
}
