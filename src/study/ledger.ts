/**
 * The study's ledger of its evaluations: each plan evaluation resolved to its eval config, and
 * which of its result files hold results that evaluation would make (src/eval/config.ts
 * staleField), kept current by the study as it trains and writes.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EvalConfig } from '../eval/config.js';
import { EvalConfigSchema, staleField } from '../eval/config.js';
import { resultNames } from '../eval/evaluate.js';
import type { EvalResult } from '../eval/result.js';
import { EVAL_PROTOCOL } from '../eval/result.js';
import { stepsForEpochs } from '../pretrain/step.js';
import { readResult, resultFile, writeResult } from '../report/results.js';
import { validate } from '../runtime/schema.js';
import type { Plan, StudyEval } from './plans.js';
import { evalRowName } from './plans.js';
import { checkpointFolder, type StudyFolders } from './records.js';

/** The repository root: plans name data paths (e.g. data/fmnist-slice) relative to it. */
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Plan data paths are relative to the repository root. */
export const repoPath = (p: unknown) => (typeof p === 'string' && p && !path.isAbsolute(p) ? path.join(REPO_ROOT, p) : p);

/** What the ledger needs of the study's options. */
export interface LedgerOptions extends StudyFolders {
  plan: Plan;
  /** Feature cache of the evaluations ('' for none). */
  cacheDir: string;
}

/**
 * The training step of a run's learning-curve point, from the run's config.json (as the run counts
 * epochs: src/pretrain/step.ts); 0 for the run's end, undefined while the run has no config.
 */
export function curveStep(run: string, atEpochs: number | undefined, o: LedgerOptions): number | undefined {
  if (atEpochs === undefined) return 0;
  const c = checkpointFolder(run, o).readConfig();
  return c?.datasetSize === undefined ? undefined : stepsForEpochs(atEpochs, c.datasetSize, c.train.batchSize);
}

function evalConfig(e: StudyEval, o: LedgerOptions): EvalConfig {
  const c: Record<string, unknown> = { ...e.config };
  for (const k of ['dataDir', 'dataRoot'] as const) if (c[k]) c[k] = repoPath(c[k]);
  return validate(EvalConfigSchema, {
    ...c,
    task: e.task,
    checkpoint: checkpointFolder(e.run, o).dir,
    // A point whose step is not known yet (no run yet) asks for step 1e9: never a result that exists.
    checkpointStep: curveStep(e.run, e.atEpochs, o) ?? 1e9,
    name: evalRowName(e),
    weights: e.weights,
    probes: e.probes,
    baselines: e.baselines,
    out: o.resultsDir,
    overwrite: true,
    cacheDir: o.cacheDir,
    pcaImages: e.baselines ? 4 : 0,
  });
}

/**
 * What the study knows of its evaluations, kept current by the study itself: each evaluation's
 * resolved config (computed once, again after a run trained: its learning-curve steps and folder
 * may have changed) and each result file read once (a result the study writes replaces it here).
 * A result counts for an evaluation when it was made with the same protocol version and protocol
 * fields (src/eval/config.ts; for a floor or ceiling row, its data fields); one that is not is
 * said once, naming the field, and evaluated again.
 */
export class Ledger {
  private readonly configs = new Map<StudyEval, EvalConfig>();
  private readonly files = new Map<string, EvalResult | undefined>();
  private readonly saidStale = new Set<string>();

  constructor(private readonly o: LedgerOptions) {}

  /** A run trained (or took a hand-off): the configs of the evaluations are resolved again. */
  runChanged(): void {
    this.configs.clear();
  }

  config(e: StudyEval): EvalConfig {
    let c = this.configs.get(e);
    if (!c) {
      c = evalConfig(e, this.o);
      this.configs.set(e, c);
    }
    return c;
  }

  private read(file: string): EvalResult | undefined {
    if (!this.files.has(file)) this.files.set(file, fs.existsSync(file) ? readResult(file) : undefined);
    return this.files.get(file);
  }

  /** Writes a result of the study and keeps it. */
  write(r: EvalResult): void {
    this.files.set(writeResult(this.o.resultsDir, r), r);
  }

  /** The result of row `model` of evaluation `e`, if one exists that `e` would make. */
  current(e: StudyEval, model: string): EvalResult | undefined {
    const cfg = this.config(e);
    const file = resultFile(this.o.resultsDir, e.task, model);
    const r = this.read(file);
    if (!r) return undefined;
    const why =
      r.kind !== 'reference' && r.protocol !== EVAL_PROTOCOL
        ? `protocol version ${r.protocol ?? 'unset'} -> ${EVAL_PROTOCOL}`
        : staleField(r.config as Partial<EvalConfig>, cfg, r.kind === 'reference');
    if (why === undefined) return r;
    if (!this.saidStale.has(file)) {
      this.saidStale.add(file);
      this.o.log(`study: ${file} is out of date (${why}): evaluating it again`);
    }
    return undefined;
  }

  /** Every row the evaluation writes has its result. */
  done(e: StudyEval): boolean {
    return resultNames(this.config(e)).every((n) => this.current(e, n));
  }

  /** The evaluation's row of the run itself (teacher or student) is still missing: only that row needs the trained weights. */
  needsWeights(e: StudyEval): boolean {
    return !this.current(e, resultNames(this.config(e))[0]);
  }

  /** The current results of the plan's evaluations, each once. */
  results(): EvalResult[] {
    const seen = new Map<string, EvalResult>();
    for (const e of this.o.plan.evals) {
      for (const n of resultNames(this.config(e))) {
        const r = this.current(e, n);
        if (r) seen.set(resultFile(this.o.resultsDir, e.task, n), r);
      }
    }
    return [...seen.values()];
  }
}
