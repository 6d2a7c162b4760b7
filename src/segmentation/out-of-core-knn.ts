/** The out-of-core exact k-NN (eval spec 3.5): query blocks against base blocks, each a unit of work. */
import * as fs from 'node:fs';
import type { KnnMetric, KnnResult } from '../features/knn.js';
import { knnVotePatches, knnVotePixels } from '../features/knn.js';
import { readSafetensors, writeSafetensors } from '../model/io/safetensors.js';
import type { OutOfCoreSplits, Phase } from './out-of-core.js';
import { computes, forEachStandardized, phaseRows, scoreOf, unitFile } from './out-of-core.js';
import type { KnnPoint, KnnVote, SegScore } from './protocol.js';
import { SEG_KNN_KS } from './protocol.js';

/**
 * The k nearest base rows (train row numbers) of every query row, exact: per query block one pass
 * over the base, scores by sgemm, k best merged. L2 ranks by 2 q.x - |x|^2, cosine by q.x of
 * normalised rows (knn.ts).
 */
export function outOfCoreNeighbours(
  s: OutOfCoreSplits,
  phase: Phase,
  metric: KnnMetric,
  k: number,
  progress?: (done: number, total: number) => void,
): KnnResult & { queryRows: Int32Array } {
  const { base, querySet, query } = phaseRows(s, phase);
  const d = s.train.source.dim;
  let total = 0;
  for (let r = 0; r < querySet.source.rows; r++) if (query(r)) total++;
  // Base rows in order: a neighbour is found as its position here, then named by its train row.
  const baseRows: number[] = [];
  for (let r = 0; r < s.train.source.rows; r++) if (base(r)) baseRows.push(r);
  const kk = Math.max(1, Math.min(k, baseRows.length));
  const indices = new Int32Array(total * kk);
  const scores = new Float32Array(total * kk);
  const queryRows = new Int32Array(total);
  let done = 0;
  let block = 0;
  const cosine = metric === 'cosine';
  forEachStandardized(s, querySet, s.queryRows, query, cosine, (q, m, rowIds) => {
    const name = `knn-${phase}-${metric}-k${kk}-q${s.queryRows}-b${block++}`;
    const kept =
      s.units && fs.existsSync(unitFile(s.units, name, 'safetensors'))
        ? readSafetensors(unitFile(s.units, name, 'safetensors'))
        : undefined;
    const put = (idx: Int32Array, vals: Float32Array) => {
      indices.set(idx, done * kk);
      scores.set(vals, done * kk);
      queryRows.set(rowIds, done);
      done += m;
      progress?.(done, total);
    };
    if (kept) return put(kept.tensors.get('indices')!.data as Int32Array, kept.tensors.get('scores')!.data as Float32Array);
    if (!computes(s, name)) {
      done += m; // another task's unit: this process does not need the answer
      return;
    }
    if (!cosine) for (let i = 0; i < q.length; i++) q[i] *= 2;
    const vals = new Float32Array(m * kk).fill(Number.NEGATIVE_INFINITY);
    const idx = new Int32Array(m * kk).fill(-1);
    const tile = new Float32Array(m * s.blockRows);
    const offset = new Float32Array(s.blockRows);
    let seen = 0;
    forEachStandardized(s, s.train, s.blockRows, base, cosine, (b, n) => {
      s.kernels.matmul(q, b, tile, m, n, d, false, true);
      if (!cosine) s.kernels.rowSqNorms(b, n, d, offset);
      s.kernels.topkMerge(tile, m, n, cosine ? undefined : offset, seen, kk, vals, idx);
      seen += n;
    });
    for (let i = 0; i < idx.length; i++) idx[i] = baseRows[idx[i]];
    if (s.units)
      writeSafetensors(
        unitFile(s.units, name, 'safetensors'),
        new Map<string, { shape: number[]; data: Float32Array | Int32Array }>([
          ['indices', { shape: [m, kk], data: idx }],
          ['scores', { shape: [m, kk], data: vals }],
        ]),
      );
    put(idx, vals);
  });
  return { indices, scores, k: kk, queryRows };
}

/** Neighbour searches already run on a model's splits, by phase and metric (the pixel and patch votes share them). */
const searches = new WeakMap<OutOfCoreSplits, Map<string, KnnResult & { queryRows: Int32Array }>>();

function neighboursOnce(s: OutOfCoreSplits, phase: Phase, metric: KnnMetric, k: number, progress?: (done: number, total: number) => void) {
  const memo = searches.get(s) ?? new Map();
  searches.set(s, memo);
  const known = memo.get(`${phase}:${metric}`);
  if (known && known.k >= k) return known;
  // Every search answers the grid's largest k: the same units whichever grid point asks (a refit asks for one).
  const res = outOfCoreNeighbours(s, phase, metric, Math.max(k, ...SEG_KNN_KS), progress);
  memo.set(`${phase}:${metric}`, res);
  return res;
}

/** Scores of k-NN grid points in a phase (validation: the 10% split; test: the refit on all of train). */
export function outOfCoreKnn(
  s: OutOfCoreSplits,
  phase: Phase,
  points: KnnPoint[],
  vote: KnnVote,
  progress?: (what: string, done: number, total: number) => void,
): SegScore[] {
  const p = s.pixelsPerPatch;
  return points.map((pt) => {
    const largest = Math.max(...points.filter((x) => x.metric === pt.metric).map((x) => x.k));
    const res = neighboursOnce(s, phase, pt.metric, largest, (done, total) => progress?.(`${pt.metric} search`, done, total));
    const pred =
      vote === 'pixel' ? knnVotePixels(res, pt.k, s.train.pixels, p, s.numLabels) : knnVotePatches(res, pt.k, s.modes, p, s.numLabels);
    return scoreOf(s, phase, res.queryRows, pred);
  });
}
