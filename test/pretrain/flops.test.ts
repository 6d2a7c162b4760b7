/** The FLOP formula (method spec 12) against the spec's own table. */
import { describe, expect, it } from 'vitest';
import { MODEL_PRESETS } from '../../src/model/config.js';
import { trainFlopsPerImage } from '../../src/pretrain/flops.js';
import { maskCounts } from '../../src/pretrain/masking.js';

describe('training FLOPs per image', () => {
  it('matches the spec table for ViT-S/14, ViT-B/14 and ViT-L/14', () => {
    const c = maskCounts(256, 0.65, 0.05);
    const expected: Record<string, number> = { 'vit-s14': 3.6e10, 'vit-b14': 1.25e11, 'vit-l14': 4.08e11 };
    for (const [name, total] of Object.entries(expected)) {
      const f = trainFlopsPerImage(MODEL_PRESETS[name], c);
      expect(Math.abs(f - total) / total, name).toBeLessThan(0.03);
    }
  });
});
