/**
 * Comparison tables in the paper's layout, rows = models, columns = datasets x probes:
 * Table 2 (classification, attentive probe top-1), Table 3 (segmentation mIoU, k-NN and
 * logistic regression), Table 5 (predictor pooling vs average pooling, linear and k-NN).
 */
import { stringify } from 'csv-stringify/sync';
import type { MetricKey, MetricQuality } from '../eval/metrics.js';
import type { EvalResult } from './results.js';
import { fmt, markdownTable } from './results.js';

export interface Table {
  name: string;
  title: string;
  header: string[];
  rows: (string | number)[][];
}

const TABLES: { name: string; title: string; columns: [MetricKey, string][] }[] = [
  {
    name: 'table2-classification',
    title: 'Classification, attentive probe on patch tokens, top-1 (%)',
    columns: [['attentive.top1', 'attentive']],
  },
  {
    name: 'table3-segmentation',
    title: 'Segmentation with frozen patch features, mIoU (%)',
    columns: [
      ['seg.knn.mIoU', 'k-NN'],
      ['seg.logreg.mIoU', 'linear'],
      ['seg.knn.fgIoU', 'k-NN fg'],
      ['seg.logreg.fgIoU', 'linear fg'],
    ],
  },
  {
    name: 'table5-pooling',
    title: 'Global representations: predictor pooling vs average pooling, top-1 (%)',
    columns: [
      ['linear(pred-pool).top1', 'pred-pool linear'],
      ['linear(avg).top1', 'avg linear'],
      ['knn(pred-pool).top1', 'pred-pool k-NN'],
      ['knn(avg).top1', 'avg k-NN'],
    ],
  },
];

export function buildTables(results: EvalResult[]): Table[] {
  const tables: Table[] = [];
  for (const t of TABLES) {
    const tasks = [...new Set(results.filter((r) => t.columns.some(([m]) => m in r.metrics)).map((r) => r.task))].sort();
    if (!tasks.length) continue;
    const cols = tasks.flatMap((task) =>
      t.columns.filter(([m]) => results.some((r) => r.task === task && m in r.metrics)).map(([m, label]) => ({ task, m, label })),
    );
    const models = [...new Set(results.filter((r) => tasks.includes(r.task)).map((r) => r.model))];
    models.sort((a, b) => {
      const ka = results.find((r) => r.model === a)!.kind,
        kb = results.find((r) => r.model === b)!.kind;
      const rank = { capi: 0, baseline: 1, reference: 2 };
      return ka === kb ? a.localeCompare(b) : rank[ka] - rank[kb];
    });
    const rows = models.map((model) => [
      model,
      ...cols.map(({ task, m }) => {
        const r = results.find((x) => x.task === task && x.model === model);
        return cell(r?.metrics[m], r?.quality?.[m]);
      }),
    ]);
    tables.push({ name: t.name, title: t.title, header: ['model', ...cols.map((c) => `${c.task} ${c.label}`)], rows });
  }
  return tables;
}

/** A value with its standard error and flags: `57.0 ±1.1 †*` (see LEGEND). */
function cell(v: number | undefined, q: MetricQuality | undefined): string {
  if (v === undefined) return fmt(v);
  const se = q?.se !== undefined && Number.isFinite(q.se) ? ` ±${q.se.toFixed(1)}` : '';
  const flags = `${q?.atGridEdge ? '†' : ''}${q?.converged === false ? '*' : ''}`;
  return `${fmt(v)}${se}${flags ? ` ${flags}` : ''}`;
}

export const LEGEND =
  '± one test-set standard error (binomial for accuracies; for mIoU, bootstrap over test images); † the selected hyper-parameter (lr for probes) is at the edge of its grid; ' +
  '* not converged: the selected probe’s held-out accuracy changes by more than 0.3 points and one binomial SE of the held-out set when its schedule is halved. ' +
  'Results of the earliest versions (no quality record) carry no standard errors or flags.';

export function tableMarkdown(t: Table): string {
  return `## ${t.title}\n\n${markdownTable(t.header, t.rows)}\n${LEGEND}\n`;
}

/** The values alone (standard errors and flags are in each result's JSON). */
export function tableCsv(t: Table): string {
  return stringify([t.header, ...t.rows.map((r) => r.map((c, i) => (i === 0 ? c : String(c).split(' ')[0])))]);
}
