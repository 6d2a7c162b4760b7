/**
 * Training curves as a PNG: one panel per diagnostic (loss, clustering loss, target entropy,
 * clusters used, teacher init share, prototype drift, position-cluster MI, the monitor's k-NN where
 * a run has one), one line per run.
 * Drawn by Vega-Lite (headless SVG) and rasterised by sharp.
 */
import { isFiniteNumber, type MetricsKey, type MetricsLine } from '../pretrain/run-folder.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import * as vega from 'vega';
import * as vl from 'vega-lite';
import { makeDirs } from '../runtime/atomic.js';

export const CURVE_METRICS: [key: MetricsKey, title: string][] = [
  ['capiLoss', 'CAPI loss'],
  ['clusteringLoss', 'clustering loss'],
  ['targetEntropy', 'target entropy (nats)'],
  ['clustersUsed', 'clusters used'],
  ['teacherInitShare', 'log10 teacher init share'],
  ['prototypeCosineToInit', 'prototype cosine to init'],
  ['positionClusterMICorrected', 'position-cluster MI (nats, ≥ 0)'],
  ['monitorKnnTop1', 'teacher k-NN top-1 (monitor, %)'],
];

/** Points per run and panel: evenly spaced steps, at most this many, plus the last step. */
const MAX_POINTS = 200;

export interface CurveRun {
  run: string;
  metrics: MetricsLine[];
}

/**
 * A diagnostic as its panel shows it: the init share on a log scale; the corrected MI floored at 0
 * as the diagnostics table gives it (src/report/statistics.ts correctedMI: the correction
 * overshoots below 0 where the true MI is ~0, and an MI is never negative).
 */
function plotted(key: MetricsKey, v: number): number {
  if (key === 'teacherInitShare') return Math.log10(v);
  if (key === 'positionClusterMICorrected') return Math.max(0, v);
  return v;
}

/** Long-format rows {run, step, metric, value}, thinned to MAX_POINTS per run. */
export function curveRows(runs: CurveRun[]): { run: string; step: number; metric: string; value: number }[] {
  return runs.flatMap(({ run, metrics }) => {
    const stride = Math.max(1, Math.ceil(metrics.length / MAX_POINTS));
    // The monitor's sparse measurements are all kept.
    const kept = metrics.filter((m, i) => i % stride === 0 || i === metrics.length - 1 || isFiniteNumber(m.monitorKnnTop1));
    return kept.flatMap((m) =>
      CURVE_METRICS.flatMap(([k, title]) => {
        const v = m[k];
        if (!isFiniteNumber(v)) return [];
        return [{ run, step: m.step + 1, metric: title, value: plotted(k, v) }];
      }),
    );
  });
}

/** A Vega-Lite spec drawn headless to SVG and rasterised to `file` (temp file + rename). */
export async function renderPng(file: string, spec: vl.TopLevelSpec): Promise<void> {
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  makeDirs(path.dirname(file));
  const tmp = `${file}.tmp-${process.pid}`;
  await sharp(Buffer.from(svg)).png().toFile(tmp);
  fs.renameSync(tmp, file);
}

export async function saveCurvesPng(file: string, runs: CurveRun[]): Promise<void> {
  await renderPng(file, {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    data: { values: curveRows(runs) },
    facet: { field: 'metric', type: 'nominal', sort: CURVE_METRICS.map(([, t]) => t), title: null },
    columns: 4,
    spec: {
      width: 220,
      height: 140,
      mark: { type: 'line', strokeWidth: 1.2 },
      encoding: {
        x: { field: 'step', type: 'quantitative', title: 'step' },
        y: { field: 'value', type: 'quantitative', title: null, scale: { zero: false }, axis: { format: '~r' } },
        color: { field: 'run', type: 'nominal', legend: { labelLimit: 0 } },
      },
    },
    // An x axis under each panel: shared, wrapped facets draw one below every column, empty slots included.
    resolve: { scale: { y: 'independent' }, axis: { x: 'independent' } },
    background: 'white',
  });
}
