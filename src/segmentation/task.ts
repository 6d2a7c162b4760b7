/**
 * Segmentation with frozen patch features (eval spec 3): k-NN (k x metric grid, pixel voting)
 * and L-BFGS logistic regression (C grid, one class per patch), hyper-parameters chosen on a 10%
 * validation split of train by mIoU, refit on train + validation, scored on test at the
 * evaluation resolution.
 */
import { Rng } from '../runtime/rng.js';
import type { KnnMetric } from './knn.js';
import { knnSearch, knnVotePixels } from './knn.js';
import { disposeLogRegData, fitLogReg, LOGREG_C_GRID, LOGREG_DEFAULTS, predictLogReg, prepareLogRegData } from './logreg.js';
import type { LogRegModel } from './logreg.js';
import { segmentationScores } from './metrics.js';
import { patchModes } from './patches.js';
import type { Standardizer } from './standardize.js';
import { applyStandardizer, fitStandardizer } from './standardize.js';

/** Patch features with their pixel labels: feats [n_img * T, D], pixels [n_img * T, P]. */
export interface PatchSet {
  feats: Float32Array;
  pixels: Int32Array;
  images: number;
  tokensPerImage: number;
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
  onProgress?: (what: string) => void;
}

export interface SegResult {
  mIoU: number;
  accuracy: number;
  best: string;
  /** Validation mIoU per setting. */
  validation: Record<string, number>;
  seconds: number;
}

function selectImages(set: PatchSet, imgs: Int32Array, d: number, p: number): PatchSet {
  const t = set.tokensPerImage;
  const feats = new Float32Array(imgs.length * t * d);
  const pixels = new Int32Array(imgs.length * t * p);
  imgs.forEach((im, i) => {
    feats.set(set.feats.subarray(im * t * d, (im + 1) * t * d), i * t * d);
    pixels.set(set.pixels.subarray(im * t * p, (im + 1) * t * p), i * t * p);
  });
  return { feats, pixels, images: imgs.length, tokensPerImage: t };
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
  for (const metric of metrics) {
    o.onProgress?.(`k-NN ${metric} on validation`);
    const base = gatherRows(trX, trRows.rows, d);
    const basePixels = gatherRows(tr.pixels, trRows.rows, p);
    const res = knnSearch(base, trRows.rows.length, vaX, va.pixels.length / p, d, Math.max(...ks), metric);
    for (const k of ks) knnVal[`k=${k} ${metric}`] = score(va.pixels, knnVotePixels(res, k, basePixels, p, o.numLabels)).mIoU;
  }
  const knnBest = Object.entries(knnVal).reduce((a, b) => (b[1] > a[1] ? b : a))[0];
  const [kStr, bestMetric] = knnBest.split(' ');
  const bestK = Number(kStr.slice(2));
  o.onProgress?.(`k-NN refit (${knnBest}) and test`);
  const base = gatherRows(allX, allRows.rows, d);
  const basePixels = gatherRows(train.pixels, allRows.rows, p);
  const res = knnSearch(base, allRows.rows.length, teX, test.pixels.length / p, d, bestK, bestMetric as KnnMetric);
  const knnTest = score(test.pixels, knnVotePixels(res, bestK, basePixels, p, o.numLabels));
  const knn: SegResult = { mIoU: knnTest.mIoU, accuracy: knnTest.accuracy, best: knnBest, validation: knnVal, seconds: (performance.now() - t0) / 1000 };

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
