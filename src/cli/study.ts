/**
 * `npm run study -- --plan NAME`: pretrain a plan's arms x seeds, evaluate each run on its
 * tasks, rebuild the tables and REPORT.md after every unit; a rerun continues where it stopped.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../runtime/atomic.js';
import { BACKEND_FIELDS, initBackend } from '../runtime/backend.js';
import { PLAN_NAMES, PLANS } from '../study/plans.js';
import { recordStudy, runStudy } from '../study/run.js';
import { launchStudyOnSlurm } from '../study/slurm.js';
import { withFolderLock } from '../runtime/lock.js';
import { PREEMPTED_EXIT, SLURM_FIELDS } from '../runtime/slurm.js';
import { commandConfig, isMain, runMain, userPath } from './command.js';
import { ProgressBar } from './progress.js';

export const STUDY_COMMAND = {
  usage: 'npm run study -- --plan NAME [--out DIR] [--runs DIR]',
  summary:
    'Runs a study plan: pretraining runs (Table 1 arms x seeds) -> evaluation of each on its tasks -> tables ->\n' +
    "REPORT.md (the paper's Tables 1, 2, 3, 5 beside ours, floors and ceilings, curves, claims). Resumable: a rerun\n" +
    'skips finished units and resumes an interrupted pretraining run from its checkpoint; Ctrl-C stops after a checkpoint.\n' +
    `Plans: ${PLAN_NAMES.map((n) => `${n} (${PLANS[n]().summary}; ${PLANS[n]().estimate})`).join(';\n       ')}.`,
  schema: z.object({
    plan: z.enum(PLAN_NAMES).describe('which plan'),
    out: z
      .string()
      .default('')
      .describe(
        "results folder (REPORT.md, tables/, curves/, <task>/); '': results for small, results/medium for medium, studies/<plan> otherwise",
      ),
    runs: z.string().default('').describe("pretraining run folders; '': runs/study-<plan>"),
    cacheDir: z
      .string()
      .default('')
      .describe(
        "feature cache of the evaluations; '': none (a study evaluates each model once a task, and a 60k-image task's patch features take ~1.5 GB a model)",
      ),
    reportOnly: z.boolean().default(false).describe('only rebuild REPORT.md, tables/ and curves/ from the results and runs that exist'),
    handOff: z
      .boolean()
      .default(false)
      .describe(
        'keep with the results (results/<plan>/runs/<id>/) the weights of a run stopped by Ctrl-C or SIGTERM, and of a finished run until its own rows are evaluated: a copy of the results folder alone (a fresh clone) continues the study',
      ),
    forceResume: z
      .boolean()
      .default(false)
      .describe("resume the plan's runs although the training step's code changed since their checkpoints (recorded in each run)"),
    takeOver: z.boolean().default(false).describe("take the study's folder locks although another process holds them (only if it is gone)"),
    ...BACKEND_FIELDS,
    ...SLURM_FIELDS,
    dryRun: z
      .boolean()
      .default(false)
      .describe(
        "write the plan (every run's and evaluation's configuration) to <out>/plan.json and exit (with --launcher slurm: print the job scripts too)",
      ),
    unit: z.string().default('').describe("one unit of the plan (a Slurm study's job): run:<id> or eval:<index>; '': all of it"),
  }),
};

/** Where a plan's results go by default: the committed plans under results/, the others under studies/. */
const defaultResults = (plan: string) =>
  plan === 'small' ? 'results' : plan === 'medium' ? path.join('results', 'medium') : path.join('studies', plan);

export async function main(argv = process.argv.slice(2)): Promise<void> {
  const parsed = commandConfig(STUDY_COMMAND, argv);
  if (!parsed) return;
  const c = parsed.config;
  const plan = PLANS[c.plan]();
  const out = userPath(c.out || defaultResults(c.plan));
  if (c.dryRun && c.launcher === 'local') {
    const file = path.join(out, 'plan.json');
    writeFileAtomic(file, JSON.stringify(plan, null, 2));
    console.error(`plan ${c.plan}: ${plan.runs.length} pretraining runs, ${plan.evals.length} evaluations; written to ${file}`);
    return;
  }
  const runsDir = userPath(c.runs || path.join('runs', `study-${c.plan}`));
  if (c.launcher === 'slurm') {
    // The launcher holds the study's folders while its jobs run, then reports.
    const config = { ...c, out, runs: runsDir, cacheDir: c.cacheDir ? userPath(c.cacheDir) : '' };
    const backend = await initBackend(c.backend, c.threads);
    const study = { plan, runsDir, resultsDir: out, backend, cacheDir: config.cacheDir, log: (l: string) => console.error(l) };
    await withFolderLock(out, 'study', { takeOver: c.takeOver, log: study.log }, async () => {
      if (!c.dryRun) recordStudy({ ...study, progress: () => ({ update: () => {} }) }); // the commit that launched it
      await launchStudyOnSlurm(plan, config, out, study.log);
      if (c.dryRun) return;
      const r = await runStudy({ ...study, progress: (label, total) => new ProgressBar(total, label), reportOnly: true });
      console.error(`study ${c.plan} on Slurm: ${r.report}`);
    });
    return;
  }
  const backend = await initBackend(c.backend, c.threads);
  // A unit of a Slurm study stops for preemption (USR1): a run at its next step (its loop's signals), an evaluation at once
  // (results are written a model at a time; the requeued job skips those done).
  if (c.unit.startsWith('eval:')) process.on('SIGUSR1', () => process.exit(PREEMPTED_EXIT));
  if (c.unit) console.error(`slurm unit ${c.unit}, attempt ${1 + Number(process.env.SLURM_RESTART_COUNT ?? 0)}`);
  const outcome = await runStudy({
    plan,
    runsDir,
    resultsDir: out,
    backend,
    cacheDir: c.cacheDir ? userPath(c.cacheDir) : '',
    log: (l) => console.error(l),
    progress: (label, total, initial) => new ProgressBar(total, label, initial),
    reportOnly: c.reportOnly,
    takeOver: c.takeOver,
    forceResume: c.forceResume,
    unit: c.unit || undefined,
    handOff: c.handOff,
  });
  if (outcome.interrupted === 'SIGUSR1') {
    console.error(`preempted: ${c.unit} stopped after its checkpoint; the requeued job continues`);
    process.exitCode = PREEMPTED_EXIT;
    return;
  }
  if (c.unit) return;
  if (outcome.interrupted) {
    console.error(
      `study stopped (${outcome.interrupted}); report so far: ${outcome.report}; continue with: npm run study -- --plan ${c.plan}`,
    );
    process.exitCode = 128 + (os.constants.signals[outcome.interrupted] ?? 15);
    return;
  }
  console.error(c.reportOnly ? `report rebuilt: ${outcome.report}` : `study ${c.plan} complete: ${outcome.report}`);
}

if (isMain(import.meta.url)) runMain(main);
