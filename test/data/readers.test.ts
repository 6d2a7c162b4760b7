/**
 * Dataset readers on tiny fixtures built in each exact on-disk layout: Fashion-MNIST idx,
 * ImageNet-style folders, ADE20K, Pascal VOC 2012, Cityscapes; wrong layouts name the missing
 * path; fmnist-scenes is deterministic and its labels match its composition.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadFashionMnist, locateFashionMnist } from '../../src/data/fashion-mnist.js';
import { fmnistScenes, fmnistScenesImages, renderScene, SCENES_DEFAULTS } from '../../src/data/fmnist-scenes.js';
import { imageFolder } from '../../src/data/image-folder.js';
import { readLabelPng } from '../../src/data/png-labels.js';
import { ade20k, cityscapes, voc2012 } from '../../src/data/segmentation-datasets.js';
import { encodeLabelPng } from './png.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'capi-data-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const SLICE = path.resolve('data/fmnist-slice');

async function jpeg(file: string, w: number, h: number, shade: number) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  await sharp({ create: { width: w, height: h, channels: 3, background: { r: shade, g: 255 - shade, b: 80 } } })
    .jpeg()
    .toFile(file);
}
function labelPng(file: string, w: number, h: number, palette: boolean, f: (y: number, x: number) => number) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const data = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data[y * w + x] = f(y, x);
  fs.writeFileSync(file, encodeLabelPng(data, w, h, palette));
  return data;
}

describe('Fashion-MNIST', () => {
  it('reads the committed real slice (idx.gz): shapes, labels, pixel values', async () => {
    const train = loadFashionMnist(SLICE, 'train');
    expect(train.size).toBe(1000);
    const img = await train.load(0);
    expect([img.height, img.width, img.channels]).toEqual([28, 28, 1]);
    expect(Math.max(...img.data)).toBeGreaterThan(100);
    const counts = new Array(10).fill(0);
    for (let i = 0; i < train.size; i++) counts[train.label(i)]++;
    expect(counts.every((c) => c > 50)).toBe(true);
    expect(loadFashionMnist(SLICE, 't10k').size).toBe(200);
  });

  it('a missing folder names it and says how to get the data', () => {
    expect(() => locateFashionMnist(path.join(tmp, 'none'))).toThrow(
      /Fashion-MNIST not found in .*none .*apt-get install dataset-fashion-mnist/,
    );
  });
});

describe('on-disk layouts', () => {
  beforeAll(async () => {
    // ImageNet-style class folders
    for (const [cls, n] of [
      ['n01', 2],
      ['n02', 3],
    ] as const)
      for (let i = 0; i < n; i++) await jpeg(path.join(tmp, 'imagenet', 'train', cls, `${i}.JPEG`), 40, 30, 50 * i);
    // ADE20K
    const ade = path.join(tmp, 'ade', 'ADEChallengeData2016');
    for (const split of ['training', 'validation']) {
      await jpeg(path.join(ade, 'images', split, `ADE_${split}_00000001.jpg`), 20, 16, 10);
      labelPng(path.join(ade, 'annotations', split, `ADE_${split}_00000001.png`), 20, 16, false, (y, x) =>
        x < 10 ? 0 : 1 + ((y + x) % 150),
      );
    }
    // VOC 2012
    const voc = path.join(tmp, 'voc', 'VOCdevkit', 'VOC2012');
    fs.mkdirSync(path.join(voc, 'ImageSets', 'Segmentation'), { recursive: true });
    fs.writeFileSync(path.join(voc, 'ImageSets', 'Segmentation', 'train.txt'), '2007_000032\n2007_000039\n');
    for (const id of ['2007_000032', '2007_000039']) {
      await jpeg(path.join(voc, 'JPEGImages', `${id}.jpg`), 12, 10, 100);
      labelPng(path.join(voc, 'SegmentationClass', `${id}.png`), 12, 10, true, (y, x) => (y === 0 ? 255 : (x * 3) % 21));
    }
    // Cityscapes
    const cs = path.join(tmp, 'cityscapes');
    const stem = 'aachen_000000_000019';
    await jpeg(path.join(cs, 'leftImg8bit', 'val', 'aachen', `${stem}_leftImg8bit.png`), 16, 8, 30);
    labelPng(path.join(cs, 'gtFine', 'val', 'aachen', `${stem}_gtFine_labelTrainIds.png`), 16, 8, false, (_y, x) =>
      x === 0 ? 255 : x % 19,
    );
  });

  it('ImageNet-style folders: class = sorted folder index', async () => {
    const ds = imageFolder(path.join(tmp, 'imagenet', 'train'));
    expect(ds.size).toBe(5);
    expect(ds.classNames).toEqual(['n01', 'n02']);
    expect(Array.from({ length: 5 }, (_, i) => ds.label(i))).toEqual([0, 0, 1, 1, 1]);
    const img = await ds.load(4);
    expect([img.width, img.height, img.channels]).toEqual([40, 30, 3]);
  });

  it('ADE20K: images with their annotation values, 0 and 255 ignored', async () => {
    const ds = ade20k(path.join(tmp, 'ade'), 'training');
    expect(ds.size).toBe(1);
    expect(ds.ignore).toEqual([0, 255]);
    const s = await ds.load(0);
    expect([s.label.width, s.label.height]).toEqual([20, 16]);
    expect(s.label.data[0]).toBe(0);
    expect(s.label.data[15]).toBe(1 + 15);
  });

  it('ADE20K: label values outside the label set stop with one line naming the file and values, or are scored as ignored and counted', async () => {
    const bad = path.join(tmp, 'ade-bad', 'ADEChallengeData2016');
    await jpeg(path.join(bad, 'images', 'training', 'ADE_training_00000001.jpg'), 20, 16, 10);
    const file = path.join(bad, 'annotations', 'training', 'ADE_training_00000001.png');
    labelPng(file, 20, 16, false, (y, x) => (x === 0 ? 200 : x === 1 && y < 4 ? 220 : 1 + x));
    await expect(ade20k(path.join(tmp, 'ade-bad'), 'training').load(0)).rejects.toThrow(
      `${file}: label values 200, 220 are neither a class (0-150) nor ignored (0, 255); fix the labels, or pass --unknown-labels ignore to score them as ignored (counted in the result)`,
    );
    const lenient = ade20k(path.join(tmp, 'ade-bad'), 'training', 'ignore');
    const s = await lenient.load(0);
    expect(s.label.data[0]).toBe(0); // 200 -> the first ignore value
    expect(s.label.data[2]).toBe(3);
    expect(lenient.unknownLabels!()).toEqual({ pixels: 16 + 4, images: 1, values: [200, 220] });
  });

  it('Pascal VOC 2012: split lists, palette indices (not colours), 255 ignored', async () => {
    const ds = voc2012(path.join(tmp, 'voc'), 'train');
    expect(ds.size).toBe(2);
    expect(ds.ignore).toEqual([255]);
    const s = await ds.load(1);
    expect(s.label.data[0]).toBe(255);
    expect(s.label.data[12 + 5]).toBe(15);
  });

  it('Cityscapes: leftImg8bit + gtFine labelTrainIds', async () => {
    const ds = cityscapes(path.join(tmp, 'cityscapes'), 'val');
    expect(ds.size).toBe(1);
    const s = await ds.load(0);
    expect(s.label.data[0]).toBe(255);
    expect(s.label.data[3]).toBe(3);
  });

  it('wrong layouts give an error naming the missing path', () => {
    expect(() => ade20k(path.join(tmp, 'voc'), 'training')).toThrow(/ADE20K images not found: .*images\/training is missing/);
    expect(() => voc2012(path.join(tmp, 'voc'), 'val')).toThrow(/VOC split list not found: .*Segmentation\/val\.txt is missing/);
    expect(() => cityscapes(path.join(tmp, 'ade'), 'train')).toThrow(/Cityscapes images not found: .*leftImg8bit\/train is missing/);
    expect(() => imageFolder(path.join(tmp, 'nope'))).toThrow(/image folder not found: .*nope/);
  });

  it('label PNG decoding round-trips both colour types', () => {
    const gray = labelPng(path.join(tmp, 'g.png'), 7, 5, false, (y, x) => (y * 7 + x) * 3);
    expect(Array.from(readLabelPng(path.join(tmp, 'g.png')).data)).toEqual(Array.from(gray));
    const pal = labelPng(path.join(tmp, 'p.png'), 9, 4, true, (y, x) => (y * 31 + x * 7) % 256);
    expect(Array.from(readLabelPng(path.join(tmp, 'p.png')).data)).toEqual(Array.from(pal));
  });
});

describe('fmnist-scenes', () => {
  const items = loadFashionMnist(SLICE, 'train');
  const opts = { ...SCENES_DEFAULTS, count: 10 };

  it('the unlabeled pretraining images are the canvases of the train split', async () => {
    const images = fmnistScenesImages(items, opts);
    const labeled = fmnistScenes(items, 'train', opts);
    expect(images.size).toBe(10);
    for (const i of [0, 7])
      expect(Buffer.from((await images.load(i)).data).equals(Buffer.from((await labeled.load(i)).image.data))).toBe(true);
    expect(images.fingerprint).not.toBe(fmnistScenesImages(items, { ...opts, seed: 1 }).fingerprint);
  });

  it('is identical across runs with the same seed and differs with another seed', async () => {
    const a = await renderScene(items, opts, 1, 3);
    const b = await renderScene(items, opts, 1, 3);
    const c = await renderScene(items, { ...opts, seed: 1 }, 1, 3);
    expect(Buffer.from(a.pixels).equals(Buffer.from(b.pixels))).toBe(true);
    expect(Buffer.from(a.labels).equals(Buffer.from(b.labels))).toBe(true);
    expect(Buffer.from(a.labels).equals(Buffer.from(c.labels))).toBe(false);
  });

  it('each item lies in one cell of the grid: a cell holds one class, and 2-4 cells hold items', async () => {
    const ds = fmnistScenes(items, 'train', opts);
    const { size, cell } = opts;
    for (let i = 0; i < ds.size; i++) {
      const { label } = await ds.load(i);
      let filled = 0;
      for (let cy = 0; cy < size; cy += cell) {
        for (let cx = 0; cx < size; cx += cell) {
          const classes = new Set<number>();
          for (let y = cy; y < cy + cell; y++) for (let x = cx; x < cx + cell; x++) classes.add(label.data[y * size + x]);
          classes.delete(0);
          expect(classes.size).toBeLessThanOrEqual(1);
          filled += classes.size;
        }
      }
      expect(filled).toBeGreaterThanOrEqual(opts.minItems);
      expect(filled).toBeLessThanOrEqual(opts.maxItems);
    }
  });

  it('labels match the composition: item pixels (bright) carry 1 + class, background is 0 and dark', async () => {
    const ds = fmnistScenes(items, 'train', opts);
    for (let i = 0; i < ds.size; i++) {
      const { image, label } = await ds.load(i);
      let fg = 0;
      for (let k = 0; k < label.data.length; k++) {
        if (label.data[k] === 0) expect(image.data[k]).toBeLessThanOrEqual(70);
        else {
          fg++;
          expect(label.data[k]).toBeLessThanOrEqual(10);
          expect(image.data[k]).toBeGreaterThan(opts.threshold);
        }
      }
      expect(fg).toBeGreaterThan(50);
    }
  });
});
