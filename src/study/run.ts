/**
 * Executes a study plan: each run is pretrained (or resumed, or skipped when finished), then its
 * evaluations run (skipped when every result file they write exists), and after every unit the
 * tables and REPORT.md are rebuilt from what exists, so an interrupted study already reports
 * what it has. Everything a unit writes is atomic (checkpoints, results), so killing the process
 * at any point loses at most the steps since the last checkpoint or the model being evaluated; a
 * rerun of the same command continues.
 *
 * The results folder alone carries a study from one machine to the next: a finished run's record
 * (config.json, metrics.jsonl) is copied to <results>/runs/<id>/, and a run whose record and
 * own rows (teacher, student) are all there is not needed again: its own rows are evaluated
 * first, and its baselines need only the record. So a checkout of the results folder (say, in
 * git) continues the study where the checkpoints (not meant for git) are gone.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { EvalHooks } from '../eval/evaluate.js';
import { evaluate, resultNames } from '../eval/evaluate.js';
import { knnMonitor } from '../eval/monitor.js';
import { TASKS } from '../eval/tasks.js';
import { isBuiltinData, resolvePretrainConfig } from '../pretrain/config.js';
import { progressOnStep, runPretraining } from '../pretrain/loop.js';
import { measurePredictionFit } from '../pretrain/prediction-fit.js';
import { runSupervised } from '../pretrain/supervised.js';
import { studyProgress, timeLeftBrief } from '../report/progress.js';
import type { StudyReportInput } from '../report/study-input.js';
import { writeStudyReport } from '../report/study.js';
import { writeFileAtomic } from '../runtime/atomic.js';
import type { BackendInfo } from '../runtime/backend.js';
import { lockFolder } from '../runtime/lock.js';
import { codeVersion, versionLabel } from '../runtime/version.js';
import type { Plan, StudyEval, StudyRun } from './plans.js';
import { curveStep, Ledger, repoPath } from './ledger.js';
import { checkpointFolder, handOff, liveFolder, recordFolder, releaseHandOff, saveFitRecord, saveRecord, takeHandOff } from './records.js';
import { ARMS, evalRowName } from './plans.js';

export interface StudyOptions {
  plan: Plan;
  /** Pretraining run folders (checkpoints; not meant for git). */
  runsDir: string;
  /** Evaluation results, tables/, curves/ and REPORT.md. */
  resultsDir: string;
  backend: BackendInfo;
  /** Feature cache of the evaluations ('' for none). */
  cacheDir: string;
  log: (line: string) => void;
  /** Progress of long phases (pretraining steps, features, probes). */
  progress: EvalHooks['progress'];
  /** Only rebuild the tables and REPORT.md from what exists (train and evaluate nothing). */
  reportOnly?: boolean;
  /** Take the study's locks although another process holds them (src/runtime/lock.ts). */
  takeOver?: boolean;
  /** Resume runs although the training step's code changed since their checkpoints (recorded in each run). */
  forceResume?: boolean;
  /** One unit of a Slurm study (`run:<id>` or `eval:<index>`), without the study's own locks; absent: the whole plan. */
  unit?: string;
  /** On a signal, keep the interrupted run's checkpoint with the results, so that a copy of them continues it. */
  handOff?: boolean;
}

export interface StudyOutcome {
  /** A signal stopped a pretraining run (after its checkpoint): the study stopped there. */
  interrupted?: NodeJS.Signals;
  report: string;
}

const STUDY_FILE = 'study.json';

function runFields(run: StudyRun): Record<string, unknown> {
  const f = { ...run.fields };
  if (f.dataDir) f.dataDir = repoPath(f.dataDir);
  if (typeof f.data === 'string' && !isBuiltinData(f.data)) f.data = repoPath(f.data);
  return f;
}

/** The study's own record: the plan it runs and each commit that worked on it (a resumed study may span several). */
export function recordStudy(o: StudyOptions): { commits: string[]; started: string } {
  const file = path.join(o.resultsDir, STUDY_FILE);
  const commit = versionLabel(codeVersion());
  let prior: { plan?: string; commits?: string[]; started?: string } = {};
  if (fs.existsSync(file)) {
    prior = JSON.parse(fs.readFileSync(file, 'utf8'));
    if (prior.plan && prior.plan !== o.plan.name) {
      throw new Error(`${file} is a study of plan '${prior.plan}', not '${o.plan.name}': choose another --out, or remove that folder`);
    }
  }
  const started = prior.started ?? new Date().toISOString();
  // A rebuild of the report does no work on the study; a unit of a Slurm study leaves the record to its launcher.
  if (o.reportOnly || o.unit) return { commits: prior.commits ?? [], started };
  const commits = [...new Set([...(prior.commits ?? []), commit])];
  writeFileAtomic(file, JSON.stringify({ plan: o.plan.name, started, commits, runsDir: o.runsDir, units: o.plan }, null, 2));
  return { commits, started };
}

/** Trains, resumes or skips the run up to `atEpochs` (a learning-curve point) or its end. */
async function ensureRun(run: StudyRun, o: StudyOptions, atEpochs?: number): Promise<NodeJS.Signals | undefined> {
  const folder = liveFolder(o, run.id);
  const dir = folder.dir;
  takeHandOff(run, o);
  if (run.arm === 'supervised') {
    if (folder.supervisedDone()) return undefined;
    o.log(`study: training the supervised ceiling ${run.id}`);
    let bar: ReturnType<EvalHooks['progress']> | undefined;
    const outcome = await runSupervised(resolvePretrainConfig(o.plan.preset, runFields(run)), {
      out: dir,
      backend: o.backend,
      log: o.log,
      forceResume: o.forceResume,
      onStep: (m, total) => {
        bar ??= o.progress(`supervised ${run.id}`, total, m.step);
        bar.update(m.step + 1, `loss ${m.loss.toFixed(3)} batch top-1 ${(100 * m.batchAccuracy).toFixed(0)}%`);
      },
    });
    return outcome.interrupted;
  }
  const { status } = folder.status();
  if (status === 'done') return undefined;
  const until = atEpochs === undefined ? '' : ` to epoch ${atEpochs}`;
  o.log(`study: ${status === 'partial' ? 'resuming' : 'pretraining'} ${run.id}${until}`);
  const cfg = resolvePretrainConfig(o.plan.preset, runFields(run));
  const m = run.monitor;
  const r = await runPretraining(cfg, {
    out: dir,
    resume: status === 'partial',
    forceResume: o.forceResume,
    stopAfter: 0,
    stopAfterEpochs: atEpochs,
    backend: o.backend,
    log: o.log,
    monitor: m
      ? knnMonitor({
          task: TASKS[m.task],
          dataDir: m.dataDir ? String(repoPath(m.dataDir)) : '',
          every: m.every,
          train: m.train,
          test: m.test,
        })
      : undefined,
    onStep: progressOnStep((total, start) => o.progress(`pretrain ${run.id}`, total, start)),
  });
  return r.interrupted;
}

/**
 * The predictor's fit to its targets (src/pretrain/prediction-fit.ts) where a CAPI run's
 * checkpoint stands (a learning-curve point or its end), once: the evidence for the claims that
 * read its predictor. Without the checkpoint (a study continued from its results alone) there is none.
 */
async function ensurePredictionFit(run: StudyRun, o: StudyOptions): Promise<void> {
  const live = liveFolder(o, run.id);
  if (run.arm === 'supervised' || !fs.existsSync(live.checkpoint)) return;
  const { step } = live.status();
  if (live.readPredictionFits()[step]) return;
  o.log(`study: measuring how ${run.id}'s predictor fits its targets at step ${step}`);
  const measured = await measurePredictionFit(live.dir);
  live.writePredictionFit(measured.step, measured.fit);
  saveFitRecord(run, o);
}

/**
 * Skipped when every file the evaluation writes is its result; otherwise only the models without
 * one run (features come from the cache). `ownRowOnly`: the run's own row, not its baselines.
 */
async function ensureEval(e: StudyEval, o: StudyOptions, ledger: Ledger, ownRowOnly = false): Promise<void> {
  if (ownRowOnly ? !ledger.needsWeights(e) : ledger.done(e)) return;
  const cfg = ledger.config(e);
  const own = resultNames(cfg)[0];
  const rows = ownRowOnly ? [own] : resultNames(cfg).filter((n) => !ledger.current(e, n));
  if (rows[0] === own) {
    const others = rows.length > 1 ? `; with the rows ${rows.slice(1).join(', ')}` : '';
    o.log(`study: evaluating ${cfg.name} on ${e.task} (${e.probes.join(', ')}${others})`);
  } else {
    // The run's own row exists (e.g. written at its learning-curve point): only rows that need no trained weights remain.
    o.log(`study: writing the rows ${rows.join(', ')} of ${cfg.name}'s evaluation on ${e.task} (its own row exists)`);
  }
  // Models whose result exists are left out: a killed evaluation loses only the model in progress.
  await evaluate(cfg, {
    log: o.log,
    progress: o.progress,
    onResult: (r) => ledger.write(r),
    skipModel: (name) => (ownRowOnly && name !== own) || ledger.current(e, name) !== undefined,
    // What reproduces the result: the study (the resolved eval config is saved with it).
    command: `npm run study -- --plan ${o.plan.name}`,
  });
}

/** What the report reads: every run's config and metrics and every current result the plan names. */
function reportInput(o: StudyOptions, ledger: Ledger, study: { commits: string[]; started: string }): StudyReportInput {
  const runs = o.plan.runs.map((r) => {
    const folder = checkpointFolder(r.id, o);
    return {
      id: r.id,
      family: r.family,
      arm: r.arm,
      seed: r.seed,
      config: folder.readConfig() as Record<string, unknown> | undefined,
      metrics: folder.readMetrics(),
      predictionFits: folder.readPredictionFits(),
    };
  });
  const results = ledger.results();
  return {
    plan: { name: o.plan.name, summary: o.plan.summary, estimate: o.plan.estimate },
    arms: Object.entries(ARMS).map(([name, a]) => ({ name, ...a })),
    runs,
    results,
    commits: study.commits,
    started: study.started,
    evalSettings: o.plan.evals.map((e) => ({
      run: e.run,
      row: evalRowName(e),
      task: e.task,
      probes: e.probes,
      weights: e.weights,
      atEpochs: e.atEpochs,
      baselines: e.baselines,
      config: e.config,
    })),
  };
}

export async function runStudy(o: StudyOptions): Promise<StudyOutcome> {
  // One study per results folder and per runs folder (a report-only rebuild reads runs, and writes results).
  // A unit of a Slurm study runs beside others: its run folder and output folders are locked by what writes them.
  const folders = o.unit ? [] : [o.resultsDir, ...(o.reportOnly ? [] : [o.runsDir])];
  const locks = folders.map((d) => lockFolder(d, 'study', { takeOver: o.takeOver, log: o.log }));
  try {
    return await study(o);
  } finally {
    for (const l of locks) l.release();
  }
}

/** A run is needed no more once its record is kept and every evaluation of it has its results. */
function runComplete(run: StudyRun, o: StudyOptions, ledger: Ledger): boolean {
  return recordFolder(o, run.id).hasConfig() && o.plan.evals.filter((e) => e.run === run.id).every((e) => ledger.done(e));
}

/**
 * One run's work: train to each of its learning-curve points and evaluate there, then to its end
 * (and, `withEnd`, its end evaluations). Returns the signal that stopped training, if one did.
 */
async function runUnit(
  run: StudyRun,
  o: StudyOptions,
  ledger: Ledger,
  withEnd: boolean,
  afterPoint: () => Promise<unknown>,
): Promise<NodeJS.Signals | undefined> {
  const runEvals = o.plan.evals.filter((x) => x.run === run.id);
  const points = [...new Set(runEvals.map((e) => e.atEpochs))].sort((a, b) => (a ?? Infinity) - (b ?? Infinity));
  for (const atEpochs of points) {
    // Without the end's evaluations (a Slurm study: jobs of their own), the run is still trained to its end.
    const evals = runEvals.filter((e) => e.atEpochs === atEpochs && (withEnd || atEpochs !== undefined));
    if (evals.length && evals.every((e) => ledger.done(e))) continue;
    const live = liveFolder(o, run.id).status();
    const step = curveStep(run.id, atEpochs, o);
    if (atEpochs !== undefined && step !== undefined && live.step > step) {
      o.log(`study: ${run.id} is at step ${live.step}, past epoch ${atEpochs} (step ${step}): that point can no longer be evaluated`);
      continue;
    }
    // A run whose record is kept and whose own rows all exist is not trained again (its baselines need only its config).
    if (!recordFolder(o, run.id).hasConfig() || evals.some((e) => ledger.needsWeights(e))) {
      const interrupted = await ensureRun(run, o, atEpochs);
      ledger.runChanged();
      if (interrupted) {
        if (o.handOff) handOff(run, o);
        return interrupted;
      }
      saveRecord(run, o);
      await ensurePredictionFit(run, o);
      ledger.runChanged();
    }
    // The rows that need the run's weights first: a session that ends before the baselines leaves them to one without the checkpoint.
    for (const e of evals) await ensureEval(e, o, ledger, true);
    for (const e of evals) await ensureEval(e, o, ledger);
    await afterPoint();
  }
  return undefined;
}

async function study(o: StudyOptions): Promise<StudyOutcome> {
  const study = recordStudy(o);
  const ledger = new Ledger(o);
  const report = async () => writeStudyReport(o.resultsDir, reportInput(o, ledger, study));
  if (o.reportOnly) return { report: await report() };
  const stopped = (interrupted: NodeJS.Signals) => ({ interrupted, report: path.join(o.resultsDir, 'REPORT.md') });
  if (o.unit) {
    // One job of a Slurm study: a run (with its learning-curve evaluations) or one end evaluation.
    const [kind, id] = o.unit.split(':');
    const run = o.plan.runs.find((r) => r.id === id);
    if (kind === 'run' && run) {
      const interrupted = await runUnit(run, o, ledger, false, async () => {});
      return interrupted ? stopped(interrupted) : { report: '' };
    }
    const e = kind === 'eval' ? o.plan.evals[Number(id)] : undefined;
    if (!e) throw new Error(`--unit ${o.unit}: not a unit of plan ${o.plan.name} (run:<id> or eval:<index>)`);
    await ensureEval(e, o, ledger, true);
    await ensureEval(e, o, ledger);
    return { report: '' };
  }
  const units = o.plan.runs.length + o.plan.evals.length;
  let done = 0;
  for (const run of o.plan.runs) {
    // A run finished by an earlier version of the study has none.
    if (liveFolder(o, run.id).status().status === 'done') await ensurePredictionFit(run, o);
    if (!runComplete(run, o, ledger)) {
      const interrupted = await runUnit(run, o, ledger, true, report);
      if (interrupted) {
        await report();
        return stopped(interrupted);
      }
    }
    // Its own rows evaluated, the run's weights kept with the results (--hand-off) are needed no more.
    if (o.plan.evals.every((e) => e.run !== run.id || !ledger.needsWeights(e))) releaseHandOff(run, o);
    done += 1 + o.plan.evals.filter((x) => x.run === run.id).length;
    const { left } = studyProgress(reportInput(o, ledger, study));
    o.log(`study: ${done} of ${units} units done (${run.id})${left ? `; ${timeLeftBrief(left)}` : ''}`);
  }
  return { report: await report() };
}
