/**
 * The report's tables (Tables 1, 2, 3 and 5 beside the paper's, the feature-variance shares, the
 * runs' diagnostics, the claims), one cell format and one legend for all of them.
 */
import type { MetricsLine } from '../pretrain/run-folder.js';
import { METRICS, type MetricKey } from '../eval/metrics.js';
import { teacherMeanAge } from '../pretrain/diagnostics.js';
import type { EvalResult } from '../eval/result.js';
import type { Table } from './table.js';
import { fmtGap, paperTeacherAges, type Claim } from './claims.js';
import {
  aggregate,
  aggregateCell,
  lateMean,
  meanFeatureShares,
  monitorTrace,
  positionMICell,
  predictorGap,
  trainingSeconds,
  withSeedSpreadOf,
} from './statistics.js';
import {
  armResults,
  armResultsAt,
  curvePoints,
  armRunIds,
  armStudentResults,
  byModel,
  capiRuns,
  BASELINE_MODELS,
  familyMetrics,
  referenceModels,
  rowMetric,
  type Metric,
  type StudyReportInput,
} from './study-input.js';

/** The final teacher's mean age in steps and as a share of the run's steps: `141 (2.0%)`. */
const teacherAgeCell = (metrics: MetricsLine[]) => {
  const age = teacherMeanAge(metrics.map((m) => m.momentum ?? Number.NaN));
  return Number.isFinite(age) ? `${age.toFixed(0)} (${((100 * age) / metrics.length).toFixed(1)}%)` : '-';
};

const predictorGapCell = (metrics: MetricsLine[]) => {
  const g = predictorGap(metrics);
  return `${g.late.toFixed(2)} (${g.initial.toFixed(2)})`;
};

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
    { label: 'CAPI (student)', pick: (t) => armStudentResults(input, 'capi', t) },
    // The learning curve: the same runs at each of their evaluated points.
    ...curvePoints(input).flatMap((p) =>
      [false, true].map((student) => ({
        label: `CAPI (${student ? 'student' : 'teacher'}) at ${p} epochs`,
        pick: (t: string) => armResultsAt(input, 'capi', t, p, student),
      })),
    ),
    { label: 'ceiling: supervised (same encoder and steps, labels)', pick: (t) => armResults(input, 'supervised', t) },
    ...BASELINE_MODELS.map((b) => ({
      label: `baseline: ${b}`,
      model: b,
      pick: (t: string) => byModel(input, t, b),
    })),
    ...referenceModels(input).map((m) => ({
      label: m,
      pick: (t: string) => byModel(input, t, m),
    })),
  ];
}

/** Where each dense row's standardised test patch features vary: per image, per position (the evidence for k-NN vs linear rankings). */
export function featureSharesTable(input: StudyReportInput): Table | undefined {
  const tasks = [...new Set(input.results.filter((r) => meanFeatureShares([r])).map((r) => r.task))];
  if (!tasks.length) return undefined;
  // Over seeds as the other cells: mean ± std (n); one seed: its value.
  const fmt = (x: number | undefined, std: number, n: number) =>
    x === undefined ? 'not recorded' : `${x.toFixed(3)}${n > 1 ? ` ± ${std.toFixed(3)} (${n})` : ''}`;
  // The ablation arms too: each is a trained CAPI whose features the default's can be set beside.
  const arms: RowSource[] = input.arms
    .filter((a) => a.name !== 'capi')
    .map((a) => ({ label: `CAPI arm ${a.factor}: ${a.variant}`, pick: (t: string) => armResults(input, a.name, t) }));
  const rows = [...rowSources(input), ...arms]
    .map((s) => [
      s.label,
      ...tasks.flatMap((t) => {
        const m = meanFeatureShares(s.pick(t));
        return [fmt(m?.image, m?.imageStd ?? 0, m?.n ?? 0), fmt(m?.position, m?.positionStd ?? 0, m?.n ?? 0)];
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

export function table2and3(input: StudyReportInput): Table[] {
  const out: Table[] = [];
  const groups: { name: string; title: string; task: string[]; keys: MetricKey[]; paper: string }[] = [
    {
      name: 'table2-classification',
      title: 'Table 2-style: classification with frozen features, top-1 (%)',
      task: ['fmnist', 'fmnist-canvas', 'imagenet'],
      keys: ['attentive.top1', 'linear(avg).top1', 'knn(avg).top1'],
      paper:
        'Linear and k-NN: on average-pooled patch tokens, except pixels: on the whole flattened normalised image (its attentive probe pools its patch tokens, pixel patch plus position). ' +
        'Paper (IN-1k val, attentive, ViT-L): CAPI 82.9, iBOT 80.9, MAE 79.4, Data2Vec 2.0 80.1, I-JEPA-H 79.5 (eval spec 7.1).',
    },
    {
      name: 'table3-segmentation',
      title: 'Table 3-style: segmentation with frozen patch features, mIoU (%)',
      task: ['fmnist-scenes', 'fmnist-canvas-dense', 'ade20k'],
      keys: ['seg.knn.mIoU', 'seg.knn-patch.mIoU', 'seg.knn-centered.mIoU', 'seg.logreg.mIoU', 'seg.knn.fgIoU', 'seg.logreg.fgIoU'],
      paper:
        'Paper (ADE20K k-NN / linear, ViT-L): CAPI IN-1k 29.2 / 34.4, iBOT 26.0 / 30.7, MAE 21.5 / 27.4, DINOv2-g 34.0 / 39.0 (eval spec 7.2).',
    },
  ];
  for (const g of groups) {
    const tasks = g.task.filter((t) => input.results.some((r) => r.task === t));
    if (!tasks.length) continue;
    const cols = tasks.flatMap((t) =>
      g.keys
        .filter((k) => input.results.some((r) => r.kind !== 'reference' && r.task === t && r.metrics[k] !== undefined))
        .map((k) => ({ t, k })),
    );
    const rows = rowSources(input)
      .map((s) => [s.label, ...cols.map((c) => aggregateCell(aggregate(s.pick(c.t), s.model ? rowMetric(s.model, c.k) : c.k)))])
      .filter((r) => r.slice(1).some((c) => c !== 'not run'));
    out.push({ name: g.name, title: g.title, header: ['model', ...cols.map((c) => `${c.t} ${METRICS[c.k].label}`)], rows, note: g.paper });
  }
  return out;
}

/** Whether the plan evaluates the teacher of some run of `arm` with the probe behind `m` ('not run' yet vs 'not in plan'). */
function planned(input: StudyReportInput, arm: string, m: Metric): boolean {
  const ids = armRunIds(input, arm);
  return input.evalSettings.some((e) => ids.has(e.run) && e.task === m.task && e.weights === 'teacher' && e.probes.includes(m.probe));
}

export function table1(input: StudyReportInput): Table | undefined {
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

export function diagnosticsTable(input: StudyReportInput): Table {
  const rows = capiRuns(input)
    .filter((r) => r.metrics.length)
    .map((r) => {
      const last = r.metrics.at(-1)!;
      const ips = r.metrics.map((m) => m.imagesPerSec ?? Number.NaN).sort((a, b) => a - b)[Math.floor(r.metrics.length / 2)];
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
        teacherAgeCell(r.metrics),
        lateMean(r.metrics, 'prototypeCosineToInit').toFixed(3),
        positionMICell(r.metrics),
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
      'teacher mean age (steps; share of the run)',
      'prototype cos to init',
      'position-cluster MI (nats: plug-in (with the positions shuffled; MM: Miller-Madow))',
      'teacher k-NN top-1 during the run (monitor: step value, ...)',
    ],
    rows,
    note:
      `Teacher mean age: the weight-averaged age of the students the final EMA teacher holds (src/pretrain/diagnostics.ts); ${paperTeacherAges()}. ` +
      "Position-cluster MI: the plug-in MI between a teacher token's position and its assigned cluster (biased upwards at these sparse counts), beside its value with the positions shuffled among the batch's tokens: its level where position and cluster are independent at the same cluster marginals. A plug-in well above that level is MI beyond chance (positional collapse); position-wise Sinkhorn-Knopp balances each position's clusters and sits below it. Runs made before the shuffled level was logged give Miller-Madow's correction (MM, floored at 0), which is far off at these counts.",
  };
}

export function table5(input: StudyReportInput): Table | undefined {
  const tasks = [...new Set(input.results.filter((r) => r.metrics['linear(pred-pool).top1'] !== undefined).map((r) => r.task))];
  if (!tasks.length) return undefined;
  const rows: string[][] = [];
  let students = false;
  for (const t of tasks) {
    // The teacher (the paper's evaluated encoder) and the student, whose encoder the predictor was trained on.
    for (const [who, results] of [
      ['', armResults(input, 'capi', t)],
      [' (student)', armStudentResults(input, 'capi', t)],
    ] as [string, EvalResult[]][]) {
      if (!results.some((r) => r.metrics['linear(pred-pool).top1'] !== undefined)) continue;
      students ||= who !== '';
      for (const [pooling, linear, knn] of [
        ['average', 'linear(avg).top1', 'knn(avg).top1'],
        ['predictor', 'linear(pred-pool).top1', 'knn(pred-pool).top1'],
      ] as [string, MetricKey, MetricKey][])
        rows.push([`${t}${who}: ${pooling} pooling`, aggregateCell(aggregate(results, linear)), aggregateCell(aggregate(results, knn))]);
    }
  }
  rows.push(['paper IN-1k: average pooling', '77.1', '57.1'], ['paper IN-1k: predictor pooling', '81.1', '73.8']);
  return {
    name: 'table5-pooling',
    title: `Table 5-style: predictor pooling vs average pooling (CAPI teacher${students ? '; "(student)": the final student' : ''}), top-1 (%)`,
    header: ['representation', 'linear', 'k-NN'],
    rows,
  };
}

export function claimsTable(claims: Claim[]): Table {
  return {
    name: 'claims',
    title: 'Claims',
    header: ['claim', 'paper', 'ours: A', 'ours: B', 'gap A - B ± combined SE', 'verdict'],
    rows: claims.map((c) => [c.claim, c.paper, aggregateCell(c.a), aggregateCell(c.b), fmtGap(c), c.verdict]),
  };
}
