/** Tables show each number with its standard error and the selection flags; the CSV keeps the values. */
import { describe, expect, it } from 'vitest';
import type { EvalResult } from '../../src/eval/result.js';
import { buildTables, LEGEND, tableCsv, tableMarkdown } from '../../src/report/tables.js';
import { evalResult } from './helpers.js';

const result = (model: string, quality: EvalResult['quality']): EvalResult =>
  evalResult({ task: 'fmnist', model, kind: 'capi', metrics: { 'attentive.top1': 57.04 }, quality });

describe('tables', () => {
  it('value ± SE, † at a grid edge, * not converged; results without quality print the value alone', () => {
    const [t2] = buildTables([
      result('a', { 'attentive.top1': { se: 1.107, atGridEdge: true, converged: false } }),
      result('b', { 'attentive.top1': { se: 0.5, atGridEdge: false, converged: true } }),
      result('c', undefined),
    ]);
    expect(t2.rows).toEqual([
      ['a', '57.0 ±1.1 †*'],
      ['b', '57.0 ±0.5'],
      ['c', '57.0'],
    ]);
    expect(tableMarkdown(t2)).toContain(LEGEND);
    expect(tableCsv(t2).trim().split('\n')).toEqual(['model,fmnist attentive', 'a,57.0', 'b,57.0', 'c,57.0']);
  });
});
