/**
 * AdamW with PyTorch's semantics (decoupled decay p <- p (1 - lr wd), bias-corrected moments,
 * eps added to the corrected second-moment root). The one optimiser of the project: pretraining
 * gives each parameter a scalar lr and weight decay (its parameter group), the probe grids give
 * tensors that broadcast over their leading probe axis (one lr and wd per stacked probe).
 */
import * as tf from '@tensorflow/tfjs';
import { ADAM_MOMENT, ADAM_PARAM, webgpuKernelsActive } from './webgpu-kernels.js';

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

/** The update below in 3 kernels on webgpu (webgpu-kernels.ts: each moment, then the parameter) instead of ~12. */
function fusedUpdate(
  p: tf.Variable,
  g: tf.Tensor,
  mVar: tf.Variable,
  vVar: tf.Variable,
  cfg: AdamWConfig,
  s: { lr: number; weightDecay: number; bc1: number; bc2Sqrt: number },
): void {
  const moment = (x: tf.Tensor, beta: number, squared: boolean) =>
    tf.engine().runKernel(ADAM_MOMENT, { m: x, g }, { beta, squared } as unknown as tf.NamedAttrMap) as tf.Tensor;
  const m = moment(mVar, cfg.beta1, false);
  const v = moment(vVar, cfg.beta2, true);
  mVar.assign(m);
  vVar.assign(v);
  if (s.lr === 0) return;
  const attrs = { decay: 1 - s.lr * s.weightDecay, stepSize: s.lr / s.bc1, bc2Sqrt: s.bc2Sqrt, eps: cfg.eps };
  p.assign(tf.engine().runKernel(ADAM_PARAM, { p, m, v }, attrs) as tf.Tensor);
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
  const fused = webgpuKernelsActive();
  for (const name of Object.keys(state.m)) {
    const g = grads[name];
    if (!g) continue;
    tf.tidy(() => {
      const { lr, weightDecay } = hyper(name);
      const p = params[name];
      if (fused && typeof lr === 'number' && typeof weightDecay === 'number') {
        fusedUpdate(p, g, state.m[name], state.v[name], cfg, { lr, weightDecay, bc1, bc2Sqrt });
        return;
      }
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
