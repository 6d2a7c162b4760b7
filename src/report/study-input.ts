/**
 * What a study's report reads (its plan's arms, its runs' configs and metrics, its results) and
 * the selections every part of the report makes of it: an arm's results over its seeds, a
 * baseline's rows, the metrics a family is judged on.
 */
import type { PredictionFit } from '../pretrain/prediction-fit.js';
import type { MetricsLine } from '../pretrain/run-folder.js';
import { METRICS, type MetricKey } from '../eval/metrics.js';
import type { EvalResult } from '../eval/result.js';

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
  metrics: MetricsLine[];
  /** Its predictor's fit to its targets by step (prediction-fit.json), where measured. */
  predictionFits?: Record<string, PredictionFit>;
}

export interface StudyReportInput {
  plan: { name: string; summary: string; estimate: string };
  arms: StudyArm[];
  runs: StudyRunInput[];
  results: EvalResult[];
  commits: string[];
  started: string;
  /** The plan's evaluations: what says which run, weights and learning-curve point a result row is. */
  evalSettings: PlanEvaluation[];
}

/** One evaluation of a plan: of which run and weights, at which learning-curve point, on which task, and the result row it writes. */
export interface PlanEvaluation {
  run: string;
  /** The result's model name (src/study/plans.ts evalRowName). */
  row: string;
  task: string;
  probes: string[];
  weights: 'teacher' | 'student';
  /** A learning-curve point: the run's weights after this many epochs (absent: at its end). */
  atEpochs?: number;
  /** Also writes its task's baseline rows (BASELINE_MODELS; once a task, src/study/plans.ts). */
  baselines?: boolean;
  config: Record<string, unknown>;
}

export interface Metric {
  task: string;
  key: MetricKey;
  /** The task's short name and the metric's label (src/eval/metrics.ts). */
  label: string;
  /** The probe that measures it, as a plan's evaluations name it. */
  probe: string;
}

/** Tasks as Table 1 and the claims name them. */
const TASK_LABELS: Record<string, string> = {
  fmnist: 'fmnist',
  imagenet: 'IN-1k',
  'fmnist-canvas': 'canvas',
  'fmnist-scenes': 'scenes',
  'fmnist-canvas-dense': 'canvas-dense',
  ade20k: 'ADE20K',
};

/**
 * The metrics a family's claims and Table 1 are judged on (whichever the plan evaluated): those
 * with a test-set SE (foreground mIoU has none; Table 3 shows it).
 */
export function familyMetrics(results: EvalResult[]): Metric[] {
  const classification: MetricKey[] = ['attentive.top1', 'linear(avg).top1', 'knn(avg).top1'];
  const segmentation: MetricKey[] = ['seg.knn.mIoU', 'seg.logreg.mIoU'];
  const all: [string, MetricKey[]][] = [
    ['fmnist', classification],
    ['imagenet', ['attentive.top1', 'linear(avg).top1']],
    ['fmnist-canvas', classification],
    ['fmnist-scenes', segmentation],
    // The reference's per-pixel k-NN vote is the headline; the per-patch vote and image-centred features beside it test what it rewards.
    ['fmnist-canvas-dense', ['seg.knn.mIoU', 'seg.knn-patch.mIoU', 'seg.knn-centered.mIoU', 'seg.logreg.mIoU']],
    ['ade20k', segmentation],
  ];
  return (
    all
      .flatMap(([task, keys]) =>
        keys.map((key) => ({ task, key, label: `${TASK_LABELS[task]} ${METRICS[key].label}`, probe: METRICS[key].probe })),
      )
      // A floor or ceiling row holds every metric of its task (src/eval/classifiers.ts allClassifiers): a column is a metric some model has.
      .filter((m) => results.some((r) => r.kind !== 'reference' && r.task === m.task && r.metrics[m.key] !== undefined))
  );
}

/** The ids of the runs of one arm (all its seeds). */
export const armRunIds = (input: StudyReportInput, arm: string) => new Set(input.runs.filter((r) => r.arm === arm).map((r) => r.id));

/** The result of a plan evaluation, if it exists. */
export const resultOf = (input: StudyReportInput, e: PlanEvaluation): EvalResult | undefined =>
  input.results.find((r) => r.task === e.task && r.model === e.row);

/** The results of the plan's evaluations that `select` picks. */
export const planResults = (input: StudyReportInput, select: (e: PlanEvaluation) => boolean): EvalResult[] =>
  input.evalSettings.filter(select).flatMap((e) => resultOf(input, e) ?? []);

/** The evaluations of one arm's runs (all seeds) on a task, of these weights at this learning-curve point (undefined: the end). */
const ofArm = (input: StudyReportInput, arm: string, task: string, weights: PlanEvaluation['weights'], atEpochs?: number) => {
  const ids = armRunIds(input, arm);
  return (e: PlanEvaluation) => ids.has(e.run) && e.task === task && e.weights === weights && e.atEpochs === atEpochs;
};

/** Teacher results of the runs of one arm on a task (all its seeds), at their end. */
export const armResults = (input: StudyReportInput, arm: string, task: string): EvalResult[] =>
  planResults(input, ofArm(input, arm, task, 'teacher'));

/** The learning-curve points (epochs) the results hold, ascending. */
export function curvePoints(input: StudyReportInput): number[] {
  const points = input.evalSettings.filter((e) => e.atEpochs !== undefined && resultOf(input, e)).map((e) => e.atEpochs!);
  return [...new Set(points)].sort((a, b) => a - b);
}

/** The results of the runs of one arm at a learning-curve point, teacher or student. */
export const armResultsAt = (input: StudyReportInput, arm: string, task: string, epochs: number, student: boolean): EvalResult[] =>
  planResults(input, ofArm(input, arm, task, student ? 'student' : 'teacher', epochs));

/** The final students' results of the runs of one arm on a task (not the students of learning-curve points). */
export const armStudentResults = (input: StudyReportInput, arm: string, task: string): EvalResult[] =>
  planResults(input, ofArm(input, arm, task, 'student'));

export const byModel = (input: StudyReportInput, task: string, model: string) =>
  input.results.filter((r) => r.task === task && r.model === model);

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

/** The baselines' model names, in the order of the tables' rows. */
export const BASELINE_MODELS = ['init', 'random-init', 'pixels', 'pixel-patches'] as const;

/** The floor and ceiling rows the results hold (each a model name). */
export const referenceModels = (input: StudyReportInput): string[] => [
  ...new Set(input.results.filter((r) => r.kind === 'reference').map((r) => r.model)),
];

/** The runs' length in epochs (their config's train.epochs), where recorded. */
export const runEpochs = (input: StudyReportInput): number | undefined =>
  input.runs.map((r) => (r.config?.train as { epochs?: number } | undefined)?.epochs).find((e) => e !== undefined);

/** The CAPI runs (the supervised ceiling has no CAPI diagnostics). */
export const capiRuns = (input: StudyReportInput) => input.runs.filter((r) => r.arm !== 'supervised');
