/**
 * The evaluations along the learning curve as a picture: one panel per task metric, each arm's
 * teacher (and the default arm's student and predictor pooling) at every evaluated training length
 * with its SE, beside the levels that do not move with training length (baselines, floors, the
 * supervised ceiling). What the claims-along-the-curve table says in numbers.
 */
import type { MetricKey } from '../eval/metrics.js';
import type { EvalResult } from '../eval/result.js';
import { renderPng } from './curves.js';
import { type Aggregate, aggregate } from './statistics.js';
import {
  armResults,
  armResultsAt,
  armStudentResults,
  BASELINE_MODELS,
  byModel,
  curvePoints,
  familyMetrics,
  referenceModels,
  rowMetric,
  runEpochs,
  type StudyReportInput,
} from './study-input.js';

/** A series' value (mean over seeds) at a training length, ± its SE (statistics.ts aggregate). */
export interface EvalCurvePoint {
  panel: string;
  series: string;
  epochs: number;
  mean: number;
  lo: number;
  hi: number;
}

/** A value that does not depend on the CAPI runs' length: a baseline, a floor or ceiling, the supervised ceiling. */
export interface EvalCurveLevel {
  panel: string;
  series: string;
  mean: number;
}

export interface EvalCurves {
  points: EvalCurvePoint[];
  levels: EvalCurveLevel[];
}

/** A line of a panel: its name, the metric it reads, its results at a learning-curve point and at the end. */
type Series = [name: string, metric: MetricKey, at: (epochs: number) => EvalResult[], atEnd: () => EvalResult[]];

/** The predictor-pooling metric beside an average-pooling one (Table 5), where there is one. */
const PRED_POOL: Partial<Record<MetricKey, MetricKey>> = {
  'linear(avg).top1': 'linear(pred-pool).top1',
  'knn(avg).top1': 'knn(pred-pool).top1',
};

/** Every panel's points and levels; undefined for a study without learning-curve points or a recorded run length. */
export function evalCurves(input: StudyReportInput): EvalCurves | undefined {
  const points = curvePoints(input);
  const end = runEpochs(input);
  if (!points.length || end === undefined) return undefined;
  const out: EvalCurves = { points: [], levels: [] };
  const add = (panel: string, series: string, epochs: number, a: Aggregate | undefined) => {
    if (a) out.points.push({ panel, series, epochs, mean: a.mean, lo: a.mean - a.se, hi: a.mean + a.se });
  };
  const level = (panel: string, series: string, a: Aggregate | undefined) => {
    if (a) out.levels.push({ panel, series, mean: a.mean });
  };
  for (const m of familyMetrics(input.results)) {
    const series: Series[] = [
      ...input.arms.map(
        (a): Series => [
          a.name === 'capi' ? 'CAPI teacher' : `${a.factor}: ${a.variant}`,
          m.key,
          (p) => armResultsAt(input, a.name, m.task, p, false),
          () => armResults(input, a.name, m.task),
        ],
      ),
      ['CAPI student', m.key, (p) => armResultsAt(input, 'capi', m.task, p, true), () => armStudentResults(input, 'capi', m.task)],
    ];
    const pp = PRED_POOL[m.key];
    if (pp)
      series.push([
        'CAPI teacher, predictor pooling',
        pp,
        (p) => armResultsAt(input, 'capi', m.task, p, false),
        () => armResults(input, 'capi', m.task),
      ]);
    for (const [name, key, at, atEnd] of series) {
      for (const p of points) add(m.label, name, p, aggregate(at(p), key));
      add(m.label, name, end, aggregate(atEnd(), key));
    }
    level(m.label, `supervised ceiling (${end} epochs)`, aggregate(armResults(input, 'supervised', m.task), m.key));
    for (const b of BASELINE_MODELS) level(m.label, `baseline: ${b}`, aggregate(byModel(input, m.task, b), rowMetric(b, m.key)));
    for (const ref of referenceModels(input)) level(m.label, ref, aggregate(byModel(input, m.task, ref), m.key));
  }
  // A panel with only levels (no series evaluated yet) says nothing about training length.
  const drawn = new Set(out.points.map((p) => p.panel));
  return { points: out.points, levels: out.levels.filter((l) => drawn.has(l.panel)) };
}

/** The panels as a PNG: lines with ±SE bars per series over log-spaced epochs, dashed rules for the levels. */
export async function saveEvalCurvesPng(file: string, curves: EvalCurves): Promise<void> {
  const values = [...curves.points.map((p) => ({ ...p, kind: 'point' })), ...curves.levels.map((l) => ({ ...l, kind: 'level' }))];
  const panels = [...new Set(curves.points.map((p) => p.panel))];
  const epochs = [...new Set(curves.points.map((p) => p.epochs))].sort((a, b) => a - b);
  const x = {
    field: 'epochs',
    type: 'quantitative' as const,
    title: 'pretraining epochs',
    scale: { type: 'log' as const, domain: [epochs[0] / 1.25, epochs.at(-1)! * 1.25] },
    axis: { values: epochs, format: 'd' },
  };
  // The legend in the order the series were made (the default arm's teacher first), the levels after them.
  const order = [...new Set([...curves.points, ...curves.levels].map((v) => v.series))];
  // tableau20: a study's curves and levels run past category10's ten colours (plan medium has 14 series).
  const color = {
    field: 'series',
    type: 'nominal' as const,
    sort: order,
    scale: { scheme: 'tableau20' },
    legend: { labelLimit: 0, title: null },
  };
  await renderPng(file, {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    data: { values },
    facet: { field: 'panel', type: 'nominal', sort: panels, title: null },
    columns: Math.min(4, panels.length),
    spec: {
      width: 220,
      height: 160,
      layer: [
        {
          transform: [{ filter: "datum.kind === 'level'" }],
          mark: { type: 'rule', strokeDash: [4, 3], strokeWidth: 1 },
          encoding: { y: { field: 'mean', type: 'quantitative' }, color },
        },
        {
          transform: [{ filter: "datum.kind === 'point'" }],
          mark: { type: 'rule', strokeWidth: 1 },
          encoding: { x, y: { field: 'lo', type: 'quantitative' }, y2: { field: 'hi' }, color },
        },
        {
          transform: [{ filter: "datum.kind === 'point'" }],
          mark: { type: 'line', point: true, strokeWidth: 1.5 },
          encoding: {
            x,
            y: { field: 'mean', type: 'quantitative', title: null, scale: { zero: false } },
            color,
          },
        },
      ],
    },
    resolve: { scale: { y: 'independent' }, axis: { x: 'independent' } },
    background: 'white',
  });
}
