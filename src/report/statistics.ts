/**
 * The report's statistics: a row over seeds (mean, spread, standard error), verdicts on gaps, and
 * the per-run figures read from a run's metrics (training time, late means, the predictor's gap,
 * the teacher's mean age, the monitor's trace).
 *
 * Uncertainty: a row over n seeds has standard error sqrt(std^2 / n + se_test^2), the
 * seed-to-seed spread of the mean plus the test-set sampling error (all seeds share one test set,
 * so that part does not average out); n = 1 leaves the test-set standard error. A claim "A > B"
 * holds when the gap exceeds 2 combined standard errors (`gapSe`: paired where both sides were
 * measured on the same test images or come from the same runs).
 */
import { isFiniteNumber, type MetricsKey, type MetricsLine } from '../pretrain/run-folder.js';
import { decodeCorrect, decodeReplicates, type MetricKey } from '../eval/metrics.js';
import type { EvalResult } from '../eval/result.js';
import type { FeatureShares } from '../segmentation/variance.js';

/** A row's value for one metric over its seeds. */
export interface Aggregate {
  mean: number;
  std: number;
  n: number;
  /** sqrt(seedVar + testSe^2): sqrt(std^2 / n + mean test-set SE^2); the test-set SE alone when n = 1. */
  se: number;
  /** The seed part of se^2: std^2 / n (0 for one seed; the borrowed std^2 with `withSeedSpreadOf`). */
  seedVar: number;
  /** The seeds' mean test-set SE. */
  testSe: number;
  /** Per test image, the fraction of seeds that classified it right, when every seed's result recorded it (metrics.ts testCorrect). */
  perImage?: Float64Array;
  /** Per bootstrap resample of the test images, the seeds' mean replicate, when every seed's result recorded them on one test set (metrics.ts testReplicates: dense). */
  replicates?: Float64Array;
  /** Some seed's probe chose a grid-edge point / did not converge. */
  atGridEdge: boolean;
  notConverged: boolean;
  /** The SE includes the seed spread of another arm (`withSeedSpreadOf`); the cell marks it `‡`. */
  seedSpreadBorrowed?: boolean;
}

/** Mean and sample standard deviation (0 for a single value) of values over seeds. */
function meanStd(xs: number[]): { mean: number; std: number } {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  return { mean, std: n > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1)) : 0 };
}

export function aggregate(results: EvalResult[], metric: MetricKey): Aggregate | undefined {
  const rs = results.filter((r) => r.metrics[metric] !== undefined);
  if (!rs.length) return undefined;
  const n = rs.length;
  const { mean, std } = meanStd(rs.map((r) => r.metrics[metric]!));
  const ses = rs.map((r) => r.quality?.[metric]?.se).filter((s): s is number => s !== undefined && Number.isFinite(s));
  const testSe = ses.length ? ses.reduce((a, b) => a + b, 0) / ses.length : Number.NaN;
  const seedVar = n > 1 ? std ** 2 / n : 0;
  const perImage = perImageCorrect(rs, metric);
  const replicates = meanReplicates(rs, metric);
  return {
    mean,
    std,
    n,
    se: Math.sqrt(seedVar + testSe ** 2),
    seedVar,
    testSe,
    ...(perImage ? { perImage } : {}),
    ...(replicates ? { replicates } : {}),
    atGridEdge: rs.some((r) => r.quality?.[metric]?.atGridEdge),
    notConverged: rs.some((r) => r.quality?.[metric]?.converged === false),
  };
}

/** The element-wise mean of `arrays`; undefined unless every one is there, all of one length. */
function elementwiseMean(arrays: (ArrayLike<number> | undefined)[]): Float64Array | undefined {
  const n = arrays[0]?.length;
  if (n === undefined || arrays.some((a) => a?.length !== n)) return undefined;
  const mean = new Float64Array(n);
  for (const a of arrays) for (let j = 0; j < n; j++) mean[j] += a![j] / arrays.length;
  return mean;
}

/** Per test image, the fraction of `results` that got it right; undefined unless all recorded it on test sets of one size. */
function perImageCorrect(results: EvalResult[], metric: MetricKey): Float64Array | undefined {
  return elementwiseMean(
    results.map((r) => {
      const bits = r.quality?.[metric]?.testCorrect;
      return bits ? decodeCorrect(bits) : undefined;
    }),
  );
}

/** Per bootstrap resample, the mean of `results`' replicates; undefined unless all recorded as many on test sets of one size. */
function meanReplicates(results: EvalResult[], metric: MetricKey): Float64Array | undefined {
  const recs = results.map((r) => r.quality?.[metric]?.testReplicates);
  if (recs.some((x) => x?.images !== recs[0]?.images)) return undefined;
  return elementwiseMean(recs.map((x) => (x ? decodeReplicates(x) : undefined)));
}

/** How a gap's SE was paired: on the same test images, over the same runs. */
export type Pairing = 'images' | 'runs' | 'images and runs';

/**
 * The standard error of the gap A - B, in points. Seeds: when both sides are the same runs (the
 * teacher and student of each run; two poolings of one encoder), the spread of the per-run
 * differences `runDiffs` (var / n) replaces the two sides' seed terms, whose shared part cancels.
 * Test set: when both sides recorded which test images they got right, the SE of the mean
 * per-image difference (McNemar's: the errors both make cancel) replaces sqrt(SE_A^2 + SE_B^2),
 * which treats the two as independent draws though they are measured on the same images; for
 * a bootstrapped metric (mIoU), the std of the replicate-by-replicate difference (both sides
 * resampled with the same images) does the same.
 */
export function gapSe(a: Aggregate, b: Aggregate, runDiffs?: number[]): { se: number; paired?: Pairing } {
  // One run has no seed part to pair (0 either way).
  const byRuns = runDiffs !== undefined && runDiffs.length > 1 && runDiffs.length === a.n && runDiffs.length === b.n;
  const seedVar = byRuns ? meanStd(runDiffs).std ** 2 / runDiffs.length : a.seedVar + b.seedVar;
  const byCorrect = a.perImage !== undefined && a.perImage.length === b.perImage?.length;
  const byReplicates = a.replicates !== undefined && a.replicates.length === b.replicates?.length;
  const byImages = byCorrect || byReplicates;
  const testVar = byCorrect
    ? pairedTestVar(a.perImage!, b.perImage!)
    : byReplicates
      ? pairedReplicateVar(a.replicates!, b.replicates!)
      : a.testSe ** 2 + b.testSe ** 2;
  const paired: Pairing | undefined = byImages && byRuns ? 'images and runs' : byImages ? 'images' : byRuns ? 'runs' : undefined;
  return { se: Math.sqrt(seedVar + testVar), ...(paired ? { paired } : {}) };
}

/** The test-set variance (points^2) of the mean per-image difference a_j - b_j over N images: var_j / N, as the binomial SE's p(1-p) / N. */
function pairedTestVar(a: Float64Array, b: Float64Array): number {
  const n = a.length;
  let sum = 0;
  let sq = 0;
  for (let j = 0; j < n; j++) {
    const d = a[j] - b[j];
    sum += d;
    sq += d * d;
  }
  const mean = sum / n;
  return (10_000 * (sq / n - mean * mean)) / n;
}

/** The variance (points^2) of a gap's bootstrap replicates a_r - b_r: the paired bootstrap's SE^2. */
function pairedReplicateVar(a: Float64Array, b: Float64Array): number {
  const diffs = Array.from(a, (v, r) => v - b[r]);
  return meanStd(diffs).std ** 2;
}

/**
 * A single-seed arm's SE with the seed-to-seed spread it cannot measure itself: its one run is a
 * draw whose variance the reference arm's seeds estimate, so SE^2 = test SE^2 + reference std^2.
 * Unchanged when the arm has its own seeds or the reference has fewer than two.
 */
export function withSeedSpreadOf(single: Aggregate, reference: Aggregate | undefined): Aggregate {
  if (single.n > 1 || !reference || reference.n < 2) return single;
  const seedVar = reference.std ** 2;
  return { ...single, seedVar, se: Math.sqrt(seedVar + single.testSe ** 2), seedSpreadBorrowed: true };
}

/** `63.2 ± 0.8 (n=3) ±SE 0.6 †*`: mean ± std over seeds, n, standard error, flags. */
export function aggregateCell(a: Aggregate | undefined): string {
  if (!a) return 'not run';
  const flags = `${a.atGridEdge ? ' †' : ''}${a.notConverged ? ' *' : ''}`;
  const spread = a.n > 1 ? ` ± ${a.std.toFixed(1)} (n=${a.n})` : '';
  const se = Number.isFinite(a.se) ? ` [SE ${a.se.toFixed(1)}${a.seedSpreadBorrowed ? '‡' : ''}]` : '';
  return `${a.mean.toFixed(1)}${spread}${se}${flags}`;
}

export type Verdict =
  | 'holds'
  | 'holds (within 2 SE)'
  | 'not resolved (within 2 SE)'
  | 'does not hold (reversed beyond 2 SE)'
  | 'not testable here';

/**
 * `>`: holds beyond 2 SE; `>=`: holds while A is ahead (within 2 SE: "holds (within 2 SE)"); with B
 * ahead within 2 SE neither A >= B nor its reverse is shown: not resolved.
 */
export function verdict(gap: number | undefined, se: number | undefined, kind: '>' | '>='): Verdict {
  if (gap === undefined || se === undefined || !Number.isFinite(gap) || !Number.isFinite(se)) return 'not testable here';
  if (gap > 2 * se) return 'holds';
  if (gap < -2 * se) return 'does not hold (reversed beyond 2 SE)';
  return kind === '>=' && gap >= 0 ? 'holds (within 2 SE)' : 'not resolved (within 2 SE)';
}

/**
 * The longest a step can count, in seconds (records before the running clock, src/runtime/clock.ts,
 * counted a process's SIGSTOP pauses as training time: plan medium's records hold steps of up to
 * 23 s on a machine shared with CI, and gaps of 90 s to 53 min, the length of our pauses). A gap
 * over both 60 s and 20 median steps counts as the cap; with the running clock none is left to cut.
 */
export const stepSecondsCap = (medianStep: number) => Math.max(60, 20 * medianStep);

/**
 * A run's training seconds: its clock's steps, each counted at most `stepSecondsCap` (runs resumed
 * before the clock continued across a resume restart it at 0 after each one; later records never
 * fall).
 */
export function trainingSeconds(metrics: MetricsLine[]): number {
  const steps: number[] = [];
  let last = 0;
  for (const { elapsedSec: e } of metrics) {
    if (!isFiniteNumber(e)) continue;
    steps.push(e < last ? e : e - last);
    last = e;
  }
  if (!steps.length) return 0;
  const cap = stepSecondsCap([...steps].sort((a, b) => a - b)[Math.floor(steps.length / 2)]!);
  return steps.reduce((a, s) => a + Math.min(s, cap), 0);
}

/** Mean of the finite values over the last 10% of a run's steps. */
function lateMeanOf(values: (number | undefined)[]): number {
  const xs = values.slice(Math.floor(values.length * 0.9)).filter(isFiniteNumber);
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN;
}

/** Mean of a diagnostic over the last 10% of a run's steps. */
export const lateMean = (metrics: MetricsLine[], key: MetricsKey): number => lateMeanOf(metrics.map((m) => m[key]));

/**
 * A run's position-cluster MI over the last 10% of steps, as a cell: the plug-in MI, and beside
 * it the plug-in MI of the same assignments with the positions shuffled (its level where position
 * and cluster are independent, at the same cluster marginals: src/pretrain/diagnostics.ts
 * positionClusterMI); runs made before that was logged give Miller-Madow's correction (MM, floored
 * at 0) instead. No single corrected number: position-wise Sinkhorn-Knopp balances each
 * position's clusters, which puts the plug-in below its shuffled level (a "negative" MI after
 * subtracting it), and Miller-Madow's term is far off at these sparse counts.
 */
export function positionMICell(metrics: MetricsLine[], unit = ''): string {
  const plugIn = lateMean(metrics, 'positionClusterMI').toFixed(3);
  const shuffled = lateMean(metrics, 'positionClusterMIShuffled');
  return Number.isFinite(shuffled)
    ? `${plugIn}${unit} (shuffled ${shuffled.toFixed(3)})`
    : `${plugIn}${unit} (MM ${Math.max(0, lateMean(metrics, 'positionClusterMICorrected')).toFixed(3)})`;
}

/**
 * How far the student's predictions are from their targets: the CAPI loss is the cross-entropy
 * of the SK targets under the student's softmax over the same predicted patches whose target
 * entropy is logged, so loss - entropy is their mean KL divergence (0 for a perfect predictor).
 * Over the last 10% of steps, and at step 0; with the targets' entropy at both, since the KL is
 * measured against targets that sharpen as the run goes (it can rise while the predictor learns).
 */
export function predictorGap(metrics: MetricsLine[]): { late: number; initial: number; entropyLate: number; entropyInitial: number } {
  const kl = metrics.map((m) => (m.capiLoss ?? Number.NaN) - (m.targetEntropy ?? Number.NaN));
  const entropy = metrics.map((m) => m.targetEntropy ?? Number.NaN);
  return { late: lateMeanOf(kl), initial: kl[0] ?? Number.NaN, entropyLate: lateMeanOf(entropy), entropyInitial: entropy[0] ?? Number.NaN };
}

/** Mean over results (seeds) of the dense evaluation's feature-variance shares, where recorded (src/segmentation/variance.ts), with how many and each share's spread. */
export function meanFeatureShares(
  results: EvalResult[],
): (FeatureShares & { n: number; imageStd: number; positionStd: number }) | undefined {
  const shares = results
    .map((r) => r.details?.featureShares)
    .filter((x): x is FeatureShares => x !== undefined && Number.isFinite(x.image) && Number.isFinite(x.position));
  if (!shares.length) return undefined;
  const image = meanStd(shares.map((x) => x.image));
  const position = meanStd(shares.map((x) => x.position));
  return { image: image.mean, position: position.mean, n: shares.length, imageStd: image.std, positionStd: position.std };
}

/** `234: 61.2, 468: 66.0, 703: 68.1`: the monitor's measurements of a run ('-' where it had none). */
export function monitorTrace(metrics: MetricsLine[]): string {
  const points = metrics.flatMap((m) => (isFiniteNumber(m.monitorKnnTop1) ? [[m.step + 1, m.monitorKnnTop1]] : []));
  return points.length ? points.map(([step, top1]) => `${step}: ${top1.toFixed(1)}`).join(', ') : '-';
}
