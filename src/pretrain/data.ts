/**
 * Pretraining batches: a shuffled, drop-last pass per epoch (seeded by (seed, epoch)), one
 * augmented view per image (seeded by (seed, step)), patchified for the model. A batch is a pure
 * function of (seed, step), so a resumed run sees exactly the batches it would have seen.
 */
import type { ImageDataset, RawImage } from '../data/dataset.js';
import { loadFashionMnist, locateFashionMnist } from '../data/fashion-mnist.js';
import { CANVAS_DEFAULTS, fmnistCanvas } from '../data/fmnist-canvas.js';
import { fmnistScenesImages, SCENES_DEFAULTS } from '../data/fmnist-scenes.js';
import type { ImageCheck } from '../data/image-folder.js';
import { BadImageError, openImageFolder } from '../data/image-folder.js';
import { randomResizedCropFlip, renderImage } from '../data/transforms.js';
import { patchify } from '../model/patches.js';
import { Rng, STREAM } from '../runtime/rng.js';
import type { PretrainConfig, TrainConfig } from './config.js';
import type { PretrainBatch } from './step.js';

export interface PretrainData {
  dataset: ImageDataset;
  /** Content identity of the training images (resume checks it). */
  fingerprint: string;
  /** Bad files left out with --skip-bad-images. */
  skipped: ImageCheck[];
}

/** The training images, every file checked before the run writes anything. */
export async function openPretrainDataset(
  t: TrainConfig,
  imageSize: number,
  opts: { skipBadImages?: boolean; onProgress?: (done: number, total: number) => void; fullDecodeMax?: number } = {},
): Promise<PretrainData> {
  if (t.data === 'fmnist') {
    const dataset = loadFashionMnist(locateFashionMnist(t.dataDir || undefined), 'train');
    return { dataset, fingerprint: dataset.fingerprint ?? '', skipped: [] };
  }
  if (t.data === 'fmnist-scenes') {
    // The dense task's own training canvases (seed 0, as the eval task renders them), unlabeled.
    const items = loadFashionMnist(locateFashionMnist(t.dataDir || undefined), 'train');
    const dataset = fmnistScenesImages(items, { ...SCENES_DEFAULTS, count: t.scenes });
    return { dataset, fingerprint: dataset.fingerprint ?? '', skipped: [] };
  }
  if (t.data === 'fmnist-canvas') {
    const items = loadFashionMnist(locateFashionMnist(t.dataDir || undefined), 'train');
    // Labeled (the supervised ceiling reads the labels; CAPI never does).
    const dataset = fmnistCanvas(items, 'train', { ...CANVAS_DEFAULTS, count: Math.min(t.canvases, items.size) });
    return { dataset, fingerprint: dataset.fingerprint ?? '', skipped: [] };
  }
  // Decode photos at a little over the crop size: RandomResizedCrop then works on that.
  const f = await openImageFolder(t.data, {
    shortSide: Math.ceil(imageSize * 1.15),
    skipBad: opts.skipBadImages,
    onProgress: opts.onProgress,
    fullDecodeMax: opts.fullDecodeMax,
  });
  return { dataset: f.dataset, fingerprint: f.fingerprint, skipped: f.skipped };
}

export class BatchSampler {
  private epoch = -1;
  private perm: Int32Array = new Int32Array(0);
  readonly stepsPerEpoch: number;

  constructor(
    private readonly size: number,
    private readonly batchSize: number,
    private readonly seed: number,
  ) {
    if (size < batchSize) throw new Error(`dataset has ${size} images, fewer than one batch of ${batchSize}: lower --batch-size`);
    this.stepsPerEpoch = Math.floor(size / batchSize);
  }

  indices(step: number): Int32Array {
    const epoch = Math.floor(step / this.stepsPerEpoch);
    if (epoch !== this.epoch) {
      this.perm = Rng.derive(this.seed, epoch, STREAM.shuffle).permutation(this.size);
      this.epoch = epoch;
    }
    const start = (step % this.stepsPerEpoch) * this.batchSize;
    return this.perm.subarray(start, start + this.batchSize);
  }
}

/**
 * An image of the batch, or (skipBad) the next index that decodes when a file fails to (a file
 * damaged after the run's check): the substitute is a function of the index, so a resumed run
 * replays the same batches, and the run records which files it left out.
 */
async function loadImage(ds: ImageDataset, i: number, step: number, skipped: string[] | undefined): Promise<RawImage> {
  for (let k = 0; k < ds.size; k++) {
    try {
      return await ds.load((i + k) % ds.size);
    } catch (e) {
      if (!(e instanceof BadImageError)) throw e;
      if (!skipped) throw new Error(`${e.file}: cannot be decoded (${e.problem}) at step ${step}`);
      skipped.push(e.file);
    }
  }
  throw new Error(`no image of ${ds.description} can be decoded`);
}

export async function loadPretrainBatch(
  ds: ImageDataset,
  sampler: BatchSampler,
  cfg: PretrainConfig,
  step: number,
  skipBadImages = false,
): Promise<PretrainBatch> {
  const { imageSize: s, patchSize: p } = cfg.model;
  const t = cfg.train;
  const idx = sampler.indices(step);
  const rng = Rng.derive(t.seed, step, STREAM.augment);
  const skipped: string[] | undefined = skipBadImages ? [] : undefined;
  const images = await Promise.all(Array.from(idx, (i) => loadImage(ds, i, step, skipped)));
  const pixels = new Float32Array(idx.length * 3 * s * s);
  images.forEach((img, i) =>
    renderImage(img, randomResizedCropFlip(rng, img, s, [t.cropScaleMin, t.cropScaleMax], t.hflip), pixels, i * 3 * s * s),
  );
  return { size: idx.length, patches: patchify(pixels, idx.length, 3, s, s, p), ...(skipped?.length ? { skippedImages: skipped } : {}) };
}
