/**
 * The features an evaluation runner reads (src/eval/classification.ts, segmentation.ts): a model's
 * features of a split, in batches that fit the backend, with progress; the same as a stream of
 * patch-row blocks for the out-of-core dense protocol; and PCA pictures of them.
 */
import * as tf from '@tensorflow/tfjs';
import type { RawImage } from '../data/dataset.js';
import { IMAGENET_MEAN, IMAGENET_STD, renderImage } from '../data/transforms.js';
import type { EvalTransform, Features, ImageSource } from '../features/extract.js';
import { evalBox, extractFeatures, fillStore, openStoreFor } from '../features/extract.js';
import type { FeatureModel } from '../features/models.js';
import { storeRows } from '../features/store.js';
import { backendInfo, maxBindingBytes, WASM_HEAP_BYTES, WASM_HEAP_RESERVE } from '../runtime/backend.js';
import { runningMs } from '../runtime/clock.js';
import { withWasmHeap } from '../runtime/wasm-oom.js';
import type { PatchRows } from '../segmentation/out-of-core.js';
import { arrayRows } from '../segmentation/out-of-core.js';
import type { EvalConfig } from './config.js';
import type { Context } from './context.js';
import { lazyProgress } from './hooks.js';

/** Decoded images kept in memory between models, per split, at most this many bytes (else re-decoded). */
export const IMAGE_MEMO_BYTES = 2 ** 30;

/** The largest feature batch <= 64 whose estimated one-block activations fit this budget. */
const FEATURE_ACTIVATION_BUDGET = 2 ** 29;

/**
 * Images a forward batch holds: --feature-batch, else the largest <= 64 within the activation
 * budget. On a GPU no tensor may exceed one buffer binding (`bindingBytes`, the adapter's limit):
 * the automatic batch stays within it, and a forced one beyond it is refused in one line.
 */
export function featureBatch(
  cfg: Pick<EvalConfig, 'featureBatch'>,
  model: FeatureModel,
  size: number,
  bindingBytes = maxBindingBytes(),
): number {
  const largest = model.largestTensorBytesPerImage(size);
  const fits = bindingBytes && largest > 0 ? Math.floor(bindingBytes / largest) : Number.POSITIVE_INFINITY;
  const mib = (x: number) => (x / 2 ** 20).toFixed(0);
  const over = `over the WebGPU adapter's ${mib(bindingBytes ?? 0)} MiB binding limit`;
  if (fits < 1)
    throw new Error(
      `a ${model.name} forward at ${size} px makes a ${mib(largest)} MiB tensor per image (estimated), ${over}: use another backend (--backend wasm-native) or a lower --resolution`,
    );
  if (cfg.featureBatch > fits)
    throw new Error(
      `--feature-batch ${cfg.featureBatch} makes a ${mib(cfg.featureBatch * largest)} MiB tensor (estimated), ${over}: use at most ${fits}, or 0 (automatic)`,
    );
  if (cfg.featureBatch > 0) return cfg.featureBatch;
  return Math.max(1, Math.min(64, fits, Math.floor(FEATURE_ACTIVATION_BUDGET / model.activationBytesPerImage(size))));
}

/**
 * A forced --feature-batch must fit the wasm heap next to the weights already loaded (`liveBytes`);
 * past the heap the threaded build hangs instead of failing, so refuse it in one line.
 */
export function checkFeatureBatch(batch: number, model: FeatureModel, size: number, liveBytes: number, heapBytes = WASM_HEAP_BYTES): void {
  const perImage = model.activationBytesPerImage(size);
  const budget = heapBytes * (1 - WASM_HEAP_RESERVE) - liveBytes;
  if (batch * perImage <= budget) return;
  const gib = (x: number) => (x / 2 ** 30).toFixed(1);
  throw new Error(
    `--feature-batch ${batch} needs about ${gib(batch * perImage + liveBytes)} GiB of the wasm backend's ${gib(heapBytes)} GiB heap ` +
      `(${(perImage / 2 ** 20).toFixed(0)} MiB per image at ${size} px, estimated, beside ${gib(liveBytes)} GiB of weights): ` +
      `use at most ${Math.max(1, Math.floor(budget / perImage))}, or 0 (automatic)`,
  );
}

export const limit = <T extends { size: number }>(d: T, n: number): T => (n > 0 && n < d.size ? { ...d, size: n } : d);

export async function features(
  ctx: Context,
  model: FeatureModel,
  src: ImageSource,
  transform: EvalTransform,
  label: string,
  patchStride = 1,
): Promise<Features> {
  const { cfg, hooks, size } = ctx;
  if (cfg.featureBatch > 0 && backendInfo().backend === 'wasm') checkFeatureBatch(cfg.featureBatch, model, size, tf.memory().numBytes);
  const batch = featureBatch(cfg, model, size);
  const f = await withWasmHeap(`extracting ${label} features at ${batch} images a batch`, 'lower --feature-batch', () =>
    extractFeatures(model, src, {
      size,
      transform,
      patchStride,
      batchSize: batch,
      cacheDir: cfg.cacheDir,
      maxBytes: cfg.maxFeatureGb * 2 ** 30,
      shardImages: cfg.shardImages || undefined,
      log: hooks.log,
      onProgress: lazyProgress(hooks, `${label} features`),
    }),
  );
  if (f.fromCache) hooks.log(`${label} features: from cache`);
  return f;
}

/**
 * A model's patch rows of a split as a stream of blocks (the out-of-core dense protocol): from the
 * feature store (filled first, shard by shard), or from an in-memory extraction without one.
 */
export async function featureRows(
  ctx: Context,
  model: FeatureModel,
  src: ImageSource,
  transform: EvalTransform,
  label: string,
  patchStride = 1,
): Promise<{ source: PatchRows; seconds: number }> {
  const { cfg, hooks, size } = ctx;
  if (!cfg.cacheDir) {
    const f = await features(ctx, model, src, transform, label, patchStride);
    return { source: arrayRows(f.patch, f.patchDim), seconds: f.seconds };
  }
  const t0 = runningMs();
  const grid = Math.floor(size / model.patchSize);
  const opts = { size, transform, cacheDir: cfg.cacheDir, shardImages: cfg.shardImages || undefined };
  const store = openStoreFor(model, src, opts, grid * grid, grid);
  const extracted = await fillStore(model, src, store, {
    ...opts,
    batchSize: featureBatch(cfg, model, size),
    log: hooks.log,
    onProgress: lazyProgress(hooks, `${label} features`),
  });
  if (!extracted) hooks.log(`${label} features: from the store ${store.dir}`);
  return { source: storeRows(store, patchStride), seconds: (runningMs() - t0) / 1000 };
}

/** Eval-view RGB bytes of `img` (the normalisation undone) for pictures. */
function viewBytes(img: RawImage, size: number, transform: EvalTransform): Uint8Array {
  const px = new Float32Array(3 * size * size);
  renderImage(img, { size, box: evalBox(img, transform), flip: false }, px, 0);
  const rgb = new Uint8Array(size * size * 3);
  for (let k = 0; k < size * size; k++) {
    for (let ch = 0; ch < 3; ch++) {
      rgb[k * 3 + ch] = Math.max(0, Math.min(255, Math.round((px[ch * size * size + k] * IMAGENET_STD[ch] + IMAGENET_MEAN[ch]) * 255)));
    }
  }
  return rgb;
}

export async function pcaPictures(
  ctx: Context,
  model: FeatureModel,
  src: ImageSource,
  f: Features,
  transform: EvalTransform,
): Promise<string[]> {
  if (!ctx.hooks.savePca) return [];
  const files: string[] = [];
  const t = f.tokens;
  for (let i = 0; i < Math.min(ctx.cfg.pcaImages, src.size); i++) {
    const rgb = viewBytes(await src.load(i), ctx.size, transform);
    const feats = f.patch.subarray(i * t * f.patchDim, (i + 1) * t * f.patchDim);
    files.push(await ctx.hooks.savePca({ name: `${model.name}-${i}`, rgb, size: ctx.size, feats, grid: f.grid, dim: f.patchDim }));
  }
  return files;
}
