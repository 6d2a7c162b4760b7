/**
 * Components against the reference fixture's raw arrays (max abs error < 1e-4): RoPE from the
 * recorded angles, the frequency formula, Sinkhorn-Knopp from the recorded logits, both losses
 * from logits and targets.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { clusteringLogits, sinkhornKnopp, softCrossEntropy } from '../../src/model/heads.js';
import { applyRope, ropeFrequencies } from '../../src/model/layers.js';
import { HAVE_FIXTURE, maxAbsDiff, readF32, readF64 } from '../fixture.js';
import { loadReferenceParams } from './reference-model.js';

const TOL = 1e-4;

describe.skipIf(!HAVE_FIXTURE)('components vs reference fixture', () => {
  it('RoPE frequency init reproduces rope_freqs_init_hd16 and _hd64', () => {
    expect(maxAbsDiff(ropeFrequencies(16), readF32('rope_freqs_init_hd16'))).toBeLessThan(1e-5);
    expect(maxAbsDiff(ropeFrequencies(64), readF32('rope_freqs_init_hd64'))).toBeLessThan(1e-5);
  });

  it('RoPE rotation (reference pairing) from the recorded angles: q and k of encoder block 1', () => {
    tf.tidy(() => {
      const angle = tf.tensor(readF32('eval_enc0_rope_angle'), [2, 1, 24, 16]);
      for (const which of ['q', 'k']) {
        const x = tf.tensor(readF32(`eval_enc0_rope_${which}_in`), [2, 4, 24, 16]);
        const out = applyRope(x, tf.cos(angle), tf.sin(angle), 'reference');
        expect(maxAbsDiff(out.dataSync(), readF32(`eval_enc0_rope_${which}_out`))).toBeLessThan(TOL);
      }
    });
  });

  it('RoPE in the predictor: queries at prediction coords, keys at context coords', () => {
    const p = loadReferenceParams();
    tf.tidy(() => {
      const freqs = p['decoder.blocks.0.residual1.fn.rope.freqs'] as tf.Tensor2D;
      const cases = [
        ['q', 'pre_coords_dec', 5],
        ['k', 'pre_coords_enc', 14],
      ] as const;
      for (const [which, coordsName, n] of cases) {
        const coords = tf.tensor2d(readF32(coordsName), [2 * n, 2]);
        const angle = tf.matMul(coords, freqs).reshape([2, 1, n, 16]);
        const x = tf.tensor(readF32(`pre_dec0_rope_${which}_in`), [2, 4, n, 16]);
        const out = applyRope(x, tf.cos(angle), tf.sin(angle), 'reference');
        expect(maxAbsDiff(out.dataSync(), readF32(`pre_dec0_rope_${which}_out`))).toBeLessThan(TOL);
      }
    });
    Object.values(p).forEach((t) => t.dispose());
  });

  it('with the init frequencies the axial RoPE variant is a rotation (norm-preserving); the reference pairing is not', () => {
    tf.tidy(() => {
      const coords = tf.tensor2d(readF32('eval_coords'), [48, 2]);
      const angle = tf.matMul(coords, tf.tensor2d(ropeFrequencies(16), [2, 16])).reshape([2, 1, 24, 16]);
      const x = tf.tensor(readF32('eval_enc0_rope_q_in'), [2, 4, 24, 16]);
      const norm = (t: tf.Tensor) => tf.norm(t, 'euclidean', -1).dataSync();
      const axial = applyRope(x, tf.cos(angle), tf.sin(angle), 'axial');
      const ref = applyRope(x, tf.cos(angle), tf.sin(angle), 'reference');
      expect(maxAbsDiff(norm(axial), norm(x))).toBeLessThan(1e-4);
      expect(maxAbsDiff(norm(ref), norm(x))).toBeGreaterThan(1e-2);
    });
  });

  it('Sinkhorn-Knopp (position-wise and standard) from the recorded logits', () => {
    tf.tidy(() => {
      const logits = tf.tensor(readF32('clustering_logits'), [16, 2, 32]);
      const pw = sinkhornKnopp(logits, { temperature: 0.06, iterations: 3, positionwise: true });
      expect(maxAbsDiff(pw.dataSync(), readF32('clustering_assignments'))).toBeLessThan(TOL);
      const std = sinkhornKnopp(logits, { temperature: 0.06, iterations: 3, positionwise: false });
      expect(maxAbsDiff(std.dataSync(), readF32('clustering_std_assignments'))).toBeLessThan(TOL);
    });
  });

  it('clustering loss and CAPI loss from the recorded logits and targets', () => {
    tf.tidy(() => {
      const logits = tf.tensor(readF32('clustering_logits'), [16 * 2, 32]);
      const assign = tf.tensor(readF32('clustering_assignments'), [16 * 2, 32]);
      const closs = tf.mean(softCrossEntropy(logits, assign, 0.12)).dataSync()[0];
      expect(Math.abs(closs - readF32('clustering_loss')[0]) / Math.abs(readF32('clustering_loss')[0])).toBeLessThan(1e-4);
      const std = tf.tensor(readF32('clustering_std_assignments'), [32, 32]);
      const sloss = tf.mean(softCrossEntropy(logits, std, 0.12)).dataSync()[0];
      expect(Math.abs(sloss - readF32('clustering_std_loss')[0]) / Math.abs(readF32('clustering_std_loss')[0])).toBeLessThan(1e-4);
      const slogits = tf.tensor(readF32('student_logits'), [10, 32]);
      const targets = tf.tensor(readF32('targets'), [10, 32]);
      const per = softCrossEntropy(slogits, targets, 0.12);
      expect(maxAbsDiff(per.dataSync(), readF32('capi_loss_per_prediction'))).toBeLessThan(TOL);
      const loss = tf.mean(per).dataSync()[0];
      expect(Math.abs(loss - readF64('capi_loss')[0]) / readF64('capi_loss')[0]).toBeLessThan(1e-4);
    });
  });

  it('clustering logits from the recorded teacher tokens', () => {
    const p = loadReferenceParams();
    tf.tidy(() => {
      const x = tf.tensor(readF32('clustering_input'), [16, 2, 64]);
      expect(maxAbsDiff(clusteringLogits(p, x).dataSync(), readF32('clustering_logits'))).toBeLessThan(TOL);
    });
    Object.values(p).forEach((t) => t.dispose());
  });
});
