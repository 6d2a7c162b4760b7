/**
 * A study's report: results/REPORT.md with the paper's Tables 1, 2, 3 and 5 beside ours (mean ±
 * std over seeds, n, and a standard error), each dense task's floor and ceiling, the training
 * diagnostics per run, a claims table and a discussion of every claim that does not hold; the
 * tables also as CSV + Markdown under tables/, the training curves as PNG under curves/. Built in
 * steps: statistics (statistics.ts) -> claims (claims.ts) -> tables (study-tables.ts) -> this
 * file, which renders them.
 */
import { isFiniteNumber } from '../pretrain/run-folder.js';
import * as path from 'node:path';
import { TASKS, type TaskName } from '../eval/tasks.js';
import { REFINE_KEEP } from '../probes/grid.js';
import { writeFileAtomic, makeDirs } from '../runtime/atomic.js';
import { saveCurvesPng } from './curves.js';
import { evalCurves, saveEvalCurvesPng } from './eval-curves.js';
import { LEGEND, markdownTable, type Table, tableMarkdown, writeTable } from './table.js';
import { buildClaims, discussion, verdictCounts } from './claims.js';
import { claimsAlongCurve, curveClaimsTable, curveDiscussion } from './curve-claims.js';
import { gridEdgeNotes } from './grid-notes.js';
import { studyProgress, timeLeftText } from './progress.js';
import { lateMean, trainingSeconds } from './statistics.js';
import { capiRuns, type StudyReportInput } from './study-input.js';
import { claimsTable, diagnosticsTable, featureSharesTable, table1, table2and3, table5 } from './study-tables.js';

/** How the supervised ceiling was trained, from its metrics. */
function supervisedLine(input: StudyReportInput): string {
  const runs = input.runs.filter((r) => r.arm === 'supervised' && r.metrics.length);
  if (!runs.length) return '';
  const parts = runs.map(
    (r) =>
      `${r.id}: ${r.metrics.length} steps, training-batch top-1 over the last 10% ${(100 * lateMean(r.metrics, 'batchAccuracy')).toFixed(1)}%`,
  );
  return `The supervised ceiling is the same encoder trained with labels (cross-entropy of a linear head on average-pooled patch tokens) for as many steps and images as a CAPI run, then evaluated frozen like the others: ${parts.join('; ')}.\n`;
}

/**
 * Which machines made the runs and results (their wall times differ by machine: a study spread
 * over sessions may meet several), with each run's median images/s, the figure to compare.
 */
export function machinesLine(input: StudyReportInput): string {
  const by = new Map<string, { runs: string[]; results: number }>();
  const entry = (m: unknown) => {
    const key = typeof m === 'string' ? m : 'not recorded';
    if (!by.has(key)) by.set(key, { runs: [], results: 0 });
    return by.get(key)!;
  };
  for (const r of input.runs.filter((x) => x.config && x.metrics.length)) {
    const ips = r.metrics
      .map((m) => m.imagesPerSec)
      .filter(isFiniteNumber)
      .sort((a, b) => a - b);
    const median = ips.length ? ` at ${ips[Math.floor(ips.length / 2)].toFixed(0)} img/s` : '';
    entry((r.config!.backend as { machine?: string } | undefined)?.machine).runs.push(`${r.id}${median}`);
  }
  for (const r of input.results.filter((x) => x.kind !== 'reference'))
    entry((r.backend as { machine?: string } | undefined)?.machine).results++;
  const parts = [...by.entries()].map(
    ([m, v]) =>
      `${m} (${[v.runs.length ? `runs ${v.runs.join(', ')}` : '', v.results ? `${v.results} result${v.results === 1 ? '' : 's'}` : ''].filter(Boolean).join('; ')})`,
  );
  return parts.length ? `- Machines: ${parts.join('; ')}.\n` : '';
}

/** The plan's evaluations: run, task, weights, probes and settings, with the training point where a plan has several. */
function evaluationsTable(input: StudyReportInput): string {
  const points = input.evalSettings.some((e) => e.atEpochs !== undefined);
  const at = (e: StudyReportInput['evalSettings'][number]) => (points ? [e.atEpochs === undefined ? 'end' : `${e.atEpochs} epochs`] : []);
  return markdownTable(
    ['run', ...(points ? ['at'] : []), 'task', 'weights', 'probes', 'settings'],
    input.evalSettings.map((e) => [e.run, ...at(e), e.task, e.weights, e.probes.join(', '), JSON.stringify(e.config)]),
  );
}

/** What each evaluated dense task is (its description in src/eval/tasks.ts). */
function denseTasksLine(input: StudyReportInput): string {
  const tasks = [...new Set(input.results.map((r) => r.task))].filter(
    (t): t is TaskName => t in TASKS && TASKS[t as TaskName].kind === 'segmentation',
  );
  return tasks.map((t) => `\n\`${t}\`: ${TASKS[t].description}.`).join('');
}

/** Writes REPORT.md, tables/ and curves/ under `dir`; returns the report's path. */
export async function writeStudyReport(dir: string, input: StudyReportInput): Promise<string> {
  const claims = buildClaims(input);
  const t1 = table1(input);
  const t5 = table5(input);
  const shares = featureSharesTable(input);
  const alongCurve = claimsAlongCurve(input);
  const curve = curveClaimsTable(input, claims, alongCurve);
  const tables = [
    ...table2and3(input),
    ...(shares ? [shares] : []),
    ...(t1 ? [t1] : []),
    ...(t5 ? [t5] : []),
    diagnosticsTable(input),
    claimsTable(claims),
    ...(curve ? [curve] : []),
  ];
  const tablesDir = path.join(dir, 'tables');
  for (const t of tables) writeTable(tablesDir, t);
  const curves: string[] = [];
  for (const family of [...new Set(input.runs.map((r) => r.family))]) {
    const runs = capiRuns(input).filter((r) => r.family === family && r.metrics.length);
    if (!runs.length) continue;
    const file = path.join(dir, 'curves', `${family}.png`);
    await saveCurvesPng(
      file,
      runs.map((r) => ({ run: r.id, metrics: r.metrics })),
    );
    curves.push(`![${family} training curves](curves/${family}.png)`);
  }
  const along = evalCurves(input);
  if (along) await saveEvalCurvesPng(path.join(dir, 'curves', 'evaluations.png'), along);
  const alongPicture = along
    ? `\n![evaluations along the learning curve](curves/evaluations.png)\n\nThe same evaluations as a picture: each series' mean over seeds with ±1 SE bars at each training length (log scale); dashed: what does not depend on the CAPI runs' length (baselines, floors and ceilings, the supervised ceiling at its own end).\n`
    : '';
  const { finishedRuns: finished, pendingEvals, pendingBaselines, complete, left } = studyProgress(input);
  const baselinesToCome = pendingBaselines.length ? ` and the baselines of ${pendingBaselines.join(', ')}` : '';
  const progress = complete
    ? `the plan is complete: ${finished} pretraining runs, ${input.results.length} evaluation results`
    : `${finished} of ${input.runs.length} pretraining runs finished, ${input.results.length} evaluation results, ${pendingEvals.length} of the plan's ${input.evalSettings.length} evaluations${baselinesToCome} to come (their cells read "not run"; "not in plan" marks what the plan does not evaluate)${left ? `; ${timeLeftText(left)}` : ''}`;
  const minutes = input.runs.reduce((a, r) => a + trainingSeconds(r.metrics), 0) / 60;
  const evalMinutes = input.results.reduce((a, r) => a + (r.seconds?.total ?? 0), 0) / 60;
  const backend = input.runs.find((r) => r.config)?.config?.backend as { provider?: string; threads?: number } | undefined;
  const section = (t: Table | undefined) => (t ? `${tableMarkdown(t)}\n` : '');
  const byName = (n: string) => tables.find((t) => t.name === n);
  const report = `# CAPI at small scale: study \`${input.plan.name}\`

${input.plan.summary}.

- Progress: ${progress}.
- Wall time${complete ? '' : ' so far'}: pretraining ${minutes.toFixed(0)} min (time the process was stopped left out), evaluation ${evalMinutes.toFixed(0)} min (each result's own time), ${((minutes + evalMinutes) / 60).toFixed(1)} h in all, on ${backend?.provider ?? '?'} (${backend?.threads ?? '?'} threads); plan estimate: ${input.plan.estimate}.
${machinesLine(input)}- Started ${input.started}; code: ${input.commits.join(', ')}${input.commits.length > 1 ? ' (more than one commit: the study was resumed on newer code)' : ''}.
- Rerun or continue: \`npm run study -- --plan ${input.plan.name}\` (finished units are skipped, an interrupted run resumes from its checkpoint;
  this folder alone is enough to continue on another machine: a finished run's record is kept in \`runs/\` here).

${LEGEND}

## Classification (Table 2)

${section(byName('table2-classification'))}
${supervisedLine(input)}
## Dense task (Table 3), with its floor and ceiling

The floor rows need no features (the majority label; the background oracle knows the background mask), the ceiling row
labels every patch with its true mode label (the best any per-patch classifier can do at the model's patch size).
${denseTasksLine(input)}

${section(byName('table3-segmentation'))}
${section(byName('table3-feature-shares'))}
## Ablations (Table 1)

${section(byName('table1-ablations'))}
## Predictor pooling (Table 5)

${section(byName('table5-pooling'))}
## Pretraining runs and diagnostics

${section(byName('diagnostics'))}
${curves.join('\n\n')}

## Claims

A claim "A > B" holds when the gap exceeds 2 combined standard errors; "A >= B" holds within 2 SE while A is ahead by less than that; with B ahead by less than 2 SE neither is shown ("not resolved"), and by more the claim is reversed.
The combined SE adds the two sides' SEs as if independent, except where marked § (paired): both sides recorded which test images they got right, and the test-set part is the SE of the mean per-image difference (errors both make cancel), or, for mIoU, both recorded their bootstrap replicates (the same resamples of the test images), and it is the std of the replicate-by-replicate difference; where both sides are the same runs (teacher and student, two poolings), the seed part is the spread of the per-run differences.
${claims.length ? `Of the ${claims.length} claims${curve ? ' at the end' : ''}: ${verdictCounts(claims)}.` : 'No claim has both sides evaluated at the end yet.'}

${claims.length ? section(byName('claims')) : ''}${curve ? `\n${section(curve)}` : ''}${alongPicture}
## Discussion of the claims that do not hold

${discussion(claims, curve ? 'at the end' : 'here')}${curveDiscussion(alongCurve)}
## How it was made

Evaluations per run (probes; overrides of the eval defaults):

${evaluationsTable(input)}
Probe protocol (docs/evaluation.md): every probe grid is the paper's lr x wd grid plus the peak lrs 2e-2, 5e-2 and 1e-1
(39 points), selected on a 10% held-out split of the training set; the chosen point is trained again with half the steps (paired: the same initial parameters and batches), and
a result counts as converged when that moves its held-out accuracy by less than max(0.3 points, one held-out SE). With
\`attentiveRefineSteps\` the attentive grid runs \`attentiveSteps\` steps and its ${REFINE_KEEP} best points run again, alone, with
\`attentiveRefineSteps\` steps and select (successive halving; lr edges are those of the full grid).
${gridEdgeNotes(input.results)}

Every result's JSON (config, seed, backend, timings, held-out curves) is under \`<task>/\`; every finished run's config and per-step
metrics under \`runs/<run>/\`.
`;
  makeDirs(dir);
  const file = path.join(dir, 'REPORT.md');
  writeFileAtomic(file, report);
  return file;
}
