import type { EvalResult } from '../../src/eval/result.js';
import type { PlanEvaluation, StudyReportInput } from '../../src/report/study-input.js';
import { evalRowName } from '../../src/study/plans.js';

/** An evaluation result with the given fields and empty bookkeeping. */
export const evalResult = (r: Pick<EvalResult, 'task' | 'model' | 'kind' | 'metrics'> & Partial<EvalResult>): EvalResult => ({
  source: '',
  notes: {},
  details: {},
  config: {},
  seed: 0,
  backend: {},
  seconds: {},
  command: '',
  createdAt: '',
  ...r,
});

/**
 * The plan evaluations behind a fixture's results: every row a run's evaluation would write
 * (src/study/plans.ts evalRowName: its end or a learning-curve point, teacher or student) that has
 * a result. What the study's report input carries, for fixtures that give only runs and results.
 */
export function planEvaluationsOf(runs: { id: string }[], results: EvalResult[]): PlanEvaluation[] {
  const points = [undefined, 3, 10, 30];
  return runs.flatMap(({ id }) =>
    [...new Set(results.map((r) => r.task))].flatMap((task) =>
      points.flatMap((atEpochs) =>
        (['teacher', 'student'] as const)
          .map((weights) => ({
            run: id,
            row: evalRowName({ run: id, atEpochs, weights }),
            task,
            probes: [],
            weights,
            atEpochs,
            config: {},
          }))
          .filter((e) => results.some((r) => r.task === e.task && r.model === e.row)),
      ),
    ),
  );
}

/** A report input with the default arm only, no commits, and the plan evaluations of its results. */
export const defaultArmInput = (runs: StudyReportInput['runs'], results: EvalResult[]): StudyReportInput => ({
  plan: { name: 't', summary: '', estimate: '' },
  arms: [{ name: 'capi', factor: 'default', variant: '', paper: { ade: 29.1, in1k: 81.4 } }],
  runs,
  results,
  commits: [],
  started: '',
  evalSettings: planEvaluationsOf(runs, results),
});
