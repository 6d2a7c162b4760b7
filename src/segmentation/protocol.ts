/**
 * The dense protocol on frozen patch features (eval spec 3): the 10% validation split of the
 * training images, standardisation with 90%-split statistics, training rows (mode label not
 * ignored), and the two classifiers' fits and scores: k-NN (pixel voting) and L-BFGS logistic
 * regression. Which grid point wins, and the refit, are the evaluation layer's (src/eval).
 */
import type { KnnIndex, KnnMetric, KnnResult } from '../features/knn.js';
import { chooseKnnIndex, knnVotePatches, knnVotePixels, searchNeighbours } from '../features/knn.js';
import { Rng } from '../runtime/rng.js';
import type { LogRegModel, LogRegStop } from './logreg.js';
import { disposeLogRegData, fitLogReg, LOGREG_DEFAULTS, predictLogReg, prepareLogRegData } from './logreg.js';
import { bootstrapMIoU, foregroundIoU, segmentationScores } from './metrics.js';
import { patchModes } from './patches.js';
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

export interface SegLabels {
  dim: number;
  pixelsPerPatch: number;
  /** Label values 0..numLabels-1 cover every value in the maps (ignored ones included). */
  numLabels: number;
  classes: number;
  ignore: number[];
  /** The background label, if the task has one (foreground mIoU leaves it out). */
  background?: number;
}

/** One classifier's test scores. */
export interface SegScore {
  mIoU: number;
  accuracy: number;
  /** Standard error of the mIoU, bootstrap over test images (test scores only). */
  mIoUSE?: number;
  /** The bootstrap's replicates of the mIoU (metrics.ts bootstrapMIoU; test scores only). */
  mIoUReplicates?: Float64Array;
  /** mIoU over the labels except the background (tasks with one; test scores only). */
  fgIoU?: number;
}

/** Training rows (non-ignored mode label) of a patch set, with those modes. */
interface TrainingRows {
  rows: Int32Array;
  modes: Int32Array;
}

/** Everything both classifiers need, computed once per model. */
export interface SegSplits extends SegLabels {
  /** 90% train, 10% validation (features standardised if asked), all of train, test. */
  train: PatchSet;
  val: PatchSet;
  all: PatchSet;
  test: PatchSet;
  trainRows: TrainingRows;
  allRows: TrainingRows;
}

/** Validation images: the first floor(n/10) of a seeded permutation (spec 3.2). */
export function splitTrainVal(images: number, seed: number): { train: Int32Array; val: Int32Array } {
  const perm = new Rng(seed).permutation(images);
  const nVal = Math.floor(images / 10);
  return { val: Int32Array.from(perm.subarray(0, nVal)).sort(), train: Int32Array.from(perm.subarray(nVal)).sort() };
}

function gatherRows<T extends Float32Array | Int32Array>(x: T, rows: Int32Array, len: number): T {
  const out = new (x.constructor as new (n: number) => T)(rows.length * len);
  rows.forEach((r, i) => out.set(x.subarray(r * len, (r + 1) * len), i * len));
  return out;
}

/** The rows of `set` whose image is in `imgs`. */
function selectImages(set: PatchSet, imgs: Int32Array, d: number, p: number): PatchSet {
  const slot = new Int32Array(set.images).fill(-1);
  imgs.forEach((im, i) => (slot[im] = i));
  const rows = Int32Array.from(set.rowImage.keys()).filter((r) => slot[set.rowImage[r]] >= 0);
  return {
    feats: gatherRows(set.feats, rows, d),
    pixels: gatherRows(set.pixels, rows, p),
    rowImage: Int32Array.from(rows, (r) => slot[set.rowImage[r]]),
    images: imgs.length,
  };
}

/** Training rows whose mode label is not ignored (spec 3.3), with those modes. */
function trainingRows(set: PatchSet, o: SegLabels): TrainingRows {
  const modes = patchModes(set.pixels, o.pixelsPerPatch, o.numLabels);
  const ignored = new Set(o.ignore);
  const rows = Int32Array.from(modes.keys()).filter((i) => !ignored.has(modes[i]));
  return { rows, modes: Int32Array.from(rows, (i) => modes[i]) };
}

/** Splits train 90/10 by image (seeded) and standardises with the 90% split's statistics (spec 3.4). */
export function prepareSegmentation(train: PatchSet, test: PatchSet, o: SegLabels & { standardize: boolean; seed: number }): SegSplits {
  const { dim: d, pixelsPerPatch: p } = o;
  const split = splitTrainVal(train.images, o.seed);
  const tr = selectImages(train, split.train, d, p);
  const va = selectImages(train, split.val, d, p);
  const std = o.standardize ? fitStandardizer(tr.feats, d) : undefined;
  const prep = (s: PatchSet): PatchSet => (std ? { ...s, feats: applyStandardizer(std, s.feats) } : s);
  const labels: SegLabels = {
    dim: d,
    pixelsPerPatch: p,
    numLabels: o.numLabels,
    classes: o.classes,
    ignore: o.ignore,
    background: o.background,
  };
  return {
    ...labels,
    train: prep(tr),
    val: prep(va),
    all: prep(train),
    test: prep(test),
    trainRows: trainingRows(tr, o),
    allRows: trainingRows(train, o),
  };
}

const score = (s: SegLabels, gt: Int32Array, pred: Int32Array): SegScore => {
  const r = segmentationScores(gt, pred, s.ignore);
  return { mIoU: r.mIoU, accuracy: r.accuracy };
};

/**
 * A test set's scores: mIoU, pixel accuracy, foreground mIoU, and the mIoU's bootstrap over the
 * test images (`pixelImage`: the image of the i-th pixel).
 */
export function testScores(
  s: SegLabels,
  gt: Int32Array,
  pred: Int32Array,
  pixelImage: (pixel: number) => number,
  images: number,
): SegScore {
  const boot = bootstrapMIoU(gt, pred, pixelImage, images, s.ignore, s.numLabels);
  const r = segmentationScores(gt, pred, s.ignore);
  const fg = s.background === undefined ? undefined : foregroundIoU(r.perClass, s.background);
  return {
    mIoU: r.mIoU,
    accuracy: r.accuracy,
    mIoUSE: boot.se,
    mIoUReplicates: boot.replicates,
    ...(fg === undefined ? {} : { fgIoU: fg }),
  };
}

function testScore(s: SegSplits, pred: Int32Array): SegScore {
  const p = s.pixelsPerPatch;
  return testScores(s, s.test.pixels, pred, (i) => s.test.rowImage[Math.floor(i / p)], s.test.images);
}

function expandPerPatch(labels: Int32Array, p: number): Int32Array {
  const out = new Int32Array(labels.length * p);
  labels.forEach((l, i) => out.fill(l, i * p, (i + 1) * p));
  return out;
}

// ---- k-NN (spec 3.5) ----

export interface KnnPoint {
  k: number;
  metric: KnnMetric;
}

export const SEG_KNN_KS = [1, 3, 10, 30];
export const SEG_KNN_METRICS: KnnMetric[] = ['cosine', 'l2'];

/** Metric-major, k-minor: one search per metric with the largest k answers every k. */
export const segKnnGrid = (ks = SEG_KNN_KS, metrics = SEG_KNN_METRICS): KnnPoint[] =>
  metrics.flatMap((metric) => ks.map((k) => ({ k, metric })));

/** The search the refit on all of train will need decides the index for both phases. */
export function segKnnIndex(s: SegSplits, index: KnnIndex): 'exact' | 'hnsw' {
  return chooseKnnIndex(index, s.allRows.rows.length, s.test.pixels.length / s.pixelsPerPatch, s.dim);
}

type SearchProgress = (what: string, done: number, total: number) => void;

/**
 * How a query patch's pixels are predicted from its neighbours: 'pixel' (the reference's, spec
 * 3.5: a vote per pixel position over the neighbours' label layouts) or 'patch' (a vote over the
 * neighbours' mode labels, one label a patch, as the logistic regression predicts).
 */
export type KnnVote = 'pixel' | 'patch';

/**
 * Searches already run on a model's splits, by phase and metric: the pixel and patch votes of one
 * grid read the same neighbours, so each search runs once per model.
 */
const searches = new WeakMap<SegSplits, Map<string, KnnResult>>();

async function neighbours(
  s: SegSplits,
  phase: 'validation' | 'test',
  base: PatchSet,
  rows: TrainingRows,
  query: PatchSet,
  metric: KnnMetric,
  k: number,
  index: 'exact' | 'hnsw',
  progress?: SearchProgress,
): Promise<KnnResult> {
  const memo = searches.get(s) ?? new Map<string, KnnResult>();
  searches.set(s, memo);
  const key = `${phase}:${metric}:${index}`;
  const known = memo.get(key);
  if (known && known.k >= Math.min(k, rows.rows.length)) return known;
  const baseX = gatherRows(base.feats, rows.rows, s.dim);
  const res = await searchNeighbours(index, baseX, query.feats, s.dim, k, metric, (done, total) =>
    progress?.(`${metric} search`, done, total),
  );
  memo.set(key, res);
  return res;
}

async function knnFitAndScore(
  s: SegSplits,
  phase: 'validation' | 'test',
  vote: KnnVote,
  points: KnnPoint[],
  index: 'exact' | 'hnsw',
  progress?: SearchProgress,
): Promise<SegScore[]> {
  const [base, rows, query] = phase === 'validation' ? [s.train, s.trainRows, s.val] : [s.all, s.allRows, s.test];
  const p = s.pixelsPerPatch;
  const basePixels = vote === 'pixel' ? gatherRows(base.pixels, rows.rows, p) : undefined;
  const predict = (res: KnnResult, k: number) =>
    basePixels ? knnVotePixels(res, k, basePixels, p, s.numLabels) : knnVotePatches(res, k, rows.modes, p, s.numLabels);
  const scoreOf = (pred: Int32Array) => (phase === 'test' ? testScore(s, pred) : score(s, query.pixels, pred));
  const largestK = (metric: KnnMetric) => Math.max(...points.filter((pt) => pt.metric === metric).map((pt) => pt.k));
  const scores: SegScore[] = [];
  for (const pt of points)
    scores.push(scoreOf(predict(await neighbours(s, phase, base, rows, query, pt.metric, largestK(pt.metric), index, progress), pt.k)));
  return scores;
}

/** Validation mIoU of every grid point, neighbours from the 90% split. */
export async function segKnnValidation(
  s: SegSplits,
  grid: KnnPoint[],
  index: 'exact' | 'hnsw',
  vote: KnnVote = 'pixel',
  progress?: SearchProgress,
): Promise<number[]> {
  return (await knnFitAndScore(s, 'validation', vote, grid, index, progress)).map((r) => r.mIoU);
}

/** Test scores of one grid point, neighbours from all of train (the refit). */
export async function segKnnTest(
  s: SegSplits,
  point: KnnPoint,
  index: 'exact' | 'hnsw',
  vote: KnnVote = 'pixel',
  progress?: SearchProgress,
): Promise<SegScore> {
  return (await knnFitAndScore(s, 'test', vote, [point], index, progress))[0];
}

// ---- logistic regression (spec 3.6) ----

/** What one L-BFGS fit did, for results and progress. */
export interface LogRegFit {
  c: number;
  iterations: number;
  evaluations: number;
  gradMax: number;
  loss: number;
  /** Why the fit ended (absent in results written before it was recorded). */
  stop?: LogRegStop;
}

/** After every L-BFGS iteration, and once more when the fit ends (with why it ended). */
type FitProgress = (c: number, iteration: number, loss: number, gradMax: number, ended?: LogRegStop) => void;

/** What a fit did, as results record it. */
export const fitInfo = (c: number, m: LogRegModel): LogRegFit => ({
  c,
  iterations: m.iterations,
  evaluations: m.evaluations,
  gradMax: m.gradMax,
  loss: m.loss,
  stop: m.stop,
});

/**
 * Validation mIoU for each C, fitted on the 90% split in ascending order, each fit warm-started
 * from the previous one (the problem is convex, so only the path changes, not the optimum).
 */
export async function segLogRegValidation(
  s: SegSplits,
  cs: number[],
  maxIter: number,
  progress?: FitProgress,
): Promise<{ scores: number[]; fits: LogRegFit[] }> {
  const { dim: d, pixelsPerPatch: p } = s;
  const data = prepareLogRegData(gatherRows(s.train.feats, s.trainRows.rows, d), s.trainRows.modes, d, s.classes);
  const scores: number[] = [];
  const fits: LogRegFit[] = [];
  let prev: LogRegModel | undefined;
  try {
    for (const c of cs) {
      const onIteration = (iteration: number, loss: number, g: number) => progress?.(c, iteration, loss, g);
      const m = await fitLogReg(
        data,
        { ...LOGREG_DEFAULTS, maxIter, c, onIteration },
        prev ? Float32Array.from([...prev.weights, ...prev.bias]) : undefined,
      );
      prev = m;
      progress?.(c, m.iterations, m.loss, m.gradMax, m.stop);
      fits.push(fitInfo(c, m));
      scores.push(score(s, s.val.pixels, expandPerPatch(await predictLogReg(m, s.val.feats, s.val.pixels.length / p), p)).mIoU);
    }
  } finally {
    disposeLogRegData(data);
  }
  return { scores, fits };
}

/** Refit at `c` on all of train (from zeros), scored on test. */
export async function segLogRegTest(
  s: SegSplits,
  c: number,
  maxIter: number,
  progress?: FitProgress,
): Promise<SegScore & { fit: LogRegFit }> {
  const { dim: d, pixelsPerPatch: p } = s;
  const data = prepareLogRegData(gatherRows(s.all.feats, s.allRows.rows, d), s.allRows.modes, d, s.classes);
  let m: LogRegModel;
  try {
    m = await fitLogReg(data, { ...LOGREG_DEFAULTS, maxIter, c, onIteration: (iteration, loss, g) => progress?.(c, iteration, loss, g) });
  } finally {
    disposeLogRegData(data);
  }
  progress?.(c, m.iterations, m.loss, m.gradMax, m.stop);
  const pred = await predictLogReg(m, s.test.feats, s.test.pixels.length / p);
  return { ...testScore(s, expandPerPatch(pred, p)), fit: fitInfo(c, m) };
}
