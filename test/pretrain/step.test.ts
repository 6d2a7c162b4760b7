/** Gradient flow, the EMA update and tensor hygiene of one training step (spec 4, 5.3, 8.3, 8.4). */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { CLUSTER_B, CLUSTER_W, onlineClustering, sinkhornKnopp } from '../../src/model/heads.js';
import { l2Normalize } from '../../src/model/layers.js';
import { disposeState, initState, schedulesAt, trainStep } from '../../src/pretrain/step.js';
import { maxAbsDiff } from '../fixture.js';
import { randomBatch, tinyConfig } from './helpers.js';

const snapshot = (vars: Record<string, tf.Tensor>) =>
  Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, Float32Array.from(v.dataSync())]));

describe('one training step', () => {
  it('the teacher only moves by the EMA of the updated student (no gradient reaches it)', async () => {
    const cfg = tinyConfig({ warmupFraction: 0, lr: 1e-2 });
    const state = initState(cfg);
    const teacherBefore = snapshot(state.teacher);
    await trainStep(state, randomBatch(cfg, 1), cfg, 10);
    const m = schedulesAt(cfg, 10, 0).momentum;
    expect(m).toBeLessThan(1);
    let moved = 0;
    for (const [name, tv] of Object.entries(state.teacher)) {
      const s = state.student[name].dataSync();
      const expected = teacherBefore[name].map((x, i) => m * x + (1 - m) * s[i]);
      expect(maxAbsDiff(tv.dataSync(), expected), name).toBeLessThan(1e-6);
      moved = Math.max(moved, maxAbsDiff(tv.dataSync(), teacherBefore[name]));
    }
    expect(moved).toBeGreaterThan(0);
    disposeState(state);
  });

  it('the clustering loss reaches only the prototypes: the student update does not depend on it', async () => {
    const run = async (clusterLr: number) => {
      const cfg = tinyConfig({ warmupFraction: 0, clusterLr });
      const state = initState(cfg);
      await trainStep(state, randomBatch(cfg, 2), cfg, 10);
      const out = { student: snapshot(state.student), clustering: snapshot(state.clustering) };
      disposeState(state);
      return out;
    };
    const a = await run(1e-6);
    const b = await run(1e-1);
    for (const name of Object.keys(a.student)) expect(maxAbsDiff(a.student[name], b.student[name]), name).toBe(0);
    expect(maxAbsDiff(a.clustering[CLUSTER_W], b.clustering[CLUSTER_W])).toBeGreaterThan(1e-4);
  });

  it('the written-out clustering gradient equals autodiff of the clustering loss w.r.t. C and b', () => {
    const cfg = tinyConfig();
    const state = initState(cfg);
    tf.tidy(() => {
      const x = tf.randomNormal([49, 16, 64], 0, 1, 'float32', 5);
      const sk = { temperature: 0.06, iterations: 3, positionwise: true };
      const res = onlineClustering(state.clustering, x, sk, 0.12);
      const targets = res.assignments.reshape([-1, 32]);
      const xhat = l2Normalize(x, 1e-7).reshape([-1, 64]);
      const lossOf = (w: tf.Tensor, b: tf.Tensor) => {
        const logits = tf.add(tf.matMul(xhat, w, false, true), b);
        return tf.mean(tf.neg(tf.sum(tf.mul(targets, tf.logSoftmax(tf.div(logits, 0.12))), -1)));
      };
      const [gw, gb] = tf.grads(lossOf)([state.clustering[CLUSTER_W], state.clustering[CLUSTER_B]]);
      expect(maxAbsDiff(res.grads[CLUSTER_W].dataSync(), gw.dataSync())).toBeLessThan(1e-5);
      expect(maxAbsDiff(res.grads[CLUSTER_B].dataSync(), gb.dataSync())).toBeLessThan(1e-5);
      expect(
        Math.abs(res.loss.dataSync()[0] - lossOf(state.clustering[CLUSTER_W], state.clustering[CLUSTER_B]).dataSync()[0]),
      ).toBeLessThan(1e-5);
      // And the targets are the SK assignments of exactly those logits.
      const logits = tf.add(tf.matMul(xhat, state.clustering[CLUSTER_W], false, true), state.clustering[CLUSTER_B]).reshape([49, 16, 32]);
      expect(maxAbsDiff(sinkhornKnopp(logits, sk).dataSync(), res.assignments.dataSync())).toBeLessThan(1e-5);
    });
    disposeState(state);
  });

  it('initState + disposeState leaves no tensor behind', () => {
    const before = tf.memory().numTensors;
    disposeState(initState(tinyConfig()));
    expect(tf.memory().numTensors).toBe(before);
  });

  it('does not leak tensors: the count after step 3 equals the count after step 10', async () => {
    const cfg = tinyConfig({ dropPath: 0.2 });
    const state = initState(cfg);
    const counts: number[] = [];
    for (let t = 0; t < 10; t++) {
      await trainStep(state, randomBatch(cfg, t), cfg, 10);
      counts.push(tf.memory().numTensors);
    }
    expect(counts[9]).toBe(counts[2]);
    disposeState(state);
  });
});
