/**
 * What a study's report reads (its plan's arms, its runs' configs and metrics, its results) and
 * the selections every part of the report makes of it: an arm's results over its seeds, a
 * baseline's rows, the metrics a family is judged on.
 */
import type { MetricKey } from '../eval/metrics.js';
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
  metrics: Record<string, number>[];
}

export interface StudyReportInput {
  plan: { name: string; summary: string; estimate: string };
  arms: StudyArm[];
  runs: StudyRunInput[];
  results: EvalResult[];
  commits: string[];
  started: string;
  /** The plan's evaluations: of which run, the result row they write (`run`, `run-student`, `run@3ep`...), on which task. */
  evalSettings: { run: string; row: string; task: string; probes: string[]; weights: string; config: Record<string, unknown> }[];
}

export interface Metric {
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
export function familyMetrics(results: EvalResult[]): Metric[] {
  const all: Metric[] = [
    { task: 'fmnist', key: 'attentive.top1', label: 'fmnist attentive', probe: 'attentive' },
    { task: 'fmnist', key: 'linear(avg).top1', label: 'fmnist linear', probe: 'linear' },
    { task: 'fmnist', key: 'knn(avg).top1', label: 'fmnist k-NN', probe: 'knn' },
    { task: 'imagenet', key: 'attentive.top1', label: 'IN-1k attentive', probe: 'attentive' },
    { task: 'imagenet', key: 'linear(avg).top1', label: 'IN-1k linear', probe: 'linear' },
    { task: 'fmnist-canvas', key: 'attentive.top1', label: 'canvas attentive', probe: 'attentive' },
    { task: 'fmnist-canvas', key: 'linear(avg).top1', label: 'canvas linear', probe: 'linear' },
    { task: 'fmnist-canvas', key: 'knn(avg).top1', label: 'canvas k-NN', probe: 'knn' },
    { task: 'fmnist-scenes', key: 'seg.knn.mIoU', label: 'scenes k-NN mIoU', probe: 'knn' },
    { task: 'fmnist-scenes', key: 'seg.logreg.mIoU', label: 'scenes linear mIoU', probe: 'logreg' },
    // The reference's per-pixel k-NN vote is the headline; the per-patch vote and image-centred features beside it test what it rewards.
    { task: 'fmnist-canvas-dense', key: 'seg.knn.mIoU', label: 'canvas-dense k-NN mIoU', probe: 'knn' },
    { task: 'fmnist-canvas-dense', key: 'seg.knn-patch.mIoU', label: 'canvas-dense k-NN mIoU (patch votes)', probe: 'knn-patch' },
    { task: 'fmnist-canvas-dense', key: 'seg.knn-centered.mIoU', label: 'canvas-dense k-NN mIoU (image-centred)', probe: 'knn-centered' },
    { task: 'fmnist-canvas-dense', key: 'seg.logreg.mIoU', label: 'canvas-dense linear mIoU', probe: 'logreg' },
    { task: 'ade20k', key: 'seg.knn.mIoU', label: 'ADE20K k-NN mIoU', probe: 'knn' },
    { task: 'ade20k', key: 'seg.logreg.mIoU', label: 'ADE20K linear mIoU', probe: 'logreg' },
  ];
  return all.filter((m) => results.some((r) => r.task === m.task && r.metrics[m.key] !== undefined));
}

/** The ids of the runs of one arm (all its seeds). */
export const armRunIds = (input: StudyReportInput, arm: string) => new Set(input.runs.filter((r) => r.arm === arm).map((r) => r.id));

/** Teacher results of the runs of one arm on a task (all its seeds). */
export function armResults(input: StudyReportInput, arm: string, task: string): EvalResult[] {
  const ids = armRunIds(input, arm);
  return input.results.filter((r) => r.task === task && ids.has(r.model));
}

/** The learning-curve points the results hold (`<run>@<n>ep` rows), in epochs, ascending. */
export function curvePoints(input: StudyReportInput): number[] {
  const points = input.results.map((r) => /@(\d+)ep(-student)?$/.exec(r.model)?.[1]).filter((p): p is string => p !== undefined);
  return [...new Set(points.map(Number))].sort((a, b) => a - b);
}

/** The results of the runs of one arm at a learning-curve point (`<run>@<n>ep`, teacher or `-student`). */
export function armResultsAt(input: StudyReportInput, arm: string, task: string, epochs: number, student: boolean): EvalResult[] {
  const names = new Set([...armRunIds(input, arm)].map((id) => `${id}@${epochs}ep${student ? '-student' : ''}`));
  return input.results.filter((r) => r.task === task && names.has(r.model));
}

/** The final students' results of the runs of one arm on a task (not the students of learning-curve points). */
export function armStudentResults(input: StudyReportInput, arm: string, task: string): EvalResult[] {
  const ids = armRunIds(input, arm);
  return input.results.filter((r) => r.task === task && r.model.endsWith('-student') && ids.has(r.model.slice(0, -'-student'.length)));
}

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

/** The CAPI runs (the supervised ceiling has no CAPI diagnostics). */
export const capiRuns = (input: StudyReportInput) => input.runs.filter((r) => r.arm !== 'supervised');
