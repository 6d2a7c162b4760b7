/**
 * Segmentation with frozen patch features (eval spec 3): k-NN (k x metric grid, pixel voting)
 * and L-BFGS logistic regression (C grid, one class per patch), hyper-parameters chosen on a 10%
 * validation split of train by mIoU, refit on train + validation, scored on test at the
 * evaluation resolution.
 */
import { Rng } from '../runtime/rng.js';
import type { KnnMetric } from './knn.js';
import { knnSearch, knnVotePixels } from './knn.js';
import type { KnnResult } from './knn.js';
import { knnSearchHnsw } from './knn-hnsw.js';
import { disposeLogRegData, fitLogReg, LOGREG_C_GRID, LOGREG_DEFAULTS, predictLogReg, prepareLogRegData } from './logreg.js';
import type { LogRegModel } from './logreg.js';
import { segmentationScores } from './metrics.js';
import { patchModes } from './patches.js';
import type { Standardizer } from './standardize.js';
import { applyStandardizer, fitStandardizer } from './standardize.js';

/**
 * Patch features with their pixel labels: feats [rows, D], pixels [rows, P], and the image each
 * row comes from (rows may be a subsample of an image's patches, see `trainPatchStride`).
 */
export interface PatchSet {
  feats: Float32Array;
  pixels: Int32Array;
  rowImage: Int32Array;
  images: number;
}

export interface SegTaskOptions {
  dim: number;
  pixelsPerPatch: number;
  /** Label values 0..numLabels-1 cover every value in the maps (ignored ones included). */
  numLabels: number;
  classes: number;
  ignore: number[];
  standardize: boolean;
  seed: number;
  ks?: number[];
  metrics?: KnnMetric[];
  cs?: number[];
  logregMaxIter?: number;
  /** 'auto' (default): exact unless a search would cost more than EXACT_KNN_MAX_FLOP. */
  knnIndex?: KnnIndex;
  onProgress?: (what: string) => void;
}

export type KnnIndex = 'exact' | 'hnsw' | 'auto';
export const KNN_INDEXES: readonly KnnIndex[] = ['exact', 'hnsw', 'auto'];

/**
 * Largest exact search 'auto' runs: 2 n m D multiply-adds. 1e13 is ~10 minutes at the ~16 GFLOP/s
 * the chunked matmul search reaches here (bench:eval), about ADE20K-size with ViT-S.
 */
export const EXACT_KNN_MAX_FLOP = 1e13;

export function chooseKnnIndex(index: KnnIndex, n: number, m: number, dim: number): 'exact' | 'hnsw' {
  if (index !== 'auto') return index;
  return 2 * n * m * dim > EXACT_KNN_MAX_FLOP ? 'hnsw' : 'exact';
}

export interface SegResult {
  mIoU: number;
  accuracy: number;
  best: string;
  /** Validation mIoU per setting. */
  validation: Record<string, number>;
  seconds: number;
  /** k-NN only: which search found the neighbours. */
  index?: 'exact' | 'hnsw';
}

/** The rows of `set` whose image is in `imgs`. */
function selectImages(set: PatchSet, imgs: Int32Array, d: number, p: number): PatchSet {
  const slot = new Int32Array(set.images).fill(-1);
  imgs.forEach((im, i) => (slot[im] = i));
  const rows = Int32Array.from(set.rowImage.keys()).filter((r) => slot[set.rowImage[r]] >= 0);
  return {
    feats: gatherRows(set.feats, rows, d), pixels: gatherRows(set.pixels, rows, p),
    rowImage: Int32Array.from(rows, (r) => slot[set.rowImage[r]]), images: imgs.length,
  };
}

/** Validation images: the first floor(n/10) of a seeded permutation (spec 3.2). */
export function splitTrainVal(images: number, seed: number): { train: Int32Array; val: Int32Array } {
  const perm = new Rng(seed).permutation(images);
  const nVal = Math.floor(images / 10);
  return { val: Int32Array.from(perm.subarray(0, nVal)).sort(), train: Int32Array.from(perm.subarray(nVal)).sort() };
}

/** Training rows whose mode label is not ignored (spec 3.3), with those modes. */
function trainingRows(set: PatchSet, o: SegTaskOptions): { rows: Int32Array; modes: Int32Array } {
  const modes = patchModes(set.pixels, o.pixelsPerPatch, o.numLabels);
  const ignored = new Set(o.ignore);
  const rows = Int32Array.from(modes.keys()).filter((i) => !ignored.has(modes[i]));
  return { rows, modes: Int32Array.from(rows, (i) => modes[i]) };
}

function gatherRows<T extends Float32Array | Int32Array>(x: T, rows: Int32Array, len: number): T {
  const out = new (x.constructor as new (n: number) => T)(rows.length * len);
  rows.forEach((r, i) => out.set(x.subarray(r * len, (r + 1) * len), i * len));
  return out;
}

function expandPerPatch(labels: Int32Array, p: number): Int32Array {
  const out = new Int32Array(labels.length * p);
  labels.forEach((l, i) => out.fill(l, i * p, (i + 1) * p));
  return out;
}

export function runSegmentation(train: PatchSet, test: PatchSet, o: SegTaskOptions): { knn: SegResult; logreg: SegResult } {
  const { dim: d, pixelsPerPatch: p } = o;
  const split = splitTrainVal(train.images, o.seed);
  const tr = selectImages(train, split.train, d, p);
  const va = selectImages(train, split.val, d, p);
  // Standardisation statistics from the 90% train split only, reused for the refit (spec 3.4).
  const std: Standardizer | undefined = o.standardize ? fitStandardizer(tr.feats, d) : undefined;
  const prep = (x: Float32Array) => (std ? applyStandardizer(std, x) : x);
  const trX = prep(tr.feats), vaX = prep(va.feats), allX = prep(train.feats), teX = prep(test.feats);
  const trRows = trainingRows(tr, o);
  const allRows = trainingRows(train, o);
  const score = (gt: Int32Array, pred: Int32Array) => segmentationScores(gt, pred, o.ignore);

  // k-NN: one search per metric with the largest k, then vote for every k.
  const ks = o.ks ?? [1, 3, 10, 30];
  const metrics = o.metrics ?? ['cosine', 'l2'];
  let t0 = performance.now();
  const knnVal: Record<string, number> = {};
  const index = chooseKnnIndex(o.knnIndex ?? 'auto', allRows.rows.length, test.pixels.length / p, d);
  const search = (base: Float32Array, n: number, q: Float32Array, m: number, k: number, metric: KnnMetric): KnnResult =>
    index === 'hnsw' ? knnSearchHnsw(base, n, q, m, d, k, metric) : knnSearch(base, n, q, m, d, k, metric);
  const trBase = gatherRows(trX, trRows.rows, d);
  const trBasePixels = gatherRows(tr.pixels, trRows.rows, p);
  for (const metric of metrics) {
    o.onProgress?.(`k-NN ${metric} on validation (${index})`);
    const res = search(trBase, trRows.rows.length, vaX, va.pixels.length / p, Math.max(...ks), metric);
    for (const k of ks) knnVal[`k=${k} ${metric}`] = score(va.pixels, knnVotePixels(res, k, trBasePixels, p, o.numLabels)).mIoU;
  }
  const knnBest = Object.entries(knnVal).reduce((a, b) => (b[1] > a[1] ? b : a))[0];
  const [kStr, bestMetric] = knnBest.split(' ');
  const bestK = Number(kStr.slice(2));
  o.onProgress?.(`k-NN refit (${knnBest}) and test`);
  const base = gatherRows(allX, allRows.rows, d);
  const basePixels = gatherRows(train.pixels, allRows.rows, p);
  const res = search(base, allRows.rows.length, teX, test.pixels.length / p, bestK, bestMetric as KnnMetric);
  const knnTest = score(test.pixels, knnVotePixels(res, bestK, basePixels, p, o.numLabels));
  const knn: SegResult = { mIoU: knnTest.mIoU, accuracy: knnTest.accuracy, best: knnBest, validation: knnVal, seconds: (performance.now() - t0) / 1000, index };

  // Logistic regression over the C grid (ascending C, warm-started: the problem is convex).
  t0 = performance.now();
  const cs = o.cs ?? LOGREG_C_GRID;
  const maxIter = o.logregMaxIter ?? LOGREG_DEFAULTS.maxIter;
  const lrVal: Record<string, number> = {};
  const data = prepareLogRegData(gatherRows(trX, trRows.rows, d), trRows.modes, d, o.classes);
  let prev: LogRegModel | undefined;
  for (const c of cs) {
    o.onProgress?.(`logistic regression C=${c.toExponential(2)} on validation`);
    const m = fitLogReg(data, { ...LOGREG_DEFAULTS, maxIter, c }, prev ? Float32Array.from([...prev.weights, ...prev.bias]) : undefined);
    prev = m;
    lrVal[`C=${c.toExponential(3)}`] = score(va.pixels, expandPerPatch(predictLogReg(m, vaX, va.pixels.length / p), p)).mIoU;
  }
  disposeLogRegData(data);
  const lrBestKey = Object.entries(lrVal).reduce((a, b) => (b[1] > a[1] ? b : a))[0];
  const bestC = Number(lrBestKey.slice(2));
  o.onProgress?.(`logistic regression refit (${lrBestKey}) and test`);
  const allData = prepareLogRegData(gatherRows(allX, allRows.rows, d), allRows.modes, d, o.classes);
  const final = fitLogReg(allData, { ...LOGREG_DEFAULTS, maxIter, c: bestC });
  disposeLogRegData(allData);
  const lrTest = score(test.pixels, expandPerPatch(predictLogReg(final, teX, test.pixels.length / p), p));
  const logreg: SegResult = { mIoU: lrTest.mIoU, accuracy: lrTest.accuracy, best: lrBestKey, validation: lrVal, seconds: (performance.now() - t0) / 1000 };
  return { knn, logreg };
}
