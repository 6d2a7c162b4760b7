/** Inverse-block masking: the fixture's masks from their recorded draws, exact counts, roll uniformity. */
import { describe, expect, it } from 'vitest';
import type { BlockDrawSource } from '../../src/pretrain/masking.js';
import { maskCounts, sampleBlock, sampleMask, sampleMaskedBatch } from '../../src/pretrain/masking.js';
import { Rng } from '../../src/runtime/rng.js';
import { HAVE_FIXTURE, readJson } from '../fixture.js';

interface Draw {
  fn: 'uniform' | 'randint';
  args: [number, number];
  value: number;
}
interface MaskRecord {
  draws: Draw[];
  masks?: number[][][];
  mask?: number[][];
  input_size?: number[];
  num_masking_patches?: number;
}

/** Replays recorded draws, checking each call's kind and arguments against the record. */
function replay(draws: Draw[]): BlockDrawSource & { used: () => number } {
  let i = 0;
  const next = (fn: Draw['fn'], lo: number, hi: number) => {
    const d = draws[i++];
    expect(d.fn).toBe(fn);
    expect(d.args[0]).toBeCloseTo(lo, 12);
    expect(d.args[1]).toBeCloseTo(hi, 12);
    return d.value;
  };
  return { uniform: (lo, hi) => next('uniform', lo, hi), randint: (lo, hi) => next('randint', lo, hi), used: () => i };
}

describe.skipIf(!HAVE_FIXTURE)('masks rebuilt from the reference draws', () => {
  const rec = HAVE_FIXTURE
    ? readJson<{ fixture_batch: MaskRecord & { masks: number[][][] }; examples_16x16_grid: MaskRecord[] }>('masking.json')
    : undefined;

  it('the fixture batch (4x4 grid, 10 masked, roll)', () => {
    const fb = rec!.fixture_batch;
    const src = replay(fb.draws);
    const counts = maskCounts(16, 0.65, 0.5);
    expect(counts).toEqual({ nTokens: 16, nMasked: 10, nVisible: 6, nPredict: 5 });
    for (const expected of fb.masks) {
      const visible = sampleBlock(4, 4, counts.nVisible, true, src);
      expect(Array.from(visible, (v) => 1 - v)).toEqual(expected.flat());
    }
    expect(src.used()).toBe(fb.draws.length);
  });

  it('the three 16x16 examples (166 masked)', () => {
    for (const ex of rec!.examples_16x16_grid) {
      const src = replay(ex.draws);
      const counts = maskCounts(256, 0.65, 0.05);
      expect(counts.nMasked).toBe(166);
      expect(counts.nPredict).toBe(8);
      const visible = sampleBlock(16, 16, counts.nVisible, true, src);
      const expected = (ex.mask ?? ex.masks![0]).flat();
      expect(Array.from(visible, (v) => 1 - v)).toEqual(expected);
    }
  });
});

describe('masking properties', () => {
  it('exact counts for every mode; visible ascending, predictions among the masked', () => {
    const counts = maskCounts(49, 0.65, 0.05, 8);
    const rng = new Rng(1);
    for (const mode of ['inverse-block', 'block', 'uniform'] as const) {
      for (let i = 0; i < 50; i++) {
        const m = sampleMask(7, 7, counts, mode, true, rng);
        expect(m.reduce((a, b) => a + b, 0)).toBe(counts.nMasked);
      }
    }
    const batch = sampleMaskedBatch(16, 7, 7, counts, 'inverse-block', true, rng);
    for (let b = 0; b < 16; b++) {
      const v = batch.visible[b];
      expect(v.length).toBe(counts.nVisible);
      for (let i = 1; i < v.length; i++) expect(v[i]).toBeGreaterThan(v[i - 1]);
      expect(batch.predict[b].length).toBe(8);
      expect(new Set(batch.predict[b]).size).toBe(8);
      for (const p of batch.predict[b]) expect(v.includes(p)).toBe(false);
    }
  });

  it('with roll every position is masked ~65% of the time; without roll it is not', () => {
    const counts = maskCounts(256, 0.65, 0.05);
    const freq = (roll: boolean) => {
      const rng = new Rng(7);
      const hits = new Float64Array(256);
      const draws = 4000;
      for (let i = 0; i < draws; i++) sampleMask(16, 16, counts, 'inverse-block', roll, rng).forEach((m, j) => (hits[j] += m));
      return Array.from(hits, (h) => h / draws);
    };
    const rolled = freq(true);
    const target = 166 / 256;
    expect(Math.max(...rolled.map((f) => Math.abs(f - target)))).toBeLessThan(0.04);
    const fixed = freq(false);
    // Without roll the block sits near the centre: corners are almost always masked.
    expect(Math.max(...fixed.map((f) => Math.abs(f - target)))).toBeGreaterThan(0.2);
  });
});
