/** Augmentation: seeded and reproducible, crops within the spec's range, exact resampling cases. */
import { describe, expect, it } from 'vitest';
import type { RawImage } from '../../src/data/dataset.js';
import { IMAGENET_MEAN, IMAGENET_STD, randomResizedCropFlip, randomResizedCropBox, renderImage } from '../../src/data/transforms.js';
import { Rng } from '../../src/runtime/rng.js';

const gray = (h: number, w: number, f: (y: number, x: number) => number): RawImage => {
  const data = new Uint8Array(h * w);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data[y * w + x] = f(y, x);
  return { data, height: h, width: w, channels: 1 };
};

describe('RandomResizedCrop + flip', () => {
  it('is reproducible from the seed and keeps area within [0.6, 1] and aspect within [3/4, 4/3]', () => {
    const a = Array.from({ length: 200 }, () => 0).map((_, i) => randomResizedCropBox(Rng.derive(3, i), 224, 224, [0.6, 1]));
    const b = Array.from({ length: 200 }, () => 0).map((_, i) => randomResizedCropBox(Rng.derive(3, i), 224, 224, [0.6, 1]));
    expect(a).toEqual(b);
    for (const box of a) {
      const area = (box.height * box.width) / (224 * 224);
      expect(area).toBeGreaterThan(0.58);
      expect(area).toBeLessThanOrEqual(1);
      expect(box.width / box.height).toBeGreaterThan(0.72);
      expect(box.width / box.height).toBeLessThan(1.38);
      expect(box.top + box.height).toBeLessThanOrEqual(224);
      expect(box.left + box.width).toBeLessThanOrEqual(224);
    }
  });

  it('flips about half of the time', () => {
    const rng = new Rng(9);
    const img = gray(28, 28, () => 0);
    const flips = Array.from({ length: 2000 }, () => randomResizedCropFlip(rng, img, 28, [0.6, 1], 0.5).flip).filter(Boolean).length;
    expect(flips / 2000).toBeGreaterThan(0.45);
    expect(flips / 2000).toBeLessThan(0.55);
  });
});

describe('renderImage', () => {
  it('an identity crop and resize reproduces the pixels (normalised, grey to 3 channels); flip mirrors', () => {
    const img = gray(8, 8, (y, x) => 16 * y + 3 * x);
    const out = new Float32Array(3 * 64);
    renderImage(img, { size: 8, box: { top: 0, left: 0, height: 8, width: 8 }, flip: false }, out, 0);
    const flipped = new Float32Array(3 * 64);
    renderImage(img, { size: 8, box: { top: 0, left: 0, height: 8, width: 8 }, flip: true }, flipped, 0);
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < 8; y++) {
        for (let x = 0; x < 8; x++) {
          const expected = ((16 * y + 3 * x) / 255 - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
          expect(out[c * 64 + y * 8 + x]).toBeCloseTo(expected, 5);
          expect(flipped[c * 64 + y * 8 + (7 - x)]).toBeCloseTo(expected, 5);
        }
      }
    }
  });

  it('a constant image stays constant at any crop and size (bicubic weights sum to 1)', () => {
    const img = gray(31, 17, () => 100);
    const out = new Float32Array(3 * 13 * 13);
    renderImage(img, { size: 13, box: { top: 3, left: 2, height: 20, width: 11 }, flip: false }, out, 0);
    for (let i = 0; i < 169; i++) expect(out[i]).toBeCloseTo((100 / 255 - IMAGENET_MEAN[0]) / IMAGENET_STD[0], 5);
  });

  it('a grey image renders exactly as the RGB image with its value in every channel', () => {
    const img = gray(23, 19, (y, x) => (37 * y + 11 * x * x) % 256);
    const rgb: RawImage = {
      ...img,
      data: Uint8Array.from({ length: img.data.length * 3 }, (_, i) => img.data[Math.floor(i / 3)]),
      channels: 3,
    };
    for (const t of [
      { size: 13, box: { top: 3, left: 2, height: 20, width: 11 }, flip: false },
      { size: 31, box: { top: 0, left: 4, height: 9, width: 15 }, flip: true },
    ]) {
      const [a, b] = [img, rgb].map((im) => {
        const out = new Float32Array(3 * t.size * t.size + 5);
        renderImage(im, t, out, 5);
        return out;
      });
      expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    }
  });
});
