/**
 * The one table model of every report (`npm run tables`, the study's tables and REPORT.md): a
 * table is rows of formatted cells (statistics.ts aggregateCell), written as Markdown with the one
 * legend and as CSV with the same cells.
 */
import * as path from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { writeFileAtomic } from '../runtime/atomic.js';

export interface Table {
  /** File name (without extension). */
  name: string;
  title: string;
  header: string[];
  rows: string[][];
  /** Printed under the table (the paper's figures, what a column means). */
  note?: string;
}

export function markdownTable(header: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`;
  return `${[line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n')}\n`;
}

/** A table as a Markdown section: heading, table, note. */
export const tableMarkdown = (t: Table) => `### ${t.title}\n\n${markdownTable(t.header, t.rows)}${t.note ? `\n${t.note}\n` : ''}`;

export const LEGEND =
  'Cells: mean ± std over seeds (n), [SE] the standard error of that mean: sqrt(std² / n + test-set SE²), where the test-set SE is binomial ' +
  'for accuracies and a bootstrap over test images for mIoU; ‡ a single-seed arm’s SE that adds the default arm’s seed std (sqrt(test-set SE² + std²): its one run is one draw of that spread); † a seed’s selected hyper-parameter (a probe’s lr, logistic regression’s C, k-NN’s k when the largest: k = 1 is k’s own bound) lies at the edge of its grid; * a seed’s selected probe ' +
  'had not converged (the chosen point trained again with half the steps, from the same initial parameters and batches, is further than 0.3 points and one held-out SE below it); ' +
  "for logistic regression: its refit's L-BFGS stopped before its gradient tolerance, its line search finding no decrease at float32 resolution (docs/evaluation.md sets such a fit beside scikit-learn's, converged in float64).";

/** Writes `<dir>/<name>.md` (the table and the legend) and `<dir>/<name>.csv` (the same cells). */
export function writeTable(dir: string, t: Table): void {
  writeFileAtomic(path.join(dir, `${t.name}.md`), `${tableMarkdown(t)}\n${LEGEND}\n`);
  writeFileAtomic(path.join(dir, `${t.name}.csv`), stringify([t.header, ...t.rows]));
}
