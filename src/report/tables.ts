/**
 * `npm run tables`: every result of a results folder in the paper's layout, rows = models,
 * columns = datasets x metrics (labels from src/eval/metrics.ts): Table 2 (classification,
 * attentive probe top-1), Table 3 (segmentation mIoU, k-NN and logistic regression), Table 5
 * (predictor pooling vs average pooling, linear and k-NN). Each cell is one result, formatted as
 * the study's are (statistics.ts aggregateCell: its test-set SE and flags).
 */
import type { MetricKey } from '../eval/metrics.js';
import { METRICS } from '../eval/metrics.js';
import type { EvalResult } from './results.js';
import { aggregate, aggregateCell } from './statistics.js';
import type { Table } from './table.js';

const TABLES: { name: string; title: string; metrics: MetricKey[] }[] = [
  { name: 'table2-classification', title: 'Classification, attentive probe on patch tokens, top-1 (%)', metrics: ['attentive.top1'] },
  {
    name: 'table3-segmentation',
    title: 'Segmentation with frozen patch features, mIoU (%)',
    metrics: ['seg.knn.mIoU', 'seg.logreg.mIoU', 'seg.knn.fgIoU', 'seg.logreg.fgIoU'],
  },
  {
    name: 'table5-pooling',
    title: 'Global representations: predictor pooling vs average pooling, top-1 (%)',
    metrics: ['linear(pred-pool).top1', 'linear(avg).top1', 'knn(pred-pool).top1', 'knn(avg).top1'],
  },
];

const KIND_ORDER = { capi: 0, baseline: 1, reference: 2 };

export function buildTables(results: EvalResult[]): Table[] {
  const tables: Table[] = [];
  for (const t of TABLES) {
    // Columns are the metrics some model has: a floor or ceiling row holds every metric of its task.
    const measured = results.filter((r) => r.kind !== 'reference');
    const tasks = [...new Set(measured.filter((r) => t.metrics.some((m) => m in r.metrics)).map((r) => r.task))].sort();
    if (!tasks.length) continue;
    const cols = tasks.flatMap((task) =>
      t.metrics.filter((m) => measured.some((r) => r.task === task && m in r.metrics)).map((m) => ({ task, m })),
    );
    const kindOf = (model: string) => results.find((r) => r.model === model)!.kind;
    const models = [...new Set(results.filter((r) => tasks.includes(r.task)).map((r) => r.model))].sort((a, b) =>
      kindOf(a) === kindOf(b) ? a.localeCompare(b) : KIND_ORDER[kindOf(a)] - KIND_ORDER[kindOf(b)],
    );
    const rows = models.map((model) => [
      model,
      ...cols.map(({ task, m }) =>
        aggregateCell(
          aggregate(
            results.filter((x) => x.task === task && x.model === model),
            m,
          ),
        ),
      ),
    ]);
    const header = ['model', ...cols.map((c) => `${c.task} ${METRICS[c.m].label}`)];
    const note = `Columns: ${t.metrics.map((m) => `${METRICS[m].label}: ${METRICS[m].description}`).join('; ')}.`;
    tables.push({ name: t.name, title: t.title, header, rows, note });
  }
  return tables;
}
