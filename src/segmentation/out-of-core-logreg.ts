/** The out-of-core logistic regression (eval spec 3.6): loss and gradient over blocks, one unit of work a C. */
import * as fs from 'node:fs';
import { writeFileAtomic } from '../runtime/atomic.js';
import type { LogRegModel, LogRegObjective } from './logreg.js';
import { fitLogRegObjective, LOGREG_DEFAULTS } from './logreg.js';
import type { OutOfCoreSplits, Phase } from './out-of-core.js';
import { computes, forEachStandardized, phaseRows, scoreOf, unitFile } from './out-of-core.js';
import type { LogRegFit, SegScore } from './protocol.js';
import { fitInfo } from './protocol.js';

/**
 * The scaled objective of logreg.ts (C semantics of scikit-learn, divided by C n) over a phase's
 * base rows, accumulated block by block: loss (float64) and gradient, no copy of the rows beyond
 * one standardised block.
 */
export function outOfCoreLogRegObjective(s: OutOfCoreSplits, phase: Phase, c: number): LogRegObjective {
  const { base } = phaseRows(s, phase);
  const d = s.train.source.dim;
  const k = s.classes;
  let n = 0;
  for (let r = 0; r < s.train.source.rows; r++) if (base(r)) n++;
  const lambda = 1 / (c * n);
  return async (theta) => {
    const w = theta.subarray(0, d * k);
    const b = theta.subarray(d * k);
    const gw = new Float64Array(d * k);
    const gb = new Float64Array(k);
    const blockGrad = new Float32Array(d * k);
    let loss = 0;
    forEachStandardized(s, s.train, s.blockRows, base, false, (x, m, rowIds) => {
      const logits = new Float32Array(m * k);
      s.kernels.matmul(x, w, logits, m, k, d, false, false);
      // logits + b become softmax - onehot (G), whose column sums are the bias's gradient.
      loss += s.kernels.softmaxXent(
        logits,
        Int32Array.from(rowIds, (r) => s.modes[r]),
        m,
        k,
        b,
        gb,
      );
      s.kernels.matmul(x, logits, blockGrad, d, k, m, true, false);
      for (let i = 0; i < d * k; i++) gw[i] += blockGrad[i];
    });
    let wsq = 0;
    for (const v of w) wsq += v * v;
    const grad = new Float32Array(theta.length);
    for (let i = 0; i < d * k; i++) grad[i] = gw[i] / n + lambda * w[i];
    for (let j = 0; j < k; j++) grad[d * k + j] = gb[j] / n;
    return { loss: loss / n + (lambda / 2) * wsq, grad };
  };
}

/** Arg-max class of every query row of a phase, replicated to its pixels, with those rows. */
function outOfCorePredict(s: OutOfCoreSplits, phase: Phase, m: LogRegModel): { pred: Int32Array; queryRows: Int32Array } {
  const { querySet, query } = phaseRows(s, phase);
  const p = s.pixelsPerPatch;
  const d = s.train.source.dim;
  const k = s.classes;
  const preds: number[] = [];
  const rows: number[] = [];
  forEachStandardized(s, querySet, s.queryRows, query, false, (x, n, rowIds) => {
    const logits = new Float32Array(n * k);
    s.kernels.matmul(x, m.weights, logits, n, k, d, false, false);
    for (let i = 0; i < n; i++) {
      let best = 0;
      for (let j = 1; j < k; j++) if (logits[i * k + j] + m.bias[j] > logits[i * k + best] + m.bias[best]) best = j;
      preds.push(best);
      rows.push(rowIds[i]);
    }
  });
  const pred = new Int32Array(preds.length * p);
  preds.forEach((l, i) => pred.fill(l, i * p, (i + 1) * p));
  return { pred, queryRows: Int32Array.from(rows) };
}

/** After every L-BFGS iteration, and once more when the fit ends (with why it ended). */
type FitProgress = (c: number, iteration: number, loss: number, gradMax: number, ended?: LogRegModel['stop']) => void;

async function fitAt(
  s: OutOfCoreSplits,
  phase: Phase,
  c: number,
  maxIter: number,
  init: Float32Array | undefined,
  progress?: FitProgress,
): Promise<LogRegModel> {
  const m = await fitLogRegObjective(
    outOfCoreLogRegObjective(s, phase, c),
    s.train.source.dim,
    s.classes,
    { ...LOGREG_DEFAULTS, maxIter, c, onIteration: (it, loss, g) => progress?.(c, it, loss, g) },
    init,
  );
  progress?.(c, m.iterations, m.loss, m.gradMax, m.stop);
  return m;
}

/**
 * Validation mIoU for each C, each fitted on the 90% split from zeros: independent units that the
 * tasks of a Slurm evaluation share (the in-memory protocol warm-starts each C from the previous
 * one: the problem is convex, so only the path differs).
 */
export async function outOfCoreLogRegValidation(
  s: OutOfCoreSplits,
  cs: number[],
  maxIter: number,
  progress?: FitProgress,
): Promise<{ scores: number[]; fits: LogRegFit[] }> {
  const scores: number[] = [];
  const fits: LogRegFit[] = [];
  for (const c of cs) {
    const name = `logreg-validation-c${c.toExponential(6)}-it${maxIter}`;
    const file = s.units ? unitFile(s.units, name, 'json') : '';
    if (file && fs.existsSync(file)) {
      const kept = JSON.parse(fs.readFileSync(file, 'utf8')) as { score: number; fit: LogRegFit };
      scores.push(kept.score);
      fits.push(kept.fit);
      continue;
    }
    if (!computes(s, name)) {
      scores.push(Number.NaN);
      fits.push({ c, iterations: 0, evaluations: 0, gradMax: Number.NaN, loss: Number.NaN });
      continue;
    }
    const m = await fitAt(s, 'validation', c, maxIter, undefined, progress);
    const { pred, queryRows } = outOfCorePredict(s, 'validation', m);
    const score = scoreOf(s, 'validation', queryRows, pred).mIoU;
    if (file) writeFileAtomic(file, JSON.stringify({ score, fit: fitInfo(c, m) }));
    scores.push(score);
    fits.push(fitInfo(c, m));
  }
  return { scores, fits };
}

/** Refit at `c` on all of train (from zeros), scored on test. */
export async function outOfCoreLogRegTest(
  s: OutOfCoreSplits,
  c: number,
  maxIter: number,
  progress?: FitProgress,
): Promise<SegScore & { fit: LogRegFit }> {
  const m = await fitAt(s, 'test', c, maxIter, undefined, progress);
  const { pred, queryRows } = outOfCorePredict(s, 'test', m);
  return { ...scoreOf(s, 'test', queryRows, pred), fit: fitInfo(c, m) };
}
