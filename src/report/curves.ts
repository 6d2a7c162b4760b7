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

/** A logged diagnostic as its panel shows it. */
const logged =
  (key: MetricsKey) =>
  (m: MetricsLine): number | undefined =>
    m[key];

/** Each panel: its title and a step's value (undefined where not logged). */
export const CURVE_METRICS: [title: string, value: (m: MetricsLine) => number | undefined][] = [
  ['CAPI loss', logged('capiLoss')],
  ['clustering loss', logged('clusteringLoss')],
  ['target entropy (nats)', logged('targetEntropy')],
  ['clusters used', logged('clustersUsed')],
  ['log10 teacher init share', (m) => (isFiniteNumber(m.teacherInitShare) ? Math.log10(m.teacherInitShare) : undefined)],
  ['prototype cosine to init', logged('prototypeCosineToInit')],
  ['position-cluster MI (plug-in, nats)', logged('positionClusterMI')],
  ['teacher k-NN top-1 (monitor, %)', logged('monitorKnnTop1')],
];

/** Points per run and panel: evenly spaced steps, at most this many, plus the last step. */
const MAX_POINTS = 200;

export interface CurveRun {
  run: string;
  metrics: MetricsLine[];
}

/** Long-format rows {run, step, metric, value}, thinned to MAX_POINTS per run. */
export function curveRows(runs: CurveRun[]): { run: string; step: number; metric: string; value: number }[] {
  return runs.flatMap(({ run, metrics }) => {
    const stride = Math.max(1, Math.ceil(metrics.length / MAX_POINTS));
    // The monitor's sparse measurements are all kept.
    const kept = metrics.filter((m, i) => i % stride === 0 || i === metrics.length - 1 || isFiniteNumber(m.monitorKnnTop1));
    return kept.flatMap((m) =>
      CURVE_METRICS.flatMap(([title, value]) => {
        const v = value(m);
        return isFiniteNumber(v) ? [{ run, step: m.step + 1, metric: title, value: v }] : [];
      }),
    );
  });
}

/**
 * Vega-Lite's warnings, less its note that its dataflow optimiser stopped after its 5 passes: a
 * limit inside the compiler that multi-panel specs reach, harmless to the picture and nothing a
 * reader of the log can act on.
 */
const warnings = vega.logger(vega.Warn);
const compileLogger: vega.LoggerInterface = {
  ...warnings,
  warn(...args: readonly unknown[]) {
    if (!String(args[0]).startsWith('Maximum optimization runs')) warnings.warn(...args);
    return this;
  },
};

/** A Vega-Lite spec drawn headless to SVG and rasterised to `file` (temp file + rename). */
export async function renderPng(file: string, spec: vl.TopLevelSpec): Promise<void> {
  const view = new vega.View(vega.parse(vl.compile(spec, { logger: compileLogger }).spec), { renderer: 'none' });
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
    facet: { field: 'metric', type: 'nominal', sort: CURVE_METRICS.map(([t]) => t), title: null },
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
