import { describe, expect, it } from 'vitest';
import type { MetricsLine } from '../../src/pretrain/run-folder.js';
import { studyProgress, timeLeftText } from '../../src/report/progress.js';
import type { PlanEvaluation, StudyReportInput } from '../../src/report/study-input.js';
import { evalResult } from './helpers.js';

/** `steps` metrics lines a step of `seconds` apart (elapsedSec as the training loop writes it). */
const steady = (steps: number, seconds: number): MetricsLine[] =>
  Array.from({ length: steps }, (_, i) => ({ step: i + 1, elapsedSec: (i + 1) * seconds }));

const run = (id: string, metrics: MetricsLine[], totalSteps?: number) => ({
  id,
  family: 'f',
  arm: 'capi',
  seed: 0,
  config: totalSteps === undefined ? undefined : { totalSteps },
  metrics,
});

const evaluation = (run: string, task: string, probes: string[]): PlanEvaluation => ({
  run,
  row: `${run}:${task}:${probes.join(',')}`,
  task,
  probes,
  weights: 'teacher',
  config: {},
});

const input = (runs: StudyReportInput['runs'], done: [PlanEvaluation, number][], pending: PlanEvaluation[]): StudyReportInput => ({
  plan: { name: 't', summary: '', estimate: '' },
  arms: [],
  runs,
  results: done.map(([e, total]) => evalResult({ task: e.task, model: e.row, kind: 'capi', metrics: {}, seconds: { total } })),
  commits: [],
  started: '',
  evalSettings: [...done.map(([e]) => e), ...pending],
});

describe('studyProgress: the time a study has left on its own speeds', () => {
  it('equals a hand count: steps left at the runs’ median s/step, evaluations at their closest finished ones', () => {
    // A finished at 2 s a step, B at step 4 of 10 at 3 s a step, C not started (its family's 10 steps).
    const runs = [run('A', steady(10, 2), 10), run('B', steady(4, 3), 10), run('C', [])];
    const done: [PlanEvaluation, number][] = [
      [evaluation('A', 'cls', ['linear', 'knn', 'predictor-pooling']), 100],
      [evaluation('A', 'cls', ['linear', 'knn', 'predictor-pooling', 'attentive']), 1000],
      [evaluation('A', 'dense', ['knn']), 50],
    ];
    const pending = [
      evaluation('B', 'cls', ['linear', 'knn', 'predictor-pooling']), // the same probes: 100
      evaluation('C', 'cls', ['linear', 'knn']), // the fewest probes more: 100
      evaluation('C', 'cls', ['attentive', 'linear']), // only the attentive one covers it: 1000
      evaluation('C', 'dense', ['logreg']), // none covers it: its task's mean, 50
      evaluation('C', 'other', ['knn']), // nothing measured
    ];
    const p = studyProgress(input(runs, done, pending));
    expect(p.finishedRuns).toBe(1);
    expect(p.complete).toBe(false);
    expect(p.pendingEvals).toHaveLength(5);
    // Median of 2 and 3 s a step; 6 + 10 steps left.
    expect(p.left).toMatchObject({ steps: 16, runs: 2, secondsPerStep: 2.5, evals: 4, unknown: 1 });
    expect(p.left?.hours).toBeCloseTo((16 * 2.5 + 100 + 100 + 1000 + 50) / 3600, 10);
    expect(timeLeftText(p.left!)).toMatch(
      /^at least 22 min left .*16 training steps of 2 runs at 2\.50 s a step.*4 evaluations .*; 1 more .*with nothing measured/,
    );
  });

  it('has nothing left once every run finished and every evaluation has its result', () => {
    const e = evaluation('A', 'cls', ['knn']);
    const p = studyProgress(input([run('A', steady(10, 2), 10)], [[e, 100]], []));
    expect(p).toMatchObject({ finishedRuns: 1, complete: true, pendingEvals: [] });
    expect(p.left).toBeUndefined();
  });

  it('counts a task whose baselines are still to come, with nothing of its own to time them by', () => {
    const withBaselines = { ...evaluation('A', 'cls', ['knn']), baselines: true };
    const baselineRows = (task: string, models: string[]) =>
      models.map((model) => evalResult({ task, model, kind: 'baseline', metrics: {}, seconds: { total: 500 } }));
    const base = input([run('A', steady(10, 2), 10)], [[withBaselines, 100]], []);
    // Three of cls's four baseline rows exist: still to come, and the study is not complete.
    const partial = studyProgress({
      ...base,
      results: [...base.results, ...baselineRows('cls', ['random-init', 'pixels', 'pixel-patches'])],
    });
    expect(partial).toMatchObject({ complete: false, pendingBaselines: ['cls'], pendingEvals: [] });
    expect(partial.left).toMatchObject({ steps: 0, evals: 0, unknown: 1, hours: 0 });
    expect(timeLeftText(partial.left!)).toMatch(/^at least 0 min left .*1 more \(runs, evaluations or a task's baselines\)/);
    // All four: complete.
    const all = studyProgress({
      ...base,
      results: [...base.results, ...baselineRows('cls', ['init', 'random-init', 'pixels', 'pixel-patches'])],
    });
    expect(all).toMatchObject({ complete: true, pendingBaselines: [] });
  });

  it('gives no estimate before anything is measured', () => {
    const p = studyProgress(input([run('A', [], 10)], [], [evaluation('A', 'cls', ['knn'])]));
    expect(p.complete).toBe(false);
    expect(p.left).toBeUndefined();
  });
});
