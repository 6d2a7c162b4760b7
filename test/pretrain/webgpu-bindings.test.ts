/** On WebGPU a train step whose largest tensor exceeds one buffer binding is refused before it runs, in one line. */
import { describe, expect, it } from 'vitest';
import { resolvePretrainConfig } from '../../src/pretrain/config.js';
import { checkWebgpuStepBindings } from '../../src/pretrain/memory.js';

describe('WebGPU binding limit of a train step', () => {
  // fmnist-tiny: 4 registers + 49 patches = 53 tokens, width 128 (MLP 512), 2 heads: the MLP's
  // hidden layer is the largest, 53 x 512 floats = 108,544 bytes an image.
  const perImage = 4 * 53 * 512;

  it('a batch whose MLP activations fit passes; one image more is refused with the largest batch that fits', () => {
    const cfg = resolvePretrainConfig('fmnist-tiny', { batchSize: 64 });
    expect(() => checkWebgpuStepBindings(cfg, 64 * perImage)).not.toThrow();
    const over = resolvePretrainConfig('fmnist-tiny', { batchSize: 65 });
    expect(() => checkWebgpuStepBindings(over, 64 * perImage)).toThrow(
      /^a step at batch 65 makes a 7 MiB tensor .* binding limit: lower --batch-size to at most 64, or use another backend$/,
    );
  });
});
