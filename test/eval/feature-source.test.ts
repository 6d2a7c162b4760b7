/** A forced --feature-batch is refused, in one line, when it cannot fit the wasm heap beside the weights, or a GPU's buffer binding. */
import { describe, expect, it } from 'vitest';
import { checkFeatureBatch, featureBatch } from '../../src/eval/feature-source.js';
import { capiFeatureModel, pixelFeatureModel } from '../../src/features/models.js';
import { MODEL_PRESETS } from '../../src/model/config.js';

describe('feature-batch memory check', () => {
  const model = { ...pixelFeatureModel(4), activationBytesPerImage: () => 100 * 2 ** 20 }; // 100 MiB per image
  it('accepts what fits and names the largest batch that does', () => {
    // (4096 MiB x 0.88 - 1024 MiB of weights) / 100 MiB = 25.8 -> 25 images.
    expect(() => checkFeatureBatch(25, model, 224, 2 ** 30)).not.toThrow();
    expect(() => checkFeatureBatch(26, model, 224, 2 ** 30)).toThrow(
      "--feature-batch 26 needs about 3.5 GiB of the wasm backend's 4.0 GiB heap (100 MiB per image at 224 px, estimated, beside 1.0 GiB of weights): use at most 25, or 0 (automatic)",
    );
  });
});

describe('feature batches within a GPU buffer binding', () => {
  // fmnist-tiny at 28 px: 4 registers + 49 patches; its largest tensor an image is the MLP's hidden
  // layer, 53 x 512 floats (attention: 2 heads x 53 x 53 is smaller).
  const model = capiFeatureModel('tiny', 'tiny', {}, MODEL_PRESETS['fmnist-tiny']);
  const perImage = 4 * 53 * 512;

  it('the automatic batch stays within the binding; a forced one beyond it, or an image that cannot fit, is refused in one line', () => {
    expect(model.largestTensorBytesPerImage(28)).toBe(perImage);
    expect(featureBatch({ featureBatch: 0 }, model, 28, 10 * perImage)).toBe(10);
    expect(featureBatch({ featureBatch: 0 }, model, 28, undefined)).toBe(64); // no binding limit (wasm, cpu)
    expect(featureBatch({ featureBatch: 10 }, model, 28, 10 * perImage)).toBe(10);
    expect(() => featureBatch({ featureBatch: 11 }, model, 28, 10 * perImage)).toThrow(
      /^--feature-batch 11 makes a 1 MiB tensor .*: use at most 10, or 0 \(automatic\)$/,
    );
    expect(() => featureBatch({ featureBatch: 0 }, model, 28, perImage - 1)).toThrow(
      /^a tiny forward at 28 px makes a 0 MiB tensor per image .*binding limit/,
    );
  });
});
