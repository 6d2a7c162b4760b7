/**
 * fmnist-canvas: deterministic per seed, the item inside the canvas at its drawn scale, canvas i
 * holding item i with its class as the label, and label maps that match the pixels.
 */
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadFashionMnist } from '../../src/data/fashion-mnist.js';
import { CANVAS_DEFAULTS, fmnistCanvas, fmnistCanvasDense, renderCanvas } from '../../src/data/fmnist-canvas.js';

const items = loadFashionMnist(path.resolve('data/fmnist-slice'), 'train');
const opts = { ...CANVAS_DEFAULTS, count: 200 };

describe('fmnist-canvas', () => {
  it('is a pure function of (seed, split, index): the same canvas twice, another for another seed or split', async () => {
    const a = await renderCanvas(items, opts, 'train', 7);
    const b = await renderCanvas(items, opts, 'train', 7);
    expect(Buffer.from(a.pixels).equals(Buffer.from(b.pixels))).toBe(true);
    expect(a.at).toEqual(b.at);
    const otherSeed = await renderCanvas(items, { ...opts, seed: 1 }, 'train', 7);
    const otherSplit = await renderCanvas(items, opts, 'test', 7);
    expect(Buffer.from(a.pixels).equals(Buffer.from(otherSeed.pixels))).toBe(false);
    expect(Buffer.from(a.pixels).equals(Buffer.from(otherSplit.pixels))).toBe(false);
  });

  it('places item i inside the canvas at a scale in [0.5, 1] of 28 px; scales and places vary', async () => {
    const s = opts.size;
    const sides = new Set<number>();
    const corners = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const c = await renderCanvas(items, opts, 'train', i);
      const { top, left, side } = c.at;
      expect(side).toBeGreaterThanOrEqual(14);
      expect(side).toBeLessThanOrEqual(28);
      expect(top).toBeGreaterThanOrEqual(0);
      expect(left).toBeGreaterThanOrEqual(0);
      expect(top + side).toBeLessThanOrEqual(s);
      expect(left + side).toBeLessThanOrEqual(s);
      // Every labeled pixel lies inside the item's box and carries 1 + its class.
      for (let y = 0; y < s; y++) {
        for (let x = 0; x < s; x++) {
          const l = c.labels[y * s + x];
          if (l === 0) continue;
          expect(l).toBe(1 + items.label(i));
          expect(y >= top && y < top + side && x >= left && x < left + side).toBe(true);
        }
      }
      expect(c.cls).toBe(items.label(i));
      sides.add(side);
      corners.add(`${top},${left}`);
    }
    expect(sides.size).toBeGreaterThan(8);
    expect(corners.size).toBeGreaterThan(50);
  });

  it('labels: foreground pixels are the bright item pixels (above the threshold), background stays dark', async () => {
    const c = await renderCanvas(items, opts, 'train', 3);
    let fg = 0;
    for (let i = 0; i < c.pixels.length; i++) {
      if (c.labels[i] > 0) {
        fg++;
        expect(c.pixels[i]).toBeGreaterThan(opts.threshold);
      } else expect(c.pixels[i]).toBeLessThanOrEqual(70); // the texture's range
    }
    expect(fg).toBeGreaterThan(20);
  });

  it('the classification split is labeled with its items, the dense split renders the same canvases', async () => {
    const cls = fmnistCanvas(items, 'train', opts);
    const dense = fmnistCanvasDense(items, 'train', opts);
    expect(cls.size).toBe(200);
    for (const i of [0, 5, 199]) {
      expect(cls.label(i)).toBe(items.label(i));
      const img = await cls.load(i);
      const seg = await dense.load(i);
      expect([img.height, img.width, img.channels]).toEqual([42, 42, 1]);
      expect(Buffer.from(img.data).equals(Buffer.from(seg.image.data))).toBe(true);
    }
    expect(() => fmnistCanvas(items, 'train', { ...opts, count: items.size + 1 })).toThrow(/one a canvas/);
  });

  it('renders each canvas once: a second load is the same pixels, from the store, in any order', async () => {
    const cls = fmnistCanvas(items, 'train', opts);
    const order = [9, 3, 9, 0, 3, 199];
    const first = new Map<number, Uint8Array>();
    for (const i of order) {
      const img = await cls.load(i);
      const fresh = (await renderCanvas(items, opts, 'train', i)).pixels;
      expect(Buffer.from(img.data).equals(Buffer.from(fresh))).toBe(true);
      if (first.has(i)) expect(img.data.buffer).toBe(first.get(i)!.buffer); // kept, not rendered again
      first.set(i, img.data as Uint8Array);
    }
    await expect(cls.load(200)).rejects.toThrow(/canvas 200 asked for, of 200/);
  });
});
