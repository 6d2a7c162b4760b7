/**
 * AdamW with PyTorch's semantics (decoupled decay p <- p (1 - lr wd), bias-corrected moments,
 * eps added to the corrected second-moment root). The one optimiser of the project: pretraining
 * gives each parameter a scalar lr and weight decay (its parameter group), the probe grids give
 * tensors that broadcast over their leading probe axis (one lr and wd per stacked probe).
 */
import * as tf from '@tensorflow/tfjs';

export interface AdamWConfig {
  beta1: number;
  beta2: number;
  eps: number;
}

export interface AdamWState {
  /** Number of steps taken (the bias correction uses t = steps + 1 for the next one). */
  steps: number;
  m: Record<string, tf.Variable>;
  v: Record<string, tf.Variable>;
}

/** A parameter's learning rate and weight decay for this step: numbers, or tensors that broadcast. */
export interface AdamWHyper {
  lr: number | tf.Tensor;
  weightDecay: number | tf.Tensor;
}

export function initAdamW(params: Record<string, tf.Variable>, names: string[] = Object.keys(params)): AdamWState {
  const m: Record<string, tf.Variable> = {};
  const v: Record<string, tf.Variable> = {};
  for (const n of names) {
    const zeros = tf.zerosLike(params[n]);
    m[n] = tf.variable(zeros, false);
    v[n] = tf.variable(zeros, false);
    zeros.dispose(); // the variables hold their own references
  }
  return { steps: 0, m, v };
}

/** One AdamW update of `params` in place; parameters without a gradient are left alone. */
export function adamwStep(
  params: Record<string, tf.Variable>,
  grads: Record<string, tf.Tensor>,
  state: AdamWState,
  cfg: AdamWConfig,
  hyper: (name: string) => AdamWHyper,
): void {
  const t = state.steps + 1;
  const bc1 = 1 - cfg.beta1 ** t;
  const bc2Sqrt = Math.sqrt(1 - cfg.beta2 ** t);
  for (const name of Object.keys(state.m)) {
    const g = grads[name];
    if (!g) continue;
    tf.tidy(() => {
      const { lr, weightDecay } = hyper(name);
      const p = params[name];
      const m = tf.add(tf.mul(state.m[name], cfg.beta1), tf.mul(g, 1 - cfg.beta1));
      const v = tf.add(tf.mul(state.v[name], cfg.beta2), tf.mul(tf.mul(g, g), 1 - cfg.beta2));
      state.m[name].assign(m);
      state.v[name].assign(v);
      if (lr === 0) return;
      const denom = tf.add(tf.div(tf.sqrt(v), bc2Sqrt), cfg.eps);
      if (typeof lr === 'number' && typeof weightDecay === 'number') {
        p.assign(tf.sub(tf.mul(p, 1 - lr * weightDecay), tf.mul(tf.div(m, denom), lr / bc1)));
      } else {
        p.assign(tf.sub(tf.mul(p, tf.sub(1, tf.mul(lr, weightDecay))), tf.mul(tf.div(m, denom), tf.div(lr, bc1))));
      }
    });
  }
  state.steps = t;
}
