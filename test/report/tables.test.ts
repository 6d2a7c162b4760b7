/** Tables show each number with its standard error and the selection flags, in the study's cell format; the CSV keeps the same cells. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { describe, expect, it } from 'vitest';
import type { EvalResult } from '../../src/eval/result.js';
import { LEGEND, writeTable } from '../../src/report/table.js';
import { buildTables } from '../../src/report/tables.js';
import { evalResult } from './helpers.js';

const result = (model: string, quality: EvalResult['quality']): EvalResult =>
  evalResult({ task: 'fmnist', model, kind: 'capi', metrics: { 'attentive.top1': 57.04 }, quality });

describe('tables', () => {
  it('value [SE], † at a grid edge, * not converged; results without quality print the value alone', () => {
    const [t2] = buildTables([
      result('a', { 'attentive.top1': { se: 1.107, atGridEdge: true, converged: false } }),
      result('b', { 'attentive.top1': { se: 0.5, atGridEdge: false, converged: true } }),
      result('c', undefined),
    ]);
    expect(t2.header).toEqual(['model', 'fmnist attentive']);
    expect(t2.rows).toEqual([
      ['a', '57.0 [SE 1.1] † *'],
      ['b', '57.0 [SE 0.5]'],
      ['c', '57.0'],
    ]);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capi-tables-'));
    try {
      writeTable(dir, t2);
      expect(fs.readFileSync(path.join(dir, `${t2.name}.md`), 'utf8')).toContain(LEGEND);
      expect(fs.readFileSync(path.join(dir, `${t2.name}.csv`), 'utf8')).toBe(stringify([t2.header, ...t2.rows]));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
