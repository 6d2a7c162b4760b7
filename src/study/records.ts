/**
 * The results folder's record of a study's runs (results/<plan>/runs/<id>/: config.json,
 * metrics.jsonl; with --hand-off an unfinished run's checkpoint), and a run folder's state.
 * Both are run folders (src/pretrain/run-folder.ts): the record holds a subset of the run's files.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RunFolder } from '../pretrain/run-folder.js';
import { writeFileAtomic } from '../runtime/atomic.js';
import type { StudyRun } from './plans.js';

/** Where a study keeps runs (checkpoints) and results (records, evaluations). */
export interface StudyFolders {
  runsDir: string;
  resultsDir: string;
  log: (line: string) => void;
}

/** A run's folder, where it trains (checkpoints; not meant for git). */
export const liveFolder = (o: StudyFolders, id: string) => new RunFolder(path.join(o.runsDir, id));
/** What the report needs of a run, kept with the results. */
export const recordFolder = (o: StudyFolders, id: string) => new RunFolder(path.join(o.resultsDir, 'runs', id));

/** Copies the files `names` that `from` has into `to` (atomically). */
function copyFiles(from: RunFolder, to: RunFolder, names: readonly string[]): void {
  for (const f of names) if (fs.existsSync(from.file(f))) writeFileAtomic(to.file(f), fs.readFileSync(from.file(f)));
}

/** Copies a run's record into the results folder; a finished run's handed-over checkpoint goes. */
export function saveRecord(run: StudyRun, o: StudyFolders): void {
  const live = liveFolder(o, run.id);
  const record = recordFolder(o, run.id);
  copyFiles(live, record, RunFolder.RECORD_FILES);
  if (live.status().status === 'done' || live.supervisedDone())
    for (const f of RunFolder.CHECKPOINT_FILES) fs.rmSync(record.file(f), { force: true });
}

/**
 * An interrupted run's record and checkpoint, kept with the results (--hand-off): a checkout of
 * the results folder alone (a fresh clone, another machine) continues the run from there.
 */
export function handOff(run: StudyRun, o: StudyFolders): void {
  saveRecord(run, o);
  const record = recordFolder(o, run.id);
  copyFiles(liveFolder(o, run.id), record, RunFolder.CHECKPOINT_FILES);
  o.log(`study: ${run.id}'s checkpoint is kept in ${record.dir} (--hand-off): a copy of the results folder continues it`);
}

/** A run folder without a checkpoint takes the one handed over with the results, if there is one. */
export function takeHandOff(run: StudyRun, o: StudyFolders): void {
  const live = liveFolder(o, run.id);
  const record = recordFolder(o, run.id);
  const kept = RunFolder.CHECKPOINT_FILES.find((f) => fs.existsSync(record.file(f)));
  if (!kept || RunFolder.CHECKPOINT_FILES.some((f) => fs.existsSync(live.file(f)))) return;
  copyFiles(record, live, [...RunFolder.RECORD_FILES, kept]);
  o.log(`study: ${run.id} continues from the checkpoint kept with the results (${record.file(kept)})`);
}

/** The run's folder while it exists, else its record (enough for the baselines: evaluate.ts). */
export function checkpointFolder(id: string, o: StudyFolders): RunFolder {
  const live = liveFolder(o, id);
  const record = recordFolder(o, id);
  return live.hasConfig() || !fs.existsSync(record.dir) ? live : record;
}
