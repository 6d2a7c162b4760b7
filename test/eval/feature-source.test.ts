/** A forced --feature-batch is refused, in one line, when it cannot fit the wasm heap beside the weights. */
import { describe, expect, it } from 'vitest';
import { checkFeatureBatch } from '../../src/eval/feature-source.js';
import { pixelFeatureModel } from '../../src/features/models.js';

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
