/** The predictor's fit to its targets: the KL a training step logs, and the image-blind baseline's. */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { klToMarginal, predictionFit } from '../../src/pretrain/prediction-fit.js';
import { disposeState, initState, trainStep } from '../../src/pretrain/step.js';
import { randomBatch, tinyConfig } from './helpers.js';

describe('prediction fit', () => {
  it("KL to the rows' mean: log 2 for two opposite certainties, 0 when every row is the mean", () => {
    const cases: [number[][], number][] = [
      [
        [
          [1, 0],
          [0, 1],
        ],
        Math.log(2),
      ],
      [
        [
          [0.5, 0.5],
          [0.5, 0.5],
        ],
        0,
      ],
      [
        [
          [1, 0, 0],
          [1, 0, 0],
        ],
        0,
      ],
      // q = (0.5, 0.25, 0.25): row 1 KL = log 2, row 2 = 0.5 log 2 + 0.5 log 2 = log 2
      [
        [
          [1, 0, 0],
          [0, 0.5, 0.5],
        ],
        Math.log(2),
      ],
    ];
    for (const [rows, expected] of cases) {
      const p = tf.tensor2d(rows);
      const kl = klToMarginal(p);
      expect(kl.dataSync()[0]).toBeCloseTo(expected, 6);
      tf.dispose([p, kl]);
    }
  });

  it('its KL is the one the training step at the same state and step logs (CAPI loss - target entropy); nothing is left behind', async () => {
    const cfg = tinyConfig({ dropPath: 0 });
    const state = initState(cfg);
    const batch = randomBatch(cfg, 3);
    await predictionFit(state, cfg, batch, 0); // the first call fills the RoPE rotation cache (model/layers.ts)
    const before = tf.memory().numTensors;
    const fit = await predictionFit(state, cfg, batch, 0);
    expect(tf.memory().numTensors).toBe(before);
    const logged = await trainStep(state, batch, cfg, 10);
    expect(fit.kl).toBeCloseTo(logged.capiLoss - logged.targetEntropy, 5);
    expect(fit.targetEntropy).toBeCloseTo(logged.targetEntropy, 5);
    expect(fit.marginalKl).toBeGreaterThanOrEqual(0);
    expect(fit.argmaxAgreement).toBeGreaterThanOrEqual(0);
    expect(fit.argmaxAgreement).toBeLessThanOrEqual(1);
    expect(fit.patches).toBe(cfg.train.batchSize * cfg.train.numPredictions);
    disposeState(state);
  });
});
