/**
 * The dense protocol (eval spec 3) out of core: the same splits, standardisation, k-NN and
 * L-BFGS logistic regression as protocol.ts, computed block by block over patch rows that stay
 * where they are (a feature store's shards on disk, or arrays in memory), with the CPU kernels of
 * src/runtime/cpu-kernels.ts (OpenBLAS where capi-native is built) on plain memory, never on the
 * wasm heap. Memory is the query block, one block of base rows, the k best so far and the
 * classifier: bounded by `memoryBytes`, whatever the number of rows.
 *
 * - Standardisation: column moments streamed over the 90% split's rows (float64), then every
 *   block standardised as it is read.
 * - Exact k-NN: per query block, one pass over the base: scores = Q B^T (sgemm), each row's k best
 *   merged block by block (the reference's chunked search, eval spec 3.5).
 * - Logistic regression: the loss and gradient of the scaled objective accumulated over base
 *   blocks (logits = X W + b, softmax - onehot, X^T G by sgemm with X transposed in place: no
 *   transposed copy), minimised by the same L-BFGS (logreg.ts).
 */
import * as path from 'node:path';
import type { CpuKernels } from '../runtime/cpu-kernels.js';
import { segmentationScores } from './metrics.js';
import { patchModes } from './patches.js';
import type { SegLabels, SegScore } from './protocol.js';
import { splitTrainVal, testScores } from './protocol.js';

/** Patch feature rows read in order, block by block. */
export interface PatchRows {
  rows: number;
  dim: number;
  /**
   * Calls `f` on consecutive blocks of at most `maxRows` rows: the first row's number and the
   * block's features [count, dim] (a buffer the caller may change; valid during the call).
   */
  forEachBlock(maxRows: number, f: (start: number, feats: Float32Array, count: number) => void): void;
}

/**
 * Rows held in memory as a PatchRows (small tasks, tests, arrays another tool reads too). Each block
 * is a copy (the caller may change it) into one buffer reused block after block: memory already
 * touched, not a fresh allocation whose pages fault in on every block.
 */
export function arrayRows(feats: Float32Array, dim: number): PatchRows {
  const rows = feats.length / dim;
  return {
    rows,
    dim,
    forEachBlock(maxRows, f) {
      const block = new Float32Array(Math.min(maxRows, rows) * dim);
      for (let s = 0; s < rows; s += maxRows) {
        const count = Math.min(maxRows, rows - s);
        const view = block.subarray(0, count * dim);
        view.set(feats.subarray(s * dim, (s + count) * dim));
        f(s, view, count);
      }
    },
  };
}

/** A split's rows with their pixel labels [rows, P] and images (patches.ts PatchLabels). */
export interface SourceSet {
  source: PatchRows;
  pixels: Int32Array;
  rowImage: Int32Array;
  images: number;
}

/** What the classifiers need of a model's splits, prepared once (the splits and the standardisation). */
export interface OutOfCoreSplits extends SegLabels {
  train: SourceSet;
  test: SourceSet;
  kernels: CpuKernels;
  /** Rows of a block; blocks of queries, base rows and scores fit `memoryBytes` together. */
  blockRows: number;
  queryRows: number;
  /** Per train row: in the 90% split (1) or the 10% validation split (2). */
  trainSplit: Uint8Array;
  /** Per train row: its mode label, and whether it is a training row (mode not ignored, spec 3.3). */
  modes: Int32Array;
  training: Uint8Array;
  /** x -> (x - shift) * scale per column (standardisation, or the identity). */
  shift: Float32Array;
  scale: Float32Array;
  /** Where units of work are kept, shared by the tasks of a Slurm evaluation (absent: in this process only). */
  units?: UnitStore;
}

/**
 * Units of work kept on disk: the k-NN of one query block in one phase and metric, the
 * validation fit of one C. A unit with an output is read, not computed; `mine` says which
 * missing ones this process computes (a Slurm array task's share: absent, all of them);
 * `preempted` is asked between units.
 */
export interface UnitStore {
  dir: string;
  mine?: (unit: string) => boolean;
  preempted?: () => boolean;
}

/** Thrown between units when the job was told to make way (Slurm's USR1): what is done is kept. */
export class Preempted extends Error {
  constructor() {
    super('preempted: the units done so far are kept; the requeued task continues');
  }
}

export const unitFile = (u: UnitStore, name: string, ext: string) => path.join(u.dir, `${name}.${ext}`);

/** Whether this process computes unit `name` now (its output missing, and in its share). */
export function computes(s: OutOfCoreSplits, name: string): boolean {
  if (!s.units) return true;
  if (s.units.preempted?.()) throw new Preempted();
  return s.units.mine?.(name) ?? true;
}

/** The smallest blocks the protocol runs with: below this a budget is refused up front. */
export const MIN_BLOCK_ROWS = 256;

/** Bytes one row of `dim` floats takes in a block, with its share of a score tile. */
const rowBytes = (dim: number) => 4 * dim;

/**
 * The query and base block sizes that fit `memoryBytes`: half for the query block (and its k
 * best), half for a base block and its score tile against the queries.
 */
export function blockSizes(dim: number, memoryBytes: number, k = 30): { queryRows: number; blockRows: number } {
  const queryRows = Math.max(1, Math.floor(memoryBytes / 2 / (rowBytes(dim) + 8 * k)));
  const q = Math.min(queryRows, 8192);
  // A base block of b rows needs b * dim floats and a q x b score tile.
  const blockRows = Math.max(1, Math.floor(memoryBytes / 2 / (rowBytes(dim) + 4 * q)));
  return { queryRows: q, blockRows: Math.min(blockRows, 65536) };
}

/** Splits train 90/10 by image and fits the standardisation on the 90% rows by streaming (spec 3.2, 3.4). */
export function prepareOutOfCore(
  train: SourceSet,
  test: SourceSet,
  o: SegLabels & {
    standardize: boolean;
    seed: number;
    kernels: CpuKernels;
    memoryBytes: number;
    units?: UnitStore;
    /** Smaller blocks than the budget allows (benchmarks and tests of the blocking). */
    maxBlocks?: { queryRows: number; blockRows: number };
  },
): OutOfCoreSplits {
  const d = train.source.dim;
  const split = splitTrainVal(train.images, o.seed);
  const isVal = new Uint8Array(train.images);
  for (const im of split.val) isVal[im] = 1;
  const trainSplit = Uint8Array.from(train.rowImage, (im) => (isVal[im] ? 2 : 1));
  const modes = patchModes(train.pixels, o.pixelsPerPatch, o.numLabels);
  const ignored = new Set(o.ignore);
  const training = Uint8Array.from(modes, (m) => (ignored.has(m) ? 0 : 1));
  // What stays in memory whatever the blocks: the pixel labels of both splits and the per-row state.
  const fixed = 4 * (train.pixels.length + test.pixels.length) + 10 * train.rowImage.length + 4 * test.rowImage.length;
  const least = 2 * MIN_BLOCK_ROWS * (rowBytes(d) + 4 * MIN_BLOCK_ROWS + 8 * 30);
  if (o.memoryBytes < fixed + least) {
    const gib = (b: number) => (b / 2 ** 30).toFixed(2);
    throw new Error(
      `--memory-gb ${gib(o.memoryBytes)} is too small for this dense protocol: its patch labels take ${gib(fixed)} GiB and blocks of ${MIN_BLOCK_ROWS} rows ${gib(least)} GiB more; raise --memory-gb to at least ${gib(fixed + least)}, or keep fewer training patches (--train-patch-stride)`,
    );
  }
  const fit = blockSizes(d, o.memoryBytes - fixed);
  const sizes = {
    queryRows: Math.min(fit.queryRows, o.maxBlocks?.queryRows ?? Infinity),
    blockRows: Math.min(fit.blockRows, o.maxBlocks?.blockRows ?? Infinity),
  };
  const shift = new Float32Array(d);
  const scale = new Float32Array(d).fill(1);
  if (o.standardize) {
    const sum = new Float64Array(d);
    const sq = new Float64Array(d);
    let n = 0;
    train.source.forEachBlock(sizes.blockRows, (start, feats, count) => {
      const kept = gather(feats, count, d, (i) => trainSplit[start + i] === 1);
      o.kernels.colMoments(kept.rows, kept.count, d, sum, sq);
      n += kept.count;
    });
    for (let j = 0; j < d; j++) {
      const mean = sum[j] / n;
      const std = Math.sqrt(Math.max(sq[j] / n - mean * mean, 0));
      shift[j] = mean;
      scale[j] = std > 0 ? 1 / std : 1; // zero-spread channels are only centred (standardize.ts)
    }
  }
  return { ...o, train, test, trainSplit, modes, training, shift, scale, blockRows: sizes.blockRows, queryRows: sizes.queryRows };
}

/** The rows of a block that `keep` selects, packed (in place at the block's front). */
function gather(
  feats: Float32Array,
  count: number,
  d: number,
  keep: (i: number) => boolean,
): { rows: Float32Array; count: number; index: Int32Array } {
  const index = new Int32Array(count);
  let n = 0;
  for (let i = 0; i < count; i++) {
    if (!keep(i)) continue;
    if (n !== i) feats.copyWithin(n * d, i * d, (i + 1) * d);
    index[n++] = i;
  }
  return { rows: feats.subarray(0, n * d), count: n, index: index.subarray(0, n) };
}

/** The rows of `set` that `keep` selects, block by block, standardised (and l2-normalised for cosine). */
export function forEachStandardized(
  s: OutOfCoreSplits,
  set: SourceSet,
  maxRows: number,
  keep: (row: number) => boolean,
  normalize: boolean,
  f: (rows: Float32Array, count: number, rowIds: Int32Array) => void,
): void {
  const d = set.source.dim;
  set.source.forEachBlock(maxRows, (start, feats, count) => {
    const kept = gather(feats, count, d, (i) => keep(start + i));
    if (!kept.count) return;
    s.kernels.affineRows(kept.rows, kept.count, d, s.shift, s.scale, normalize);
    f(
      kept.rows,
      kept.count,
      Int32Array.from(kept.index, (i) => start + i),
    );
  });
}

/** Validation: the 10% split's rows queried against the 90%'s; test: the test rows against all of train. */
export type Phase = 'validation' | 'test';

/** The base (train rows) and queries of a phase: validation queries the 10% split against the 90%; test, all of train. */
export function phaseRows(s: OutOfCoreSplits, phase: Phase) {
  const base = (r: number) => s.training[r] === 1 && (phase === 'test' || s.trainSplit[r] === 1);
  return phase === 'validation'
    ? { base, querySet: s.train, query: (r: number) => s.trainSplit[r] === 2 }
    : { base, querySet: s.test, query: (_r: number) => true };
}

/** Pixel labels [rows, P] of the given rows of a set. */
function pixelsOf(set: SourceSet, rows: Int32Array, p: number): Int32Array {
  const out = new Int32Array(rows.length * p);
  rows.forEach((r, i) => out.set(set.pixels.subarray(r * p, (r + 1) * p), i * p));
  return out;
}

export function scoreOf(s: OutOfCoreSplits, phase: Phase, queryRows: Int32Array, pred: Int32Array): SegScore {
  const p = s.pixelsPerPatch;
  const set = phase === 'validation' ? s.train : s.test;
  const gt = pixelsOf(set, queryRows, p);
  // The test set is every test row in order: images as the in-memory protocol bootstraps them.
  if (phase === 'test') return testScores(s, gt, pred, (i) => s.test.rowImage[queryRows[Math.floor(i / p)]], s.test.images);
  const r = segmentationScores(gt, pred, s.ignore);
  return { mIoU: r.mIoU, accuracy: r.accuracy };
}
