/**
 * How far a study is, and about how long its rest takes on this study's own measured speeds: the
 * training steps left at the median seconds a step of its runs so far, the evaluations left at the
 * mean time of its finished ones with the same task and probes (evalBasis). A study of many hours runs over
 * several sessions; this is the ETA of the whole (each run and evaluation has its own bar).
 */
import { trainingSeconds } from './statistics.js';
import { BASELINE_MODELS, type PlanEvaluation, type StudyReportInput, type StudyRunInput } from './study-input.js';

export interface TimeLeft {
  hours: number;
  /** Training steps left, over `runs` runs. */
  steps: number;
  runs: number;
  secondsPerStep: number;
  evals: number;
  /** Runs, evaluations or tasks' baselines left with nothing measured to go by (not in `hours`). */
  unknown: number;
}

export interface StudyProgress {
  finishedRuns: number;
  pendingEvals: PlanEvaluation[];
  /** The tasks whose baseline rows are still to come (written by one of the plan's evaluations). */
  pendingBaselines: string[];
  complete: boolean;
  /** Absent when the study is complete, or nothing of it is measured yet. */
  left?: TimeLeft;
}

const totalSteps = (r: StudyRunInput): number | undefined => r.config?.totalSteps as number | undefined;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const mean = (xs: number[]): number => xs.reduce((a, x) => a + x, 0) / xs.length;

/** The training steps a run has left; a run not started yet has its family's (every arm has the same budget: plans.ts). */
function stepsLeft(run: StudyRunInput, runs: StudyRunInput[]): number | undefined {
  const family = runs.filter((r) => r.family === run.family).map(totalSteps);
  const total = totalSteps(run) ?? Math.max(...family.filter((s): s is number => s !== undefined));
  return Number.isFinite(total) ? Math.max(0, total - run.metrics.length) : undefined;
}

/**
 * The finished evaluations a pending one is timed by: those of its task with the same probes, or
 * else with the fewest probes more than its own (an upper bound), or else any of its task.
 */
function evalBasis(e: PlanEvaluation, done: { e: PlanEvaluation; seconds: number }[]): { seconds: number }[] {
  const sameTask = done.filter((d) => d.e.task === e.task);
  const covering = sameTask.filter((d) => e.probes.every((p) => d.e.probes.includes(p)));
  const fewest = Math.min(...covering.map((d) => d.e.probes.length));
  const closest = covering.filter((d) => d.e.probes.length === fewest);
  return closest.length ? closest : sameTask;
}

export function studyProgress(input: StudyReportInput): StudyProgress {
  const finished = (r: StudyRunInput) => r.metrics.length > 0 && r.metrics.length >= (totalSteps(r) ?? Number.POSITIVE_INFINITY);
  const resultOf = (e: PlanEvaluation) => input.results.find((r) => r.task === e.task && r.model === e.row);
  const pendingEvals = input.evalSettings.filter((e) => !resultOf(e));
  const finishedRuns = input.runs.filter(finished).length;
  const hasBaselines = (task: string) => BASELINE_MODELS.every((m) => input.results.some((r) => r.task === task && r.model === m));
  const pendingBaselines = [...new Set(input.evalSettings.filter((e) => e.baselines).map((e) => e.task))].filter((t) => !hasBaselines(t));
  const complete = finishedRuns === input.runs.length && pendingEvals.length === 0 && pendingBaselines.length === 0;
  const counts = { finishedRuns, pendingEvals, pendingBaselines, complete };
  if (complete) return counts;

  const measured = input.runs.filter((r) => r.metrics.length > 0).map((r) => trainingSeconds(r.metrics) / r.metrics.length);
  const secondsPerStep = measured.length ? median(measured) : undefined;
  // A task's baselines are evaluated once, so a study has no time of its own for them before they exist.
  let unknown = pendingBaselines.length;
  let steps = 0;
  let runs = 0;
  for (const r of input.runs.filter((x) => !finished(x))) {
    const s = stepsLeft(r, input.runs);
    if (s === undefined || secondsPerStep === undefined) unknown++;
    else {
      steps += s;
      runs++;
    }
  }
  const done = input.evalSettings.flatMap((e) => {
    const seconds = resultOf(e)?.seconds?.total;
    return seconds === undefined ? [] : [{ e, seconds }];
  });
  let evalSeconds = 0;
  let evals = 0;
  for (const e of pendingEvals) {
    const basis = evalBasis(e, done);
    if (!basis.length) unknown++;
    else {
      evalSeconds += mean(basis.map((d) => d.seconds));
      evals++;
    }
  }
  if (secondsPerStep === undefined && !done.length) return counts;
  const hours = (steps * (secondsPerStep ?? 0) + evalSeconds) / 3600;
  return { ...counts, left: { hours, steps, runs, secondsPerStep: secondsPerStep ?? 0, evals, unknown } };
}

/** A duration in hours as a reader wants it: minutes under an hour. */
const duration = (hours: number): string => (hours >= 1 ? `${hours.toFixed(1)} h` : `${Math.ceil(hours * 60)} min`);

const plural = (n: number, word: string): string => `${n.toLocaleString('en-US')} ${word}${n === 1 ? '' : 's'}`;

/** The time left in a few words (the study's log line after each run). */
export const timeLeftBrief = (left: TimeLeft): string =>
  `${left.unknown ? 'at least' : 'about'} ${duration(left.hours)} left on this study's own speeds`;

/** The report's sentence for the time left, with how it is estimated. */
export function timeLeftText(left: TimeLeft): string {
  const unknown = left.unknown ? `; ${left.unknown} more (runs, evaluations or a task's baselines) with nothing measured to go by` : '';
  return (
    `${timeLeftBrief(left)} (${plural(left.steps, 'training step')} of ${plural(left.runs, 'run')} at ${left.secondsPerStep.toFixed(2)} s a step, ` +
    `its runs' median; ${plural(left.evals, 'evaluation')} at the mean time of its finished ones with the same task and probes, ` +
    `or else with the fewest probes more${unknown})`
  );
}
