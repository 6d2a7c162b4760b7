/** Sinkhorn-Knopp properties on random logits (method spec 5.2). */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { sinkhornKnopp } from '../../src/model/heads.js';

const N = 16,
  B = 64,
  K = 32;

/** Logits with a strong per-position bias, so the plain softmax is far from balanced per position. */
function biasedLogits(): tf.Tensor {
  return tf.tidy(() => tf.add(tf.randomNormal([N, B, K], 0, 0.5, 'float32', 3), tf.randomNormal([N, 1, K], 0, 1, 'float32', 4)));
}

/** Max over positions and prototypes of |per-position marginal * K - 1|. */
function positionMarginalError(a: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(tf.mul(tf.mean(a, 1), K), 1))).dataSync()[0]);
}

function pooledMarginalError(a: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(tf.mul(tf.mean(a.reshape([N * B, K]), 0), K), 1))).dataSync()[0]);
}

describe('Sinkhorn-Knopp', () => {
  it('both variants return row-stochastic assignments', () => {
    tf.tidy(() => {
      const l = biasedLogits();
      for (const positionwise of [true, false]) {
        const a = sinkhornKnopp(l, { temperature: 0.06, iterations: 3, positionwise });
        const rows = tf.sum(a, -1).dataSync();
        for (const r of rows) expect(Math.abs(r - 1)).toBeLessThan(1e-5);
        expect(tf.min(a).dataSync()[0]).toBeGreaterThanOrEqual(0);
      }
    });
  });

  it('position-wise marginals are much closer to uniform than the softmax and converge with iterations', () => {
    tf.tidy(() => {
      const l = biasedLogits();
      const softmaxErr = positionMarginalError(tf.softmax(tf.div(l, 0.06)));
      const errs = [1, 3, 10, 30].map((it) =>
        positionMarginalError(sinkhornKnopp(l, { temperature: 0.06, iterations: it, positionwise: true })),
      );
      expect(errs[1]).toBeLessThan(softmaxErr / 3);
      for (let i = 1; i < errs.length; i++) expect(errs[i]).toBeLessThan(errs[i - 1]);
      expect(errs[3]).toBeLessThan(0.05);
    });
  });

  it('the standard variant balances only the pooled marginals, not each position', () => {
    tf.tidy(() => {
      const l = biasedLogits();
      const std = sinkhornKnopp(l, { temperature: 0.06, iterations: 30, positionwise: false });
      const pw = sinkhornKnopp(l, { temperature: 0.06, iterations: 30, positionwise: true });
      expect(pooledMarginalError(std)).toBeLessThan(pooledMarginalError(tf.softmax(tf.div(l, 0.06))) / 5);
      expect(positionMarginalError(std)).toBeGreaterThan(10 * positionMarginalError(pw));
    });
  });
});
