/** Claims along a learning curve: each point's rows stand for the run, its metrics end at the point's step. */
import { describe, expect, it } from 'vitest';
import type { EvalResult } from '../../src/eval/result.js';
import { buildClaims, discussion } from '../../src/report/claims.js';
import { atPoint, claimsAlongCurve, curveClaimsTable, curveDiscussion } from '../../src/report/curve-claims.js';
import type { StudyReportInput } from '../../src/report/study-input.js';
import { curvePoints } from '../../src/report/study-input.js';
import { defaultArmInput, evalResult } from './helpers.js';

const row = (model: string, top1: number, checkpointStep?: number): EvalResult => {
  const r = evalResult({
    task: 'fmnist',
    model,
    kind: model === 'pixels' ? 'baseline' : 'capi',
    metrics: { 'linear(avg).top1': top1, 'linear(pred-pool).top1': top1 },
    quality: {
      'linear(avg).top1': { se: 0.5, atGridEdge: false, converged: true },
      'linear(pred-pool).top1': { se: 0.5, atGridEdge: false, converged: true },
    },
  });
  return { ...r, config: { ...r.config, ...(checkpointStep === undefined ? {} : { checkpointStep }) } };
};

const runs: StudyReportInput['runs'] = [
  {
    id: 'c-s0',
    family: 'c',
    arm: 'capi',
    seed: 0,
    config: { train: { epochs: 30 } },
    metrics: Array.from({ length: 30 }, (_, step) => ({ step, momentum: 0.9 })),
  },
];
const results = [row('c-s0@3ep', 50, 3), row('c-s0@10ep', 58, 10), row('c-s0', 60), row('pixels', 55)];
const input = defaultArmInput(runs, results);

describe('claims along the learning curve', () => {
  it("at a point, the run's rows there stand for it and its metrics end at that step; baselines stay", () => {
    expect(curvePoints(input)).toEqual([3, 10]);
    const at3 = atPoint(input, 3);
    expect(at3.results.map((r) => [r.model, r.metrics['linear(avg).top1']])).toEqual([
      ['c-s0', 50],
      ['pixels', 55],
    ]);
    expect(at3.runs[0].metrics.length).toBe(3);
    const claim = buildClaims(at3).find((c) => c.claim === 'CAPI > pixels (fmnist linear)')!;
    expect(claim.gap).toBeCloseTo(-5, 12);
  });

  it('the table gives each claim at 3 and 10 epochs and at the end, with the verdicts', () => {
    const t = curveClaimsTable(input, buildClaims(input))!;
    expect(t.header).toEqual(['claim', '3 epochs', '10 epochs', 'end (30 epochs)']);
    // Gaps -5, +3, +5 with a combined SE of sqrt(0.5^2 + 0.5^2) = 0.71 (2 SE = 1.41).
    expect(t.rows.find((r) => r[0] === 'CAPI > pixels (fmnist linear)')).toEqual([
      'CAPI > pixels (fmnist linear)',
      '-5.0 ± 0.7 (reversed)',
      '+3.0 ± 0.7 (holds)',
      '+5.0 ± 0.7 (holds)',
    ]);
    expect(curveClaimsTable({ ...input, results: input.results.filter((r) => !r.model.includes('@')) }, [])).toBeUndefined();
  });

  it('the discussion names each claim that does not hold at a point before the end, with its gap there', () => {
    const text = curveDiscussion(claimsAlongCurve(input));
    // CAPI > pixels: reversed at 3 epochs only (gap -5 beyond 2 SE = 1.41), it holds at 10; predictor
    // pooling ties average pooling at both points (gap 0: not resolved, which is not a hold).
    expect(text.split('\n')).toEqual([
      '- Along the learning curve, **CAPI > pixels (fmnist linear)**: reversed at 3 epochs (-5.0 ± 0.7).',
      '- Along the learning curve, **predictor pooling > average pooling (fmnist linear)**: not resolved at 3 epochs (+0.0 ± 0.7), not resolved at 10 epochs (+0.0 ± 0.7).',
      '',
    ]);
    // A row's selection flags at a point come with its gap there (here predictor pooling's lr at 10 epochs).
    const edged = input.results.map((r) =>
      r.model === 'c-s0@10ep'
        ? { ...r, quality: { ...r.quality, 'linear(pred-pool).top1': { se: 0.5, atGridEdge: true, converged: true } } }
        : r,
    );
    expect(curveDiscussion(claimsAlongCurve({ ...input, results: edged }))).toContain(
      "not resolved at 3 epochs (+0.0 ± 0.7), not resolved at 10 epochs (+0.0 ± 0.7; A's selection sits at the edge of its grid).",
    );
    expect(curveDiscussion(undefined)).toBe('');
    // With no end rows yet, the end's discussion says so rather than that every claim holds.
    expect(discussion([], 'at the end')).toMatch(/^No claim could be tested at the end yet/);
  });
});
