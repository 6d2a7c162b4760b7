/**
 * A study's report: results/REPORT.md with the paper's Tables 1, 2, 3 and 5 beside ours (mean ±
 * std over seeds, n, and a standard error), each dense task's floor and ceiling, the training
 * diagnostics per run, a claims table and a discussion of every claim that does not hold; the
 * tables also as CSV + Markdown under tables/, the training curves as PNG under curves/.
 *
 * Uncertainty (stated in the report): a row over n seeds has standard error
 * sqrt(std^2 / n + se_test^2), the seed-to-seed spread of the mean plus the test-set sampling
 * error (all seeds share one test set, so that part does not average out); n = 1 leaves the
 * test-set standard error. A claim "A > B" holds when the gap exceeds 2 combined standard errors.
 */
import * as path from 'node:path';
import { stringify } from 'csv-stringify/sync';
import type { MetricKey } from '../eval/metrics.js';
import type { EvalResult } from '../eval/result.js';
import { TASKS, type TaskName } from '../eval/tasks.js';
import { REFINE_KEEP } from '../probes/grid.js';
import type { FeatureShares } from '../segmentation/variance.js';
import { writeFileAtomic, makeDirs } from '../runtime/atomic.js';
import { saveCurvesPng } from './curves.js';
import { markdownTable } from './results.js';

export interface StudyArm {
  name: string;
  factor: string;
  variant: string;
  paper: { ade: number; in1k: number };
}

export interface StudyRunInput {
  id: string;
  family: string;
  arm: string;
  seed: number;
  /** The run's config.json, once it started. */
  config?: Record<string, unknown>;
  /** Its metrics.jsonl lines. */
  metrics: Record<string, number>[];
}

export interface StudyReportInput {
  plan: { name: string; summary: string; estimate: string };
  arms: StudyArm[];
  runs: StudyRunInput[];
  results: EvalResult[];
  commits: string[];
  started: string;
  evalSettings: { run: string; task: string; probes: string[]; weights: string; config: Record<string, unknown> }[];
}

/** A row's value for one metric over its seeds. */
export interface Aggregate {
  mean: number;
  std: number;
  n: number;
  /** sqrt(std^2 / n + mean test-set SE^2); the test-set SE alone when n = 1. */
  se: number;
  /** Some seed's probe chose a grid-edge point / did not converge. */
  atGridEdge: boolean;
  notConverged: boolean;
  /** The SE includes the seed spread of another arm (`withSeedSpreadOf`); the cell marks it `‡`. */
  seedSpreadBorrowed?: boolean;
}

export function aggregate(results: EvalResult[], metric: MetricKey): Aggregate | undefined {
  const rs = results.filter((r) => r.metrics[metric] !== undefined);
  if (!rs.length) return undefined;
  const xs = rs.map((r) => r.metrics[metric]!);
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const std = n > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1)) : 0;
  const ses = rs.map((r) => r.quality?.[metric]?.se).filter((s): s is number => s !== undefined && Number.isFinite(s));
  const testSe = ses.length ? ses.reduce((a, b) => a + b, 0) / ses.length : Number.NaN;
  return {
    mean,
    std,
    n,
    se: Math.sqrt((n > 1 ? std ** 2 / n : 0) + testSe ** 2),
    atGridEdge: rs.some((r) => r.quality?.[metric]?.atGridEdge),
    notConverged: rs.some((r) => r.quality?.[metric]?.converged === false),
  };
}

/**
 * A single-seed arm's SE with the seed-to-seed spread it cannot measure itself: its one run is a
 * draw whose variance the reference arm's seeds estimate, so SE^2 = test SE^2 + reference std^2.
 * Unchanged when the arm has its own seeds or the reference has fewer than two.
 */
export function withSeedSpreadOf(single: Aggregate, reference: Aggregate | undefined): Aggregate {
  if (single.n > 1 || !reference || reference.n < 2) return single;
  return { ...single, se: Math.sqrt(single.se ** 2 + reference.std ** 2), seedSpreadBorrowed: true };
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

/** `>`: holds beyond 2 SE; `>=`: holds unless reversed beyond 2 SE. */
export function verdict(gap: number | undefined, se: number | undefined, kind: '>' | '>='): Verdict {
  if (gap === undefined || se === undefined || !Number.isFinite(gap) || !Number.isFinite(se)) return 'not testable here';
  if (gap > 2 * se) return 'holds';
  if (gap < -2 * se) return 'does not hold (reversed beyond 2 SE)';
  return kind === '>=' ? 'holds (within 2 SE)' : 'not resolved (within 2 SE)';
}

export interface Claim {
  claim: string;
  paper: string;
  a: Aggregate | undefined;
  b: Aggregate | undefined;
  gap?: number;
  se?: number;
  verdict: Verdict;
  /** Why it may not hold here: the diagnostics that bear on it. */
  evidence: string;
}

function compare(
  claim: string,
  paper: string,
  kind: '>' | '>=',
  a: Aggregate | undefined,
  b: Aggregate | undefined,
  evidence: string,
): Claim {
  const gap = a && b ? a.mean - b.mean : undefined;
  const se = a && b ? Math.sqrt(a.se ** 2 + b.se ** 2) : undefined;
  return { claim, paper, a, b, gap, se, verdict: verdict(gap, se, kind), evidence };
}

interface Metric {
  task: string;
  key: MetricKey;
  label: string;
  /** The probe that measures it, as a plan's evaluations name it. */
  probe: string;
}

/**
 * The metrics a family's claims and Table 1 are judged on (whichever the plan evaluated): those
 * with a test-set SE (foreground mIoU has none; Table 3 shows it).
 */
function familyMetrics(results: EvalResult[]): Metric[] {
  const all: Metric[] = [
    { task: 'fmnist', key: 'attentive.top1', label: 'fmnist attentive', probe: 'attentive' },
    { task: 'fmnist', key: 'linear(avg).top1', label: 'fmnist linear', probe: 'linear' },
    { task: 'fmnist', key: 'knn(avg).top1', label: 'fmnist k-NN', probe: 'knn' },
    { task: 'imagenet', key: 'attentive.top1', label: 'IN-1k attentive', probe: 'attentive' },
    { task: 'imagenet', key: 'linear(avg).top1', label: 'IN-1k linear', probe: 'linear' },
    { task: 'fmnist-scenes', key: 'seg.knn.mIoU', label: 'scenes k-NN mIoU', probe: 'knn' },
    { task: 'fmnist-scenes', key: 'seg.logreg.mIoU', label: 'scenes linear mIoU', probe: 'logreg' },
    { task: 'ade20k', key: 'seg.knn.mIoU', label: 'ADE20K k-NN mIoU', probe: 'knn' },
    { task: 'ade20k', key: 'seg.logreg.mIoU', label: 'ADE20K linear mIoU', probe: 'logreg' },
  ];
  return all.filter((m) => results.some((r) => r.task === m.task && r.metrics[m.key] !== undefined));
}

/** The ids of the runs of one arm (all its seeds). */
const armRunIds = (input: StudyReportInput, arm: string) => new Set(input.runs.filter((r) => r.arm === arm).map((r) => r.id));

/** Teacher results of the runs of one arm on a task (all its seeds). */
function armResults(input: StudyReportInput, arm: string, task: string): EvalResult[] {
  const ids = armRunIds(input, arm);
  return input.results.filter((r) => r.task === task && ids.has(r.model));
}

const byModel = (input: StudyReportInput, task: string, model: string) => input.results.filter((r) => r.task === task && r.model === model);

/**
 * The metric that stands for `key` in a model's row. The `pixels` baseline's global vector is the
 * whole flattened image, kept in its predictor-pooling slot (src/features/models.ts): its linear
 * and k-NN cells and claims use that, not the average of its pixel patches (which is
 * pixel-patches plus positions), so that the table shows what raw pixels do.
 */
export function rowMetric(model: string, key: MetricKey): MetricKey {
  if (model !== 'pixels') return key;
  return key === 'linear(avg).top1' ? 'linear(pred-pool).top1' : key === 'knn(avg).top1' ? 'knn(pred-pool).top1' : key;
}

/**
 * A run's training seconds: the sum of its clock's segments (runs resumed before the clock
 * continued across a resume restart at 0 after each one; later records never fall).
 */
export function trainingSeconds(metrics: Record<string, number>[]): number {
  let done = 0;
  let last = 0;
  for (const { elapsedSec: e } of metrics) {
    if (!Number.isFinite(e)) continue;
    if (e < last) done += last;
    last = e;
  }
  return done + last;
}

/** Mean of a diagnostic over the last 10% of a run's steps. */
export function lateMean(metrics: Record<string, number>[], key: string): number {
  const tail = metrics.slice(Math.floor(metrics.length * 0.9));
  const xs = tail.map((m) => m[key]).filter((x) => Number.isFinite(x));
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN;
}

/** The diagnostics of the runs behind `results` (a claim's own family: its task's runs). */
function diagnosticsLine(input: StudyReportInput, results: EvalResult[]): string {
  const ids = new Set(results.map((r) => r.model));
  const runs = input.runs.filter((r) => ids.has(r.id) && r.metrics.length);
  if (!runs.length) return 'no run yet';
  return runs
    .map((r) => {
      const last = r.metrics.at(-1)!;
      return (
        `${r.id}: ${r.metrics.length} steps, CAPI loss ${lateMean(r.metrics, 'capiLoss').toFixed(3)}, teacher init share ${last.teacherInitShare?.toExponential(1)}, ` +
        `position-cluster MI ${lateMean(r.metrics, 'positionClusterMICorrected').toFixed(3)} nats, ` +
        `clusters used ${lateMean(r.metrics, 'clustersUsed').toFixed(0)}, prototype cosine to init ${lateMean(r.metrics, 'prototypeCosineToInit').toFixed(2)}`
      );
    })
    .join('; ');
}

/**
 * How far the student's predictions are from their targets: the CAPI loss is the cross-entropy
 * of the SK targets under the student's softmax over the same predicted patches whose target
 * entropy is logged, so loss - entropy is their mean KL divergence (0 for a perfect predictor).
 * Over the last 10% of steps, and at step 0.
 */
export function predictorGap(metrics: Record<string, number>[]): { late: number; initial: number } {
  const kl = metrics.map((m) => ({ kl: m.capiLoss - m.targetEntropy }));
  return { late: lateMean(kl, 'kl'), initial: kl[0]?.kl ?? Number.NaN };
}

const predictorGapCell = (metrics: Record<string, number>[]) => {
  const g = predictorGap(metrics);
  return `${g.late.toFixed(2)} (${g.initial.toFixed(2)})`;
};

/**
 * Mean age, in steps before the end, of the students the final EMA teacher averages: teacher_T =
 * (prod m) init + sum_t (1 - m_t) prod_{s>t} m_s student_t, the init's share left out (the
 * weights renormalised). For a constant momentum m over a long run it tends to m / (1 - m).
 */
export function teacherMeanAge(momenta: number[]): number {
  let tail = 1;
  let num = 0;
  let den = 0;
  for (let t = momenta.length - 1; t >= 0; t--) {
    const w = (1 - momenta[t]) * tail;
    num += w * (momenta.length - 1 - t);
    den += w;
    tail *= momenta[t];
  }
  return den > 0 ? num / den : Number.NaN;
}

/**
 * Where the supervised ceiling (same encoder and steps, with labels) stands against baseline B: a
 * B that even the ceiling does not beat by 2 SE is out of reach of any pretraining at this scale.
 */
function ceilingEvidence(ceiling: Aggregate | undefined, b: Aggregate): string {
  if (!ceiling) return '';
  const gap = Number((ceiling.mean - b.mean).toFixed(1)); // no "-0.0"
  const se = Math.sqrt(ceiling.se ** 2 + b.se ** 2);
  const reach =
    gap > 2 * se
      ? `it beats B by ${gap.toFixed(1)} ± ${se.toFixed(1)}: this encoder and budget can`
      : `B is within 2 SE of it or above it (${gap >= 0 ? '+' : ''}${gap.toFixed(1)} ± ${se.toFixed(1)}): not even labels make this encoder beat B in this budget`;
  return `; the supervised ceiling (same encoder and steps, with labels) ${aggregateCell(ceiling)}, ${reach}`;
}

/** The k-NN's chosen k of a row's seeds, e.g. `k=1` or `k=1, 3`. */
const chosenK = (rs: EvalResult[]) =>
  [...new Set(rs.map((r) => (r.details?.['seg.knn'] as { best?: { k?: number } } | undefined)?.best?.k).filter((k) => k !== undefined))]
    .map((k) => `k=${k}`)
    .join(', ');

/** What bears on a dense claim: each side's feature-variance shares and, for k-NN, its chosen k. */
function denseEvidence(a: EvalResult[], b: EvalResult[], key: MetricKey): string {
  const sa = meanFeatureShares(a);
  const sb = meanFeatureShares(b);
  const shares =
    sa && sb
      ? `; share of the standardised test patch features' variance in their canvas's mean: A ${sa.image.toFixed(3)}, B ${sb.image.toFixed(3)} (in their position's mean: ${sa.position.toFixed(3)}, ${sb.position.toFixed(3)})`
      : '';
  const [ka, kb] = [chosenK(a), chosenK(b)];
  const k = key.startsWith('seg.knn') && ka && kb ? `; chosen k: A ${ka}, B ${kb}` : '';
  return `${shares}${k}`;
}

/** How well the predictor that predictor pooling reads was trained, in the runs of `results`. */
function predictorEvidence(input: StudyReportInput, results: EvalResult[]): string {
  const runs = input.runs.filter((r) => r.metrics.length && results.some((x) => x.model === r.id));
  if (!runs.length) return '';
  const parts = runs.map((r) => {
    const g = predictorGap(r.metrics);
    return `${r.id} ${g.late.toFixed(2)} nats (${((100 * g.late) / g.initial).toFixed(0)}% of its step-0 ${g.initial.toFixed(2)})`;
  });
  return `; the predictor's KL to its targets (CAPI loss - target entropy) over the last 10% of steps: ${parts.join(', ')}`;
}

export function buildClaims(input: StudyReportInput): Claim[] {
  const claims: Claim[] = [];
  const metrics = familyMetrics(input.results);
  const runLength = () => {
    const r = input.runs.find((x) => x.metrics.length);
    if (!r) return 'no run finished';
    // What more steps would do: the default arm's k-NN as its first monitored run went.
    const monitored = input.runs.find((x) => x.arm === 'capi' && monitorTrace(x.metrics) !== '-');
    const trend = monitored ? `; ${monitored.id}'s teacher k-NN on the monitor subset at steps ${monitorTrace(monitored.metrics)}` : '';
    return `${r.metrics.length} pretraining steps here against the paper's 100k-500k${trend}`;
  };
  for (const m of metrics) {
    const capi = aggregate(armResults(input, 'capi', m.task), m.key);
    // Where this encoder and budget top out: a baseline above the supervised ceiling is out of reach of any pretraining here.
    const ceiling = aggregate(armResults(input, 'supervised', m.task), m.key);
    for (const b of ['pixels', 'init', 'random-init', 'pixel-patches']) {
      const base = aggregate(byModel(input, m.task, b), rowMetric(b, m.key));
      if (!base) continue;
      const dense = m.key.startsWith('seg.') ? denseEvidence(armResults(input, 'capi', m.task), byModel(input, m.task, b), m.key) : '';
      claims.push(
        compare(
          `CAPI > ${b} (${m.label})`,
          'implied: SSL features beat untrained ones',
          '>',
          capi,
          base,
          `${runLength()}${ceilingEvidence(ceiling, base)}${dense}`,
        ),
      );
    }
  }
  for (const m of metrics.filter((x) => ['linear(avg).top1', 'knn(avg).top1'].includes(x.key))) {
    const teacher = input.results.filter(
      (r) => r.task === m.task && input.evalSettings.some((e) => e.weights === 'student' && e.run === r.model),
    );
    const student = input.results.filter((r) => r.task === m.task && r.model.endsWith('-student'));
    if (!student.length) continue;
    const run = input.runs.find((r) => `${r.id}-student` === student[0].model);
    const share = run?.metrics.at(-1)?.teacherInitShare;
    // The EMA teacher is a weighted average of past students: its lag is small only against the run's length.
    const age = run ? teacherMeanAge(run.metrics.map((x) => x.momentum)) : Number.NaN;
    const horizon =
      run && Number.isFinite(age)
        ? `; the final teacher averages the students of its run with a mean age of ${age.toFixed(0)} steps, ${((100 * age) / run.metrics.length).toFixed(0)}% of the run (at the paper's 0.996: ~250 steps of 100k-500k)`
        : '';
    claims.push(
      compare(
        `teacher >= student (${m.label})`,
        'the EMA teacher is the evaluated encoder (method spec 8.2)',
        '>=',
        aggregate(teacher, m.key),
        aggregate(student, m.key),
        `final teacher init share ${share?.toExponential(1) ?? '?'}${horizon}`,
      ),
    );
  }
  const armClaim = (arm: string, text: (variant: string) => string, kind: '>' | '>=') => {
    const a = input.arms.find((x) => x.name === arm);
    const def = input.arms.find((x) => x.name === 'capi');
    if (!a || !def) return;
    for (const m of metrics) {
      const [defaultRuns, armRuns] = [armResults(input, 'capi', m.task), armResults(input, arm, m.task)];
      const capi = aggregate(defaultRuns, m.key);
      const measured = aggregate(armRuns, m.key);
      if (!measured) continue;
      const other = withSeedSpreadOf(measured, capi);
      const paperGaps = [def.paper.ade - a.paper.ade, def.paper.in1k - a.paper.in1k];
      const paper = `ADE ${paperGaps[0].toFixed(1)} / IN-1k ${paperGaps[1].toFixed(1)} points`;
      const twoSe = capi ? 2 * Math.sqrt(capi.se ** 2 + other.se ** 2) : Number.NaN;
      const resolved = paperGaps.filter((g) => Math.abs(g) > twoSe).length;
      // Whether an effect as large as the paper's would be resolved here at all (a power check, not a verdict).
      const power = Number.isFinite(twoSe)
        ? `; 2 combined SE here is ${twoSe.toFixed(1)} points: an effect the size of the paper's would be ${resolved === 2 ? 'resolved' : resolved ? 'resolved for its larger gap only' : 'within noise'}`
        : '';
      claims.push(
        compare(
          `${text(a.variant)} (${m.label})`,
          paper,
          kind,
          capi,
          other,
          `default: ${diagnosticsLine(input, defaultRuns)}; ${arm}: ${diagnosticsLine(input, armRuns)}${power}`,
        ),
      );
    }
  };
  armClaim('sk-standard', () => 'position-wise SK >= standard SK', '>=');
  for (const arm of ['mask-inverse-block', 'mask-block', 'mask-uniform']) armClaim(arm, (v) => `inverse block + roll > ${v}`, '>');
  armClaim('registers-0', () => 'registers help (default > 0 registers)', '>');
  for (const task of [...new Set(input.results.map((r) => r.task))]) {
    const capi = armResults(input, 'capi', task);
    for (const [pp, avg, paper] of [
      ['linear(pred-pool).top1', 'linear(avg).top1', 'IN-1k linear 81.1 vs 77.1'],
      ['knn(pred-pool).top1', 'knn(avg).top1', 'IN-1k k-NN 73.8 vs 57.1'],
    ] as [MetricKey, MetricKey, string][]) {
      const a = aggregate(capi, pp);
      if (!a) continue;
      claims.push(
        compare(
          `predictor pooling > average pooling (${task} ${pp.split('(')[0]})`,
          paper,
          '>',
          a,
          aggregate(capi, avg),
          `${runLength()}${predictorEvidence(input, capi)}`,
        ),
      );
    }
  }
  return claims;
}

const fmtGap = (c: Claim) => (c.gap === undefined ? '-' : `${c.gap >= 0 ? '+' : ''}${c.gap.toFixed(1)} ± ${c.se!.toFixed(1)}`);

export interface ReportTable {
  name: string;
  title: string;
  header: string[];
  rows: string[][];
  note?: string;
}

interface RowSource {
  label: string;
  /** The baseline's model name (its metrics may stand in another slot: rowMetric). */
  model?: string;
  pick: (task: string) => EvalResult[];
}

/** The rows of Tables 2 and 3: the CAPI default (teacher, student), the supervised ceiling, the baselines, the floors and ceilings. */
function rowSources(input: StudyReportInput): RowSource[] {
  return [
    { label: 'CAPI (teacher)', pick: (t) => armResults(input, 'capi', t) },
    { label: 'CAPI (student)', pick: (t) => input.results.filter((r) => r.task === t && r.model.endsWith('-student')) },
    { label: 'ceiling: supervised (same encoder and steps, labels)', pick: (t) => armResults(input, 'supervised', t) },
    ...['init', 'random-init', 'pixels', 'pixel-patches'].map((b) => ({
      label: `baseline: ${b}`,
      model: b,
      pick: (t: string) => byModel(input, t, b),
    })),
    ...[...new Set(input.results.filter((r) => r.kind === 'reference').map((r) => r.model))].map((m) => ({
      label: m,
      pick: (t: string) => byModel(input, t, m),
    })),
  ];
}

/** Mean over results (seeds) of the dense evaluation's feature-variance shares, where recorded (src/segmentation/variance.ts). */
export function meanFeatureShares(results: EvalResult[]): FeatureShares | undefined {
  const shares = results
    .map((r) => r.details?.featureShares as FeatureShares | undefined)
    .filter((x): x is FeatureShares => x !== undefined && Number.isFinite(x.image) && Number.isFinite(x.position));
  if (!shares.length) return undefined;
  const mean = (f: (x: FeatureShares) => number) => shares.reduce((a, x) => a + f(x), 0) / shares.length;
  return { image: mean((x) => x.image), position: mean((x) => x.position) };
}

/** Where each dense row's standardised test patch features vary: per image, per position (the evidence for k-NN vs linear rankings). */
function featureSharesTable(input: StudyReportInput): ReportTable | undefined {
  const tasks = [...new Set(input.results.filter((r) => meanFeatureShares([r])).map((r) => r.task))];
  if (!tasks.length) return undefined;
  const fmt = (x: number | undefined) => (x === undefined ? 'not recorded' : x.toFixed(3));
  // The ablation arms too: each is a trained CAPI whose features the default's can be set beside.
  const arms: RowSource[] = input.arms
    .filter((a) => a.name !== 'capi')
    .map((a) => ({ label: `CAPI arm ${a.factor}: ${a.variant}`, pick: (t: string) => armResults(input, a.name, t) }));
  const rows = [...rowSources(input), ...arms]
    .map((s) => [
      s.label,
      ...tasks.flatMap((t) => {
        const m = meanFeatureShares(s.pick(t));
        return [fmt(m?.image), fmt(m?.position)];
      }),
    ])
    .filter((r) => r.slice(1).some((c) => c !== 'not recorded'));
  return {
    name: 'table3-feature-shares',
    title: 'Where the standardised test patch features vary: share of their variance explained by image means and by position means',
    header: ['model', ...tasks.flatMap((t) => [`${t} image share`, `${t} position share`])],
    rows,
    note:
      'A k-NN over features whose variance is largely per-image (what all patches of a canvas share) finds neighbours in similar ' +
      'canvases rather than on the same kind of item; a logistic probe can weight those directions down (src/segmentation/variance.ts).',
  };
}

function table2and3(input: StudyReportInput): ReportTable[] {
  const out: ReportTable[] = [];
  const groups: { name: string; title: string; task: string[]; keys: [MetricKey, string][]; paper: string }[] = [
    {
      name: 'table2-classification',
      title: 'Table 2-style: classification with frozen features, top-1 (%)',
      task: ['fmnist', 'imagenet'],
      keys: [
        ['attentive.top1', 'attentive'],
        ['linear(avg).top1', 'linear'],
        ['knn(avg).top1', 'k-NN'],
      ],
      paper:
        'Linear and k-NN: on average-pooled patch tokens, except pixels: on the whole flattened normalised image (its attentive probe pools its patch tokens, pixel patch plus position). ' +
        'Paper (IN-1k val, attentive, ViT-L): CAPI 82.9, iBOT 80.9, MAE 79.4, Data2Vec 2.0 80.1, I-JEPA-H 79.5 (eval spec 7.1).',
    },
    {
      name: 'table3-segmentation',
      title: 'Table 3-style: segmentation with frozen patch features, mIoU (%)',
      task: ['fmnist-scenes', 'ade20k'],
      keys: [
        ['seg.knn.mIoU', 'k-NN'],
        ['seg.logreg.mIoU', 'linear'],
        ['seg.knn.fgIoU', 'k-NN fg'],
        ['seg.logreg.fgIoU', 'linear fg'],
      ],
      paper:
        'Paper (ADE20K k-NN / linear, ViT-L): CAPI IN-1k 29.2 / 34.4, iBOT 26.0 / 30.7, MAE 21.5 / 27.4, DINOv2-g 34.0 / 39.0 (eval spec 7.2).',
    },
  ];
  for (const g of groups) {
    const tasks = g.task.filter((t) => input.results.some((r) => r.task === t));
    if (!tasks.length) continue;
    const cols = tasks.flatMap((t) =>
      g.keys.filter(([k]) => input.results.some((r) => r.task === t && r.metrics[k] !== undefined)).map(([k, l]) => ({ t, k, l })),
    );
    const rows = rowSources(input)
      .map((s) => [s.label, ...cols.map((c) => aggregateCell(aggregate(s.pick(c.t), s.model ? rowMetric(s.model, c.k) : c.k)))])
      .filter((r) => r.slice(1).some((c) => c !== 'not run'));
    out.push({ name: g.name, title: g.title, header: ['model', ...cols.map((c) => `${c.t} ${c.l}`)], rows, note: g.paper });
  }
  return out;
}

/** Whether the plan evaluates the teacher of some run of `arm` with the probe behind `m` ('not run' yet vs 'not in plan'). */
function planned(input: StudyReportInput, arm: string, m: Metric): boolean {
  const ids = armRunIds(input, arm);
  return input.evalSettings.some((e) => ids.has(e.run) && e.task === m.task && e.weights === 'teacher' && e.probes.includes(m.probe));
}

function table1(input: StudyReportInput): ReportTable | undefined {
  const metrics = familyMetrics(input.results);
  if (!metrics.length) return undefined;
  const def = input.arms.find((a) => a.name === 'capi')!;
  const rows = input.arms.map((a) => {
    const cells = metrics.map((m) => {
      const d = aggregate(armResults(input, 'capi', m.task), m.key);
      const measured = aggregate(armResults(input, a.name, m.task), m.key);
      if (!measured) return planned(input, a.name, m) ? 'not run' : 'not in plan';
      const x = a.name === 'capi' ? measured : withSeedSpreadOf(measured, d);
      if (a.name === 'capi' || !d) return aggregateCell(x);
      const gap = x.mean - d.mean;
      return `${aggregateCell(x)} (${gap >= 0 ? '+' : ''}${gap.toFixed(1)})`;
    });
    const paperDelta =
      a.name === 'capi'
        ? `${a.paper.ade} / ${a.paper.in1k}`
        : `${(a.paper.ade - def.paper.ade).toFixed(1)} / ${(a.paper.in1k - def.paper.in1k).toFixed(1)}`;
    return [`${a.factor}: ${a.variant}`, ...cells, paperDelta];
  });
  return {
    name: 'table1-ablations',
    title: 'Table 1-style ablations: the same budget per arm; in brackets the change from the default',
    header: ['arm', ...metrics.map((m) => m.label), 'paper ADE / IN-1k (default row: values; others: change)'],
    rows,
    note: 'Paper: ViT-L/16, ImageNet-22k, 100k steps (eval spec 7.6). "not in plan": the plan does not evaluate that arm with that probe (the attentive probe, ~30x the cost of a linear one, runs on the default arm).',
  };
}

/** `234: 61.2, 468: 66.0, 703: 68.1`: the monitor's measurements of a run ('-' where it had none). */
export function monitorTrace(metrics: Record<string, number>[]): string {
  const points = metrics.filter((m) => Number.isFinite(m.monitorKnnTop1));
  return points.length ? points.map((m) => `${m.step + 1}: ${m.monitorKnnTop1.toFixed(1)}`).join(', ') : '-';
}

/** The CAPI runs (the supervised ceiling has no CAPI diagnostics). */
const capiRuns = (input: StudyReportInput) => input.runs.filter((r) => r.arm !== 'supervised');

function diagnosticsTable(input: StudyReportInput): ReportTable {
  const rows = capiRuns(input)
    .filter((r) => r.metrics.length)
    .map((r) => {
      const last = r.metrics.at(-1)!;
      const ips = r.metrics.map((m) => m.imagesPerSec).sort((a, b) => a - b)[Math.floor(r.metrics.length / 2)];
      const total = (r.config?.totalSteps as number | undefined) ?? Number.NaN;
      return [
        r.id,
        `${r.metrics.length} / ${total}`,
        ips.toFixed(0),
        `${(trainingSeconds(r.metrics) / 60).toFixed(1)}`,
        lateMean(r.metrics, 'capiLoss').toFixed(3),
        lateMean(r.metrics, 'clusteringLoss').toFixed(3),
        lateMean(r.metrics, 'targetEntropy').toFixed(2),
        predictorGapCell(r.metrics),
        lateMean(r.metrics, 'clustersUsed').toFixed(0),
        (last.teacherInitShare ?? Number.NaN).toExponential(1),
        teacherMeanAge(r.metrics.map((m) => m.momentum)).toFixed(0),
        lateMean(r.metrics, 'prototypeCosineToInit').toFixed(3),
        lateMean(r.metrics, 'positionClusterMICorrected').toFixed(3),
        monitorTrace(r.metrics),
      ];
    });
  return {
    name: 'diagnostics',
    title: 'Pretraining runs and their diagnostics (means over the last 10% of steps)',
    header: [
      'run',
      'steps',
      'img/s (median)',
      'minutes',
      'CAPI loss',
      'clustering loss',
      'target entropy',
      'predictor KL to targets (nats; at step 0)',
      'clusters used',
      'teacher init share',
      'teacher mean age (steps)',
      'prototype cos to init',
      'position-cluster MI (nats, corrected)',
      'teacher k-NN top-1 during the run (monitor: step value, ...)',
    ],
    rows,
  };
}

function table5(input: StudyReportInput): ReportTable | undefined {
  const tasks = [...new Set(input.results.filter((r) => r.metrics['linear(pred-pool).top1'] !== undefined).map((r) => r.task))];
  if (!tasks.length) return undefined;
  const rows: string[][] = [];
  for (const t of tasks) {
    const capi = armResults(input, 'capi', t);
    rows.push([
      `${t}: average pooling`,
      aggregateCell(aggregate(capi, 'linear(avg).top1')),
      aggregateCell(aggregate(capi, 'knn(avg).top1')),
    ]);
    rows.push([
      `${t}: predictor pooling`,
      aggregateCell(aggregate(capi, 'linear(pred-pool).top1')),
      aggregateCell(aggregate(capi, 'knn(pred-pool).top1')),
    ]);
  }
  rows.push(['paper IN-1k: average pooling', '77.1', '57.1'], ['paper IN-1k: predictor pooling', '81.1', '73.8']);
  return {
    name: 'table5-pooling',
    title: 'Table 5-style: predictor pooling vs average pooling (CAPI teacher), top-1 (%)',
    header: ['representation', 'linear', 'k-NN'],
    rows,
  };
}

function claimsTable(claims: Claim[]): ReportTable {
  return {
    name: 'claims',
    title: 'Claims',
    header: ['claim', 'paper', 'ours: A', 'ours: B', 'gap A - B ± combined SE', 'verdict'],
    rows: claims.map((c) => [c.claim, c.paper, aggregateCell(c.a), aggregateCell(c.b), fmtGap(c), c.verdict]),
  };
}

const LEGEND =
  'Cells: mean ± std over seeds (n), [SE] the standard error of that mean: sqrt(std² / n + test-set SE²), where the test-set SE is binomial ' +
  'for accuracies and a bootstrap over test images for mIoU; ‡ a single-seed arm’s SE that adds the default arm’s seed std (sqrt(test-set SE² + std²): its one run is one draw of that spread); † a seed’s selected hyper-parameter (a probe’s lr, logistic regression’s C, k-NN’s k when the largest: k = 1 is k’s own bound) lies at the edge of its grid; * a seed’s selected probe ' +
  'had not converged (the chosen point trained again with half the steps, from the same initial parameters and batches, is further than 0.3 points and one held-out SE below it).';

const md = (t: ReportTable) => `### ${t.title}\n\n${markdownTable(t.header, t.rows)}${t.note ? `\n${t.note}\n` : ''}`;

/** What the selection flags of a claim's two rows say (a probe at its grid edge or not converged weakens the comparison). */
function flagEvidence(c: Claim): string {
  const flags = (x: Aggregate | undefined, who: string) =>
    [
      x?.atGridEdge ? `${who}'s selection sits at the edge of its grid` : '',
      x?.notConverged ? `${who}'s probe had not converged` : '',
    ].filter(Boolean);
  const all = [...flags(c.a, 'A'), ...flags(c.b, 'B')];
  return all.length ? `; ${all.join(', ')}` : '';
}

/** "12 hold, 3 hold (within 2 SE), ...": how many claims got each verdict, in the order of the verdicts. */
export function verdictCounts(claims: Claim[]): string {
  const order: Verdict[] = [
    'holds',
    'holds (within 2 SE)',
    'not resolved (within 2 SE)',
    'does not hold (reversed beyond 2 SE)',
    'not testable here',
  ];
  return order
    .map((v) => [v, claims.filter((c) => c.verdict === v).length] as const)
    .filter(([, n]) => n > 0)
    .map(([v, n]) => `${n} ${v}`)
    .join(', ');
}

function discussion(claims: Claim[]): string {
  const open = claims.filter((c) => c.verdict !== 'holds' && c.verdict !== 'holds (within 2 SE)');
  if (!open.length) return 'Every claim tested here holds.\n';
  return open
    .map((c) => `- **${c.claim}**: ${c.verdict}; gap ${fmtGap(c)} points. Evidence: ${c.evidence}${flagEvidence(c)}.`)
    .join('\n')
    .concat('\n');
}

/** How the supervised ceiling was trained, from its metrics. */
function supervisedLine(input: StudyReportInput): string {
  const runs = input.runs.filter((r) => r.arm === 'supervised' && r.metrics.length);
  if (!runs.length) return '';
  const parts = runs.map(
    (r) =>
      `${r.id}: ${r.metrics.length} steps, training-batch top-1 over the last 10% ${(100 * lateMean(r.metrics, 'batchAccuracy')).toFixed(1)}%`,
  );
  return `The supervised ceiling is the same encoder trained with labels (cross-entropy of a linear head on average-pooled patch tokens) for as many steps and images as a CAPI run, then evaluated frozen like the others: ${parts.join('; ')}.\n`;
}

interface GridDetails {
  grid: { lr: number; wd: number }[];
  valAccuracy: number[];
  best: number;
  plateauTolerance: number;
  coarse?: { grid: { lr: number; wd: number }[]; valAccuracy: number[] };
}

type GridAxis = 'lr' | 'wd';

interface EdgePick {
  low: boolean;
  high: boolean;
  /** Held-out accuracy of the chosen point minus that of its neighbour along the axis (the other coordinate fixed). */
  margin?: number;
  tolerance: number;
}

/**
 * Where each probe's chosen point lies along one axis of its lr x wd grid, and its margin over the
 * next value on that axis at the same other coordinate, in the round that selected (else the
 * grid's first round: successive halving keeps few points), against the convergence tolerance
 * (max(0.3 points, one held-out SE)).
 */
function gridEdgePicks(results: EvalResult[], axis: GridAxis): EdgePick[] {
  const other: GridAxis = axis === 'lr' ? 'wd' : 'lr';
  const picks: EdgePick[] = [];
  for (const r of results) {
    for (const d of Object.values(r.details) as Partial<GridDetails>[]) {
      if (!d?.grid || !d.valAccuracy || d.best === undefined || d.plateauTolerance === undefined) continue;
      const values = [...new Set((d.coarse?.grid ?? d.grid).map((g) => g[axis]))].sort((a, b) => a - b);
      if (values.length < 2) continue;
      const chosen = d.grid[d.best];
      const next = values[values.indexOf(chosen[axis]) + (chosen[axis] === values.at(-1) ? -1 : 1)];
      const at = (grid: { lr: number; wd: number }[], acc: number[], v: number) => {
        const i = grid.findIndex((g) => g[other] === chosen[other] && g[axis] === v);
        return i < 0 ? undefined : acc[i];
      };
      const round =
        at(d.grid, d.valAccuracy, next) !== undefined
          ? { grid: d.grid, acc: d.valAccuracy }
          : d.coarse && { grid: d.coarse.grid, acc: d.coarse.valAccuracy };
      const margin = round && at(round.grid, round.acc, chosen[axis])! - (at(round.grid, round.acc, next) ?? Number.NaN);
      picks.push({
        low: chosen[axis] === values[0],
        high: chosen[axis] === values.at(-1),
        margin: Number.isFinite(margin) ? margin : undefined,
        tolerance: d.plateauTolerance,
      });
    }
  }
  return picks;
}

/** "at an edge in n of m (the smallest in k); there it beat the next ... by x-y points (tolerance ...), ..." */
function edgeSentence(picks: EdgePick[], axis: GridAxis, gridName: string, outside: string): string {
  const edge = picks.filter((p) => p.low || p.high);
  const margins = edge.filter((p) => p.margin !== undefined);
  const pts = (x: number) => (100 * x).toFixed(2);
  const range = (xs: number[]) => (Math.min(...xs) === Math.max(...xs) ? pts(xs[0]) : `${pts(Math.min(...xs))}-${pts(Math.max(...xs))}`);
  const beyond = margins.filter((p) => p.margin! > p.tolerance).length;
  const detail = margins.length
    ? `; there it beat the next ${axis} at the same ${axis === 'lr' ? 'wd' : 'lr'} by ${range(margins.map((p) => p.margin!))} held-out points (tolerance ${range(margins.map((p) => p.tolerance))}), ${beyond ? `beyond the tolerance in ${beyond}: ${outside}` : 'never beyond the tolerance: the edge is within noise'}`
    : '';
  const extreme =
    axis === 'lr' ? `the largest in ${edge.filter((p) => p.high).length}` : `the smallest in ${edge.filter((p) => p.low).length}`;
  return `the chosen ${axis} lies at an edge of ${gridName} in ${edge.length} of ${picks.length} probe results (${extreme})${detail}`;
}

/**
 * What the grid edges cost: the tables flag an lr at its grid edge (†), not a wd; these say how
 * often each edge won and by how much it beat its neighbour, so a reader can tell an edge within
 * noise from one that may hide a better point outside the grid.
 */
export function gridEdgeNotes(results: EvalResult[]): string {
  const lr = gridEdgePicks(results, 'lr');
  const wd = gridEdgePicks(results, 'wd');
  if (!lr.length) return '';
  return [
    `Learning rate (flagged † in the tables): ${edgeSentence(lr, 'lr', 'its lr grid', 'an lr outside the grid might do better there')}.`,
    `Weight decay (not flagged in the tables): ${edgeSentence(wd, 'wd', "the paper's wd grid", 'a wd outside the grid might do better there')}.`,
  ].join('\n');
}

/**
 * Which machines made the runs and results (their wall times differ by machine: a study spread
 * over sessions may meet several), with each run's median images/s, the figure to compare.
 */
export function machinesLine(input: StudyReportInput): string {
  const by = new Map<string, { runs: string[]; results: number }>();
  const entry = (m: unknown) => {
    const key = typeof m === 'string' ? m : 'not recorded';
    if (!by.has(key)) by.set(key, { runs: [], results: 0 });
    return by.get(key)!;
  };
  for (const r of input.runs.filter((x) => x.config && x.metrics.length)) {
    const ips = r.metrics
      .map((m) => m.imagesPerSec)
      .filter((x) => Number.isFinite(x))
      .sort((a, b) => a - b);
    const median = ips.length ? ` at ${ips[Math.floor(ips.length / 2)].toFixed(0)} img/s` : '';
    entry((r.config!.backend as { machine?: string } | undefined)?.machine).runs.push(`${r.id}${median}`);
  }
  for (const r of input.results.filter((x) => x.kind !== 'reference'))
    entry((r.backend as { machine?: string } | undefined)?.machine).results++;
  const parts = [...by.entries()].map(
    ([m, v]) =>
      `${m} (${[v.runs.length ? `runs ${v.runs.join(', ')}` : '', v.results ? `${v.results} result${v.results === 1 ? '' : 's'}` : ''].filter(Boolean).join('; ')})`,
  );
  return parts.length ? `- Machines: ${parts.join('; ')}.\n` : '';
}

/** What each evaluated dense task is (its description in src/eval/tasks.ts). */
function denseTasksLine(input: StudyReportInput): string {
  const tasks = [...new Set(input.results.map((r) => r.task))].filter(
    (t): t is TaskName => t in TASKS && TASKS[t as TaskName].kind === 'segmentation',
  );
  return tasks.map((t) => `\n\`${t}\`: ${TASKS[t].description}.`).join('');
}

/** Writes REPORT.md, tables/ and curves/ under `dir`; returns the report's path. */
export async function writeStudyReport(dir: string, input: StudyReportInput): Promise<string> {
  const claims = buildClaims(input);
  const t1 = table1(input);
  const t5 = table5(input);
  const shares = featureSharesTable(input);
  const tables = [
    ...table2and3(input),
    ...(shares ? [shares] : []),
    ...(t1 ? [t1] : []),
    ...(t5 ? [t5] : []),
    diagnosticsTable(input),
    claimsTable(claims),
  ];
  const tablesDir = path.join(dir, 'tables');
  for (const t of tables) {
    writeFileAtomic(path.join(tablesDir, `${t.name}.md`), `${md(t)}\n${LEGEND}\n`);
    writeFileAtomic(path.join(tablesDir, `${t.name}.csv`), stringify([t.header, ...t.rows]));
  }
  const curves: string[] = [];
  for (const family of [...new Set(input.runs.map((r) => r.family))]) {
    const runs = capiRuns(input).filter((r) => r.family === family && r.metrics.length);
    if (!runs.length) continue;
    const file = path.join(dir, 'curves', `${family}.png`);
    await saveCurvesPng(
      file,
      runs.map((r) => ({ run: r.id, metrics: r.metrics })),
    );
    curves.push(`![${family} training curves](curves/${family}.png)`);
  }
  const finished = input.runs.filter(
    (r) => r.metrics.length && r.metrics.length >= ((r.config?.totalSteps as number) ?? Number.POSITIVE_INFINITY),
  ).length;
  const pendingEvals = input.evalSettings.filter(
    (e) => !input.results.some((r) => r.task === e.task && r.model === (e.weights === 'student' ? `${e.run}-student` : e.run)),
  ).length;
  const complete = finished === input.runs.length && pendingEvals === 0;
  const progress = complete
    ? `the plan is complete: ${finished} pretraining runs, ${input.results.length} evaluation results`
    : `${finished} of ${input.runs.length} pretraining runs finished, ${input.results.length} evaluation results, ${pendingEvals} of the plan's ${input.evalSettings.length} evaluations to come (their cells read "not run"; "not in plan" marks what the plan does not evaluate)`;
  const minutes = input.runs.reduce((a, r) => a + trainingSeconds(r.metrics), 0) / 60;
  const evalMinutes = input.results.reduce((a, r) => a + (r.seconds?.total ?? 0), 0) / 60;
  const backend = input.runs.find((r) => r.config)?.config?.backend as { provider?: string; threads?: number } | undefined;
  const section = (t: ReportTable | undefined) => (t ? `${md(t)}\n` : '');
  const byName = (n: string) => tables.find((t) => t.name === n);
  const report = `# CAPI at small scale: study \`${input.plan.name}\`

${input.plan.summary}.

- Progress: ${progress}.
- Wall time${complete ? '' : ' so far'}: pretraining ${minutes.toFixed(0)} min, evaluation ${evalMinutes.toFixed(0)} min (each result's own time), ${((minutes + evalMinutes) / 60).toFixed(1)} h in all, on ${backend?.provider ?? '?'} (${backend?.threads ?? '?'} threads); plan estimate: ${input.plan.estimate}.
${machinesLine(input)}- Started ${input.started}; code: ${input.commits.join(', ')}${input.commits.length > 1 ? ' (more than one commit: the study was resumed on newer code)' : ''}.
- Rerun or continue: \`npm run study -- --plan ${input.plan.name}\` (finished units are skipped, an interrupted run resumes from its checkpoint;
  this folder alone is enough to continue on another machine: a finished run's record is kept in \`runs/\` here).

${LEGEND}

## Classification (Table 2)

${section(byName('table2-classification'))}
${supervisedLine(input)}
## Dense task (Table 3), with its floor and ceiling

The floor rows need no features (the majority label; the background oracle knows the background mask), the ceiling row
labels every patch with its true mode label (the best any per-patch classifier can do at the model's patch size).
${denseTasksLine(input)}

${section(byName('table3-segmentation'))}
${section(byName('table3-feature-shares'))}
## Ablations (Table 1)

${section(byName('table1-ablations'))}
## Predictor pooling (Table 5)

${section(byName('table5-pooling'))}
## Pretraining runs and diagnostics

${section(byName('diagnostics'))}
${curves.join('\n\n')}

## Claims

A claim "A > B" holds when the gap exceeds 2 combined standard errors; "A >= B" holds unless B is ahead by more than that.
Of the ${claims.length} claims: ${verdictCounts(claims)}.

${section(byName('claims'))}
## Discussion of the claims that do not hold

${discussion(claims)}
## How it was made

Evaluations per run (probes; overrides of the eval defaults):

${markdownTable(
  ['run', 'task', 'weights', 'probes', 'settings'],
  input.evalSettings.map((e) => [e.run, e.task, e.weights, e.probes.join(', '), JSON.stringify(e.config)]),
)}
Probe protocol (README "Evaluation"): every probe grid is the paper's lr x wd grid plus the peak lrs 2e-2, 5e-2 and 1e-1
(39 points), selected on a 10% held-out split of the training set; the chosen point is trained again with half the steps (paired: the same initial parameters and batches), and
a result counts as converged when that moves its held-out accuracy by less than max(0.3 points, one held-out SE). With
\`attentiveRefineSteps\` the attentive grid runs \`attentiveSteps\` steps and its ${REFINE_KEEP} best points run again, alone, with
\`attentiveRefineSteps\` steps and select (successive halving; lr edges are those of the full grid).
${gridEdgeNotes(input.results)}

Every result's JSON (config, seed, backend, timings, held-out curves) is under \`<task>/\`; every finished run's config and per-step
metrics under \`runs/<run>/\`.
`;
  makeDirs(dir);
  const file = path.join(dir, 'REPORT.md');
  writeFileAtomic(file, report);
  return file;
}
