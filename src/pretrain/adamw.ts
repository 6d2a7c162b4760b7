/**
 * AdamW with PyTorch's semantics (decoupled decay p <- p (1 - lr wd), bias-corrected moments,
 * eps added to the corrected second-moment root) and per-parameter lr / wd multipliers.
 */
import * as tf from '@tensorflow/tfjs';
import type { ParamGroup } from './schedules.js';

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

export function initAdamW(params: Record<string, tf.Variable>, names: string[]): AdamWState {
  const m: Record<string, tf.Variable> = {};
  const v: Record<string, tf.Variable> = {};
  for (const n of names) {
    m[n] = tf.variable(tf.zerosLike(params[n]), false);
    v[n] = tf.variable(tf.zerosLike(params[n]), false);
  }
  return { steps: 0, m, v };
}

/** One AdamW update of `params` in place. */
export function adamwStep(
  params: Record<string, tf.Variable>, grads: Record<string, tf.Tensor>, state: AdamWState, cfg: AdamWConfig,
  lr: number, weightDecay: number, group: (name: string) => ParamGroup,
): void {
  const t = state.steps + 1;
  const bc1 = 1 - Math.pow(cfg.beta1, t);
  const bc2Sqrt = Math.sqrt(1 - Math.pow(cfg.beta2, t));
  for (const name of Object.keys(state.m)) {
    const g = grads[name];
    if (!g) continue;
    const { lrMult, wdMult } = group(name);
    const lrP = lr * lrMult;
    tf.tidy(() => {
      const p = params[name];
      const m = tf.add(tf.mul(state.m[name], cfg.beta1), tf.mul(g, 1 - cfg.beta1));
      const v = tf.add(tf.mul(state.v[name], cfg.beta2), tf.mul(tf.mul(g, g), 1 - cfg.beta2));
      state.m[name].assign(m);
      state.v[name].assign(v);
      if (lrP === 0) return;
      const decayed = tf.mul(p, 1 - lrP * weightDecay * wdMult);
      const denom = tf.add(tf.div(tf.sqrt(v), bc2Sqrt), cfg.eps);
      p.assign(tf.sub(decayed, tf.mul(tf.div(m, denom), lrP / bc1)));
    });
  }
  state.steps = t;
}
