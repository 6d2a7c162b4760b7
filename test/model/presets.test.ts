/** The paper's shapes build with the reference init and run a forward pass (they do not train here). */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { backboneShapes, evalForward, initBackbone } from '../../src/model/capi.js';
import { MODEL_PRESETS } from '../../src/model/config.js';
import { allPositions, tokenCoords } from '../../src/model/coords.js';
import { Rng } from '../../src/runtime/rng.js';

describe('paper presets', () => {
  it.each(['vit-s14', 'vit-b14'])('%s builds and runs the hub forward at batch 1, 224 px', (name) => {
    const cfg = MODEL_PRESETS[name];
    const params = initBackbone(cfg, new Rng(0));
    const count = backboneShapes(cfg).reduce((a, [, s]) => a + s.reduce((x, y) => x * y, 1), 0);
    // Spec 11: encoder 21.5M / 85.4M, predictor 10.6M / 42.5M (approx.)
    const expected = name === 'vit-s14' ? 21.5e6 + 10.6e6 : 85.4e6 + 42.5e6;
    expect(Math.abs(count - expected) / expected).toBeLessThan(0.03);
    const out = tf.tidy(() => {
      const patches = tf.randomNormal([1, 256, 3 * 14 * 14], 0, 1, 'float32', 1);
      const coords = tf.tensor3d(tokenCoords(16, 16, 16, allPositions(1, 256), false), [1, 272, 2]);
      const o = evalForward(params, { ...cfg, predDepth: 1 }, patches, coords, 16, 16);
      return [o.featureMap, o.global, o.registers];
    });
    expect(out[0].shape).toEqual([1, 16, 16, cfg.dim]);
    expect(out[1].shape).toEqual([1, cfg.predDim]);
    expect(out[2].shape).toEqual([1, 16, cfg.dim]);
    expect(Number.isFinite(tf.sum(out[0]).dataSync()[0])).toBe(true);
    tf.dispose([...out, ...Object.values(params)]);
  });
});
