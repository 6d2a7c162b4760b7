/** The evaluations along the learning curve as a picture's data: each series at each point, the levels beside them. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it, vi } from 'vitest';
import type { EvalResult } from '../../src/eval/result.js';
import { renderPng } from '../../src/report/curves.js';
import { evalCurves, saveEvalCurvesPng } from '../../src/report/eval-curves.js';
import type { StudyReportInput } from '../../src/report/study-input.js';
import { defaultArmInput, evalResult } from './helpers.js';

const row = (model: string, kind: EvalResult['kind'], avg: number, predPool: number, se: number): EvalResult =>
  evalResult({
    task: 'fmnist',
    model,
    kind,
    metrics: { 'linear(avg).top1': avg, 'linear(pred-pool).top1': predPool },
    quality: {
      'linear(avg).top1': { se, atGridEdge: false, converged: true },
      'linear(pred-pool).top1': { se, atGridEdge: false, converged: true },
    },
  });

const run = (seed: number): StudyReportInput['runs'][number] => ({
  id: `c-capi-s${seed}`,
  family: 'c',
  arm: 'capi',
  seed,
  config: { train: { epochs: 30 } },
  metrics: [],
});
const runs = [run(0), run(1)];
const results = [
  row('c-capi-s0@3ep', 'capi', 50, 48, 0.5),
  row('c-capi-s0@3ep-student', 'capi', 49, 47, 0.5),
  row('c-capi-s0', 'capi', 60, 61, 0.5),
  row('c-capi-s1', 'capi', 62, 63, 0.5),
  // The pixels row's linear cell is its flattened image, kept in the pred-pool slot.
  row('pixels', 'baseline', 30, 55, 0.5),
  row('floor: majority class', 'reference', 10, 10, 0.3),
];
const input = defaultArmInput(runs, results);

describe('evaluations along the learning curve', () => {
  it('each series at each evaluated point and at the end (mean over seeds ± SE), the levels beside them', () => {
    const curves = evalCurves(input)!;
    const at = (series: string) => curves.points.filter((p) => p.series === series).map((p) => [p.epochs, p.mean]);
    expect(at('CAPI teacher')).toEqual([
      [3, 50],
      [30, 61],
    ]);
    expect(at('CAPI student')).toEqual([[3, 49]]);
    expect(at('CAPI teacher, predictor pooling')).toEqual([
      [3, 48],
      [30, 62],
    ]);
    // Two seeds at the end: SE = sqrt(std^2 / 2 + 0.5^2) with std = sqrt(2) (60 and 62).
    const end = curves.points.find((p) => p.series === 'CAPI teacher' && p.epochs === 30)!;
    expect(end.hi - end.mean).toBeCloseTo(Math.sqrt(2 / 2 + 0.25), 12);
    expect(end.mean - end.lo).toBeCloseTo(end.hi - end.mean, 12);
    expect(curves.levels).toEqual([
      { panel: 'fmnist linear', series: 'baseline: pixels', mean: 55 },
      { panel: 'fmnist linear', series: 'floor: majority class', mean: 10 },
    ]);
  });

  it('no picture without learning-curve points; the picture is written whole', async () => {
    expect(evalCurves({ ...input, results: results.filter((r) => !r.model.includes('@')) })).toBeUndefined();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capi-eval-curves-'));
    const file = path.join(dir, 'evaluations.png');
    // Vega-Lite's note that its optimiser stopped after 5 passes is left out of the log; its other warnings are not.
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    await saveEvalCurvesPng(file, evalCurves(input)!);
    expect(warn).not.toHaveBeenCalled();
    await renderPng(path.join(dir, 'bad.png'), {
      data: { values: [{ x: 1 }] },
      mark: 'point',
      encoding: { x: { field: 'x', type: 'quantitative', scale: { type: 'band' } } },
    });
    expect(warn.mock.calls.map((c) => c.join(' '))).toEqual([expect.stringMatching(/^WARN .*"band" scale/)]);
    warn.mockRestore();
    fs.rmSync(path.join(dir, 'bad.png'));
    const meta = await sharp(file).metadata();
    expect(meta.format).toBe('png');
    expect(meta.width).toBeGreaterThan(200);
    expect(fs.readdirSync(dir)).toEqual(['evaluations.png']);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
