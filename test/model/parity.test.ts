/**
 * Whole-model parity with the reference implementation (capi-ref-tiny fixture): capi-ts loaded
 * from the reference .pth reproduces every recorded output (float32, max abs error < 1e-4).
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Params } from '../../src/model/capi.js';
import {
  encoderBlocks,
  evalForward,
  finalNorm,
  predictorBlocks,
  prependRegisters,
  embedPatches,
  studentForward,
} from '../../src/model/capi.js';
import { allPositions, patchCoords, tokenCoords } from '../../src/model/coords.js';
import { clusteringLogits, meanEntropy, sinkhornKnopp, softCrossEntropy, studentHeadLogits } from '../../src/model/heads.js';
import { patchify, selectPatches } from '../../src/model/patches.js';
import { HAVE_FIXTURE, maxAbsDiff, readF32, readF64, readI64 } from '../fixture.js';
import { loadReferenceParams, TINY_REF_CONFIG as cfg } from './reference-model.js';

const TOL = 1e-4;
const B = 2,
  N = 16,
  R = 8,
  G = 4;

/** Per-image positions from batch-absolute indices. */
function perImage(abs: Int32Array, b: number, n: number): Int32Array[] {
  const per = abs.length / b;
  return Array.from({ length: b }, (_, i) => Int32Array.from(abs.subarray(i * per, (i + 1) * per), (x) => x - i * n));
}

/** Largest error per output, printed at the end (reported in the parity issue's note). */
const errors = new Map<string, number>();

function expectClose(actual: tf.Tensor, name: string, tol = TOL) {
  const err = maxAbsDiff(actual.dataSync(), readF32(name));
  errors.set(name, err);
  expect(err, `${name}: max abs error ${err}`).toBeLessThanOrEqual(tol);
  return err;
}

describe.skipIf(!HAVE_FIXTURE)('reference parity (capi-ref-tiny)', () => {
  let p: Params;
  let patches: Float32Array;
  beforeAll(() => {
    p = loadReferenceParams();
    patches = patchify(readF32('images'), B, 3, 16, 16, 4);
  });
  afterAll(() => {
    Object.values(p).forEach((t) => t.dispose());
    console.info(`max abs error per output:\n${[...errors].map(([k, v]) => `  ${k}: ${v.toExponential(2)}`).join('\n')}`);
  });

  it('hub forward: tokens, coordinates, blocks, global repr, registers, feature map', () => {
    tf.tidy(() => {
      const coords = tf.tensor(tokenCoords(G, G, R, allPositions(B, N), true), [B, R + N, 2]);
      expectClose(coords, 'eval_coords', 0);
      const x = tf.tensor(patches, [B, N, 48]);
      expectClose(prependRegisters(p, embedPatches(p, x)), 'eval_tokens_in');
      const taps: tf.Tensor[] = [];
      const enc = encoderBlocks(p, cfg, prependRegisters(p, embedPatches(p, x)), coords, undefined, taps);
      expectClose(taps[0], 'eval_enc_block1_out');
      expectClose(taps[1], 'eval_enc_block2_out');
      const dtaps: tf.Tensor[] = [];
      predictorBlocks(p, cfg, coords.slice([0, R, 0], [-1, -1, -1]), finalNorm(enc, cfg), coords, undefined, 2, dtaps);
      expectClose(dtaps[0], 'eval_dec_block1_out');
      expectClose(dtaps[1], 'eval_dec_block2_out');
      const out = evalForward(p, cfg, x, coords, G, G);
      expectClose(out.global, 'eval_global_repr');
      expectClose(out.registers, 'eval_registers');
      expectClose(out.featureMap, 'eval_feature_map');
    });
  });

  it('pretraining forward: coordinates, encoder output, predictor output', () => {
    tf.tidy(() => {
      const visible = perImage(readI64('visible_indices'), B, N);
      const predict = perImage(readI64('predict_indices'), B, N);
      const encCoords = tf.tensor(tokenCoords(G, G, R, visible, true), [B, R + 6, 2]);
      expectClose(encCoords, 'pre_coords_enc', 1e-6);
      const predCoords = tf.tensor(patchCoords(G, G, predict), [B, 5, 2]);
      expectClose(predCoords, 'pre_coords_dec', 0);
      const vis = tf.tensor(selectPatches(patches, N, 48, visible), [B, 6, 48]);
      const out = studentForward(p, cfg, vis, encCoords, predCoords);
      expectClose(out.patchTokens, 'pre_encoder_out');
      expectClose(out.predictions, 'predictor_out');
    });
  });

  it('online clustering, Sinkhorn-Knopp targets, both losses and the student head', () => {
    tf.tidy(() => {
      const teacher = tf.tensor(readF32('teacher_patch_tokens'), [B, N, 64]);
      const logits = clusteringLogits(p, tf.transpose(teacher, [1, 0, 2])); // position-major [N, B, K]
      expectClose(logits, 'clustering_logits');
      const assign = sinkhornKnopp(logits, { temperature: 0.06, iterations: 3, positionwise: true });
      expectClose(assign, 'clustering_assignments');
      const closs = tf.mean(softCrossEntropy(logits.reshape([-1, 32]), assign.reshape([-1, 32]), 0.12));
      const clossRel = Math.abs(closs.dataSync()[0] - readF32('clustering_loss')[0]) / readF32('clustering_loss')[0];
      errors.set('clustering_loss (relative)', clossRel);
      expect(clossRel).toBeLessThan(1e-4);
      const std = sinkhornKnopp(logits, { temperature: 0.06, iterations: 3, positionwise: false });
      expectClose(std, 'clustering_std_assignments');
      const predictAbs = tf.tensor1d(readI64('predict_indices'), 'int32');
      const targets = tf.gather(tf.transpose(assign, [1, 0, 2]).reshape([B * N, 32]), predictAbs);
      expectClose(targets, 'targets');
      const hErr = Math.abs(meanEntropy(targets).dataSync()[0] - readF32('target_entropy')[0]);
      errors.set('target_entropy', hErr);
      expect(hErr).toBeLessThan(1e-4);
      const slogits = studentHeadLogits(p, tf.tensor(readF32('predictor_out'), [10, 64]));
      expectClose(slogits, 'student_logits');
      const per = softCrossEntropy(slogits, targets, 0.12);
      expectClose(per, 'capi_loss_per_prediction');
      const loss = tf.mean(per).dataSync()[0];
      const lossRel = Math.abs(loss - readF64('capi_loss')[0]) / readF64('capi_loss')[0];
      errors.set('capi_loss (relative)', lossRel);
      expect(lossRel).toBeLessThan(1e-4);
    });
  });
});
