/** Schedules, parameter groups, AdamW and the EMA update against the spec's formulas (8.1-8.3). */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { adamwStep, initAdamW } from '../../src/runtime/adamw.js';
import { resolvePretrainConfig } from '../../src/pretrain/config.js';
import { scheduleValue, studentParamGroup } from '../../src/pretrain/schedules.js';
import { schedulesAt } from '../../src/pretrain/step.js';

describe('schedules (spec 8.2)', () => {
  const lr = { start: 0, base: 1e-3, final: 0, warmupSteps: 50_000, totalSteps: 500_000, truncation: 0.8 };

  it('warmup is linear with both ends included, then a truncated cosine', () => {
    expect(scheduleValue(lr, 0)).toBe(0);
    expect(scheduleValue(lr, 49_999)).toBeCloseTo(1e-3, 15);
    expect(scheduleValue(lr, 25_000)).toBeCloseTo((1e-3 * 25_000) / 49_999, 15);
    expect(scheduleValue(lr, 50_000)).toBeCloseTo(1e-3, 15);
    // i = 225k of L = 450k: cos(pi * 0.8 * 0.5) = cos(0.4 pi)
    expect(scheduleValue(lr, 275_000)).toBeCloseTo(0.5e-3 * (1 + Math.cos(0.4 * Math.PI)), 15);
    // The spec's end value: f + 0.0955 (b - f) at the last step.
    expect(scheduleValue(lr, 499_999)).toBeCloseTo(9.55e-5, 6);
    expect(scheduleValue(lr, 500_000)).toBe(0);
  });

  it('teacher momentum is 1 - lr at every step; clustering lr is half the lr', () => {
    const cfg = resolvePretrainConfig('vit-l14', { steps: 1000 });
    for (const t of [0, 10, 99, 100, 500, 999]) {
      const s = schedulesAt(cfg, 1000, t);
      expect(s.momentum).toBeCloseTo(1 - s.lr, 12);
      expect(s.clusterLr).toBeCloseTo(s.lr / 2, 12);
    }
  });
});

describe('parameter groups (spec 8.1)', () => {
  it('patch-embed x0.2 lr, biases and norms decay multipliers, frozen RoPE', () => {
    expect(studentParamGroup('patch_embed.weight')).toEqual({ lrMult: 0.2, wdMult: 1 });
    expect(studentParamGroup('patch_embed.bias')).toEqual({ lrMult: 0.2, wdMult: 0 });
    expect(studentParamGroup('encoder.blocks.3.residual1.norm.weight')).toEqual({ lrMult: 1, wdMult: 0.1 });
    expect(studentParamGroup('decoder.blocks.0.residual2.norm.weight')).toEqual({ lrMult: 1, wdMult: 0.1 });
    expect(studentParamGroup('encoder.blocks.0.residual1.fn.rope.freqs').lrMult).toBe(0);
    for (const n of [
      'registers',
      'mask_token',
      'encoder.blocks.0.residual1.fn.q_proj.weight',
      'head.last_layer.weight_g',
      'head.last_layer.weight_v',
    ]) {
      expect(studentParamGroup(n)).toEqual({ lrMult: 1, wdMult: 1 });
    }
  });
});

describe('AdamW', () => {
  it('matches the PyTorch update computed by hand over two steps, with group multipliers', () => {
    const p0 = [0.5, -1.0, 2.0];
    const params = { w: tf.variable(tf.tensor1d(p0)) };
    const state = initAdamW(params, ['w']);
    const cfg = { beta1: 0.9, beta2: 0.95, eps: 1e-8 };
    const lr = 0.1,
      wd = 0.2,
      lrMult = 0.5,
      wdMult = 0.1;
    const gs = [
      [0.1, -0.2, 0.3],
      [0.05, 0.4, -0.1],
    ];
    let m = [0, 0, 0],
      v = [0, 0, 0],
      p = [...p0];
    gs.forEach((g, k) => {
      const t = k + 1;
      tf.tidy(() => adamwStep(params, { w: tf.tensor1d(g) }, state, cfg, () => ({ lr: lr * lrMult, weightDecay: wd * wdMult })));
      const lrP = lr * lrMult;
      p = p.map((x, i) => {
        const decayed = x * (1 - lrP * wd * wdMult);
        m[i] = 0.9 * m[i] + 0.1 * g[i];
        v[i] = 0.95 * v[i] + 0.05 * g[i] ** 2;
        const denom = Math.sqrt(v[i]) / Math.sqrt(1 - 0.95 ** t) + 1e-8;
        return decayed - (lrP / (1 - 0.9 ** t)) * (m[i] / denom);
      });
    });
    const got = params.w.dataSync();
    p.forEach((x, i) => expect(got[i]).toBeCloseTo(x, 6));
    expect(state.steps).toBe(2);
  });
});
