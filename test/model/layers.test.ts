/**
 * The wasm-friendly layers compute what the plain tfjs ops compute, values and gradients:
 * custom-gradient matmuls, bias, rotate-half RoPE, and block-diagonal grouped attention.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { addBias, applyRope, linear2d, matMul2d, scaledDotProductAttention } from '../../src/model/layers.js';
import { maxAbsDiff } from '../fixture.js';

const close = (a: tf.Tensor, b: tf.Tensor, tol = 1e-4) => expect(maxAbsDiff(a.dataSync(), b.dataSync())).toBeLessThan(tol);

describe('layers vs plain tfjs ops', () => {
  it('linear2d, matMul2d and addBias: values and gradients', () => {
    tf.tidy(() => {
      const x = tf.randomNormal([7, 5], 0, 1, 'float32', 1) as tf.Tensor2D;
      const w = tf.randomNormal([3, 5], 0, 1, 'float32', 2) as tf.Tensor2D;
      const m = tf.randomNormal([5, 4], 0, 1, 'float32', 3) as tf.Tensor2D;
      const b = tf.randomNormal([3], 0, 1, 'float32', 4) as tf.Tensor1D;
      const up = tf.randomNormal([7, 3], 0, 1, 'float32', 5);
      const ours = tf.grads((x_: tf.Tensor, w_: tf.Tensor, b_: tf.Tensor) =>
        tf.sum(tf.mul(addBias(linear2d(x_ as tf.Tensor2D, w_ as tf.Tensor2D), b_ as tf.Tensor1D), up)),
      );
      const plain = tf.grads((x_: tf.Tensor, w_: tf.Tensor, b_: tf.Tensor) =>
        tf.sum(tf.mul(tf.add(tf.matMul(x_, w_, false, true), b_), up)),
      );
      ours([x, w, b]).forEach((g, i) => close(g, plain([x, w, b])[i]));
      const up2 = tf.randomNormal([7, 4], 0, 1, 'float32', 6);
      const g1 = tf.grads((a: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(matMul2d(a as tf.Tensor2D, c as tf.Tensor2D), up2)))([x, m]);
      const g2 = tf.grads((a: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(tf.matMul(a, c), up2)))([x, m]);
      g1.forEach((g, i) => close(g, g2[i]));
    });
  });

  it('rotate-half RoPE (both pairings): gradient equals the split/concat formulation', () => {
    tf.tidy(() => {
      const x = tf.randomNormal([2, 3, 5, 8], 0, 1, 'float32', 7);
      const angle = tf.randomUniform([2, 1, 5, 8], 0, 6, 'float32', 8);
      const up = tf.randomNormal([2, 3, 5, 8], 0, 1, 'float32', 9);
      const rot = (t: tf.Tensor) => {
        const [a, b] = tf.split(t, 2, -1);
        return tf.concat([tf.neg(b), a], -1);
      };
      const refs = {
        reference: (t: tf.Tensor) => tf.add(tf.mul(t, tf.cos(angle)), tf.mul(rot(t), tf.sin(angle))),
        axial: (t: tf.Tensor) => {
          const [u, v] = tf.split(t, 2, -1);
          return tf.add(tf.mul(t, tf.cos(angle)), tf.mul(tf.concat([rot(u), rot(v)], -1), tf.sin(angle)));
        },
      };
      for (const mode of ['reference', 'axial'] as const) {
        close(applyRope(x, tf.cos(angle), tf.sin(angle), mode), refs[mode](x), 1e-5);
        const g1 = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(applyRope(t, tf.cos(angle), tf.sin(angle), mode), up)))(x);
        const g2 = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(refs[mode](t), up)))(x);
        close(g1, g2, 1e-5);
      }
    });
  });

  it('grouped block-diagonal attention equals per-pair softmax attention, with gradients', () => {
    tf.tidy(() => {
      // 6 x 2 = 12 pairs of 9 queries x 13 keys: several pairs per group.
      const q = tf.randomNormal([6, 2, 9, 16], 0, 1, 'float32', 10);
      const k = tf.randomNormal([6, 2, 13, 16], 0, 1, 'float32', 11);
      const v = tf.randomNormal([6, 2, 13, 16], 0, 1, 'float32', 12);
      const up = tf.randomNormal([6, 2, 9, 16], 0, 1, 'float32', 13);
      const plain = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.matMul(tf.softmax(tf.mul(tf.matMul(a, b, false, true), 0.25)), c);
      close(scaledDotProductAttention(q, k, v), plain(q, k, v), 1e-5);
      const g1 = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(scaledDotProductAttention(a, b, c), up)))([q, k, v]);
      const g2 = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(plain(a, b, c), up)))([q, k, v]);
      g1.forEach((g, i) => close(g, g2[i], 1e-4));
    });
  });
});
