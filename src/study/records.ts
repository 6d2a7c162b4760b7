/**
 * The results folder's record of a study's runs (results/<plan>/runs/<id>/: config.json,
 * metrics.jsonl; with --hand-off the weights of a run that is unfinished or whose own rows are not
 * evaluated yet: its checkpoint and teacher export), and a run folder's state.
 * Both are run folders (src/pretrain/run-folder.ts): the record holds a subset of the run's files.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PREDICTION_FIT_FILE, RunFolder } from '../pretrain/run-folder.js';
import { writeFileAtomic } from '../runtime/atomic.js';
import type { StudyRun } from './plans.js';

/** Where a study keeps runs (checkpoints) and results (records, evaluations). */
export interface StudyFolders {
  runsDir: string;
  resultsDir: string;
  log: (line: string) => void;
  /** Keep the weights of a run whose own rows are not evaluated yet with the results (--hand-off). */
  handOff?: boolean;
}

/** A run's folder, where it trains (checkpoints; not meant for git). */
export const liveFolder = (o: StudyFolders, id: string) => new RunFolder(path.join(o.runsDir, id));
/** What the report needs of a run, kept with the results. */
export const recordFolder = (o: StudyFolders, id: string) => new RunFolder(path.join(o.resultsDir, 'runs', id));

/** Copies the entries `names` that `from` has into `to`: files atomically, a folder (the teacher export) as a copy renamed into place. */
function copyEntries(from: RunFolder, to: RunFolder, names: readonly string[]): void {
  for (const name of names) {
    const src = from.file(name);
    if (!fs.existsSync(src)) continue;
    if (!fs.statSync(src).isDirectory()) {
      writeFileAtomic(to.file(name), fs.readFileSync(src));
      continue;
    }
    const tmp = `${to.file(name)}.tmp-${process.pid}`;
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.cpSync(src, tmp, { recursive: true });
    fs.rmSync(to.file(name), { recursive: true, force: true });
    fs.renameSync(tmp, to.file(name));
  }
}

const dropWeights = (record: RunFolder) => {
  for (const f of RunFolder.WEIGHT_ENTRIES) fs.rmSync(record.file(f), { recursive: true, force: true });
};

/**
 * Copies a run's record into the results folder. A finished run's weights go with it under
 * --hand-off (its own rows still need them: released once they exist, releaseHandOff), else a
 * handed-over checkpoint goes.
 */
export function saveRecord(run: StudyRun, o: StudyFolders): void {
  const live = liveFolder(o, run.id);
  const record = recordFolder(o, run.id);
  copyEntries(live, record, RunFolder.RECORD_FILES);
  if (live.status().status !== 'done' && !live.supervisedDone()) return;
  if (o.handOff) copyEntries(live, record, RunFolder.WEIGHT_ENTRIES);
  else dropWeights(record);
}

/** Copies a run's prediction fits into its record (and nothing else: a finished run's weights stay where they are). */
export function saveFitRecord(run: StudyRun, o: StudyFolders): void {
  copyEntries(liveFolder(o, run.id), recordFolder(o, run.id), [PREDICTION_FIT_FILE]);
}

/**
 * An interrupted run's record and weights, kept with the results (--hand-off): a checkout of the
 * results folder alone (a fresh clone, another machine) continues the run from there.
 */
export function handOff(run: StudyRun, o: StudyFolders): void {
  saveRecord(run, o);
  const record = recordFolder(o, run.id);
  copyEntries(liveFolder(o, run.id), record, RunFolder.WEIGHT_ENTRIES);
  o.log(`study: ${run.id}'s checkpoint is kept in ${record.dir} (--hand-off): a copy of the results folder continues it`);
}

/** A run whose own rows all exist needs its weights no more: those kept with the results go. */
export function releaseHandOff(run: StudyRun, o: StudyFolders): void {
  dropWeights(recordFolder(o, run.id));
}

/** A run folder without weights takes those handed over with the results, if there are any. */
export function takeHandOff(run: StudyRun, o: StudyFolders): void {
  const live = liveFolder(o, run.id);
  const record = recordFolder(o, run.id);
  const kept = RunFolder.WEIGHT_ENTRIES.filter((f) => fs.existsSync(record.file(f)));
  if (!kept.length || RunFolder.WEIGHT_ENTRIES.some((f) => fs.existsSync(live.file(f)))) return;
  copyEntries(record, live, [...RunFolder.RECORD_FILES, ...kept]);
  o.log(`study: ${run.id} continues from the checkpoint kept with the results (${record.file(kept[0])})`);
}

/** The run's folder while it exists, else its record (enough for the baselines: evaluate.ts). */
export function checkpointFolder(id: string, o: StudyFolders): RunFolder {
  const live = liveFolder(o, id);
  const record = recordFolder(o, id);
  return live.hasConfig() || !fs.existsSync(record.dir) ? live : record;
}
