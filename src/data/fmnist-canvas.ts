/**
 * fmnist-canvas: one real Fashion-MNIST item at a random scale and position on a larger textured
 * canvas (42 x 42 by default: a 7 x 7 grid of 6 px patches). Canvas i of a split holds item i of
 * that Fashion-MNIST split, so the classification task has fmnist's 60k / 10k images and labels;
 * its label map (0 background, 1 + class on the item's pixels) makes the same canvases a dense
 * task. Scale, position and background are a pure function of (seed, split, i).
 *
 * Why (plan medium): on aligned Fashion-MNIST the flattened image is as good a k-NN space as a
 * supervised encoder's (plan small: 85.2 vs 85.1), so no pretraining can beat pixels there. With
 * the item's side drawn from 14-28 px and its place anywhere on the canvas, equal pixels no longer
 * mean equal content: what a representation must keep is what the item is, wherever and however
 * large it is. On the dense side an item spans 2-5 patches a side at varying offsets, so a
 * neighbour's 6 x 6 label layout is rarely the query's: copying masks pays less than knowing the
 * class (per-patch voting measures the rest).
 */
import type { LabeledDataset, RawImage } from './dataset.js';
import { pasteItem, SCENE_CLASSES, texturedBackground } from './fmnist-scenes.js';
import type { SegmentationDataset } from './segmentation-datasets.js';
import { Rng, STREAM } from '../runtime/rng.js';

export interface CanvasOptions {
  /** Canvas side. */
  size: number;
  /** How many canvases; at most the item split's size (canvas i holds item i). */
  count: number;
  seed: number;
  /** Item side as a fraction of its native 28 px. */
  minScale: number;
  maxScale: number;
  /** Item pixels brighter than this (0-255) are foreground. */
  threshold: number;
}

export const CANVAS_DEFAULTS: Omit<CanvasOptions, 'count'> = { size: 42, seed: 0, minScale: 0.5, maxScale: 1, threshold: 40 };

/** The dense task's labels: background, then the ten Fashion-MNIST classes. */
export const CANVAS_CLASSES = SCENE_CLASSES;

const splitKey = (split: 'train' | 'test') => (split === 'train' ? STREAM.canvasTrain : STREAM.canvasTest);

function checkCount(items: LabeledDataset, opts: CanvasOptions): void {
  if (opts.count > items.size) {
    throw new Error(`fmnist-canvas: ${opts.count} canvases asked for, but ${items.description} has ${items.size} items (one a canvas)`);
  }
}

/** Canvas `index`: grey pixels [S*S], labels [S*S], the item's class and where it was placed. */
export async function renderCanvas(items: LabeledDataset, opts: CanvasOptions, split: 'train' | 'test', index: number) {
  const rng = Rng.derive(opts.seed, splitKey(split), index);
  const s = opts.size;
  const canvas = { pixels: texturedBackground(rng, s), labels: new Uint8Array(s * s), size: s };
  const item = await items.load(index);
  const side = Math.min(s, Math.round(item.width * rng.uniformIn(opts.minScale, opts.maxScale)));
  const at = { side, top: rng.randint(0, s - side), left: rng.randint(0, s - side) };
  const cls = items.label(index);
  pasteItem(canvas, item, cls, at, opts.threshold);
  return { pixels: canvas.pixels, labels: canvas.labels, cls, at };
}

const describe = (items: LabeledDataset, split: string, o: CanvasOptions) =>
  `fmnist-canvas:${split} (${o.count} canvases ${o.size}x${o.size}, item scale ${o.minScale}-${o.maxScale}, seed ${o.seed}, items from ${items.description})`;

/**
 * Classification: canvas i, labeled with its item's class. A canvas is a pure function of (seed,
 * split, i), so each is rendered once and kept (one byte a pixel: 106 MB for 60k canvases of 42 px):
 * rendering was half the cost of a pretraining batch (measured, batch 256: 55 of 110 ms), and every
 * epoch renders every canvas again. The pixels handed out are views of that store: read-only.
 */
export function fmnistCanvas(items: LabeledDataset, split: 'train' | 'test', opts: CanvasOptions): LabeledDataset {
  checkCount(items, opts);
  const area = opts.size * opts.size;
  let store: Uint8Array | undefined; // allocated at the first load
  let rendered: Uint8Array | undefined;
  const load = async (i: number): Promise<RawImage> => {
    if (!(i >= 0 && i < opts.count)) throw new RangeError(`fmnist-canvas:${split}: canvas ${i} asked for, of ${opts.count}`);
    store ??= new Uint8Array(opts.count * area);
    rendered ??= new Uint8Array(opts.count);
    const pixels = store.subarray(i * area, (i + 1) * area);
    if (!rendered[i]) {
      pixels.set((await renderCanvas(items, opts, split, i)).pixels);
      rendered[i] = 1;
    }
    return { data: pixels, height: opts.size, width: opts.size, channels: 1 };
  };
  return {
    description: describe(items, split, opts),
    size: opts.count,
    numClasses: items.numClasses,
    classNames: items.classNames,
    label: (i) => items.label(i),
    load,
    fingerprint: `fmnist-canvas:${split}:${JSON.stringify(opts)}:${items.fingerprint ?? items.description}`,
  };
}

/** The same canvases as a dense task: per-pixel labels (0 background, 1 + class). */
export function fmnistCanvasDense(items: LabeledDataset, split: 'train' | 'test', opts: CanvasOptions): SegmentationDataset {
  checkCount(items, opts);
  return {
    description: describe(items, split, opts),
    size: opts.count,
    numClasses: CANVAS_CLASSES.length,
    ignore: [255],
    load: async (i) => {
      const { pixels, labels } = await renderCanvas(items, opts, split, i);
      return {
        image: { data: pixels, height: opts.size, width: opts.size, channels: 1 },
        label: { data: labels, height: opts.size, width: opts.size },
      };
    },
  };
}
