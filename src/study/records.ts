/**
 * The results folder's record of a study's runs (results/<plan>/runs/<id>/: config.json,
 * metrics.jsonl; with --hand-off an unfinished run's checkpoint), and a run folder's state.
 */
import { CONFIG_FILE, METRICS_FILE } from '../model/io/run-files.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CHECKPOINT_FILE } from '../pretrain/checkpoint.js';
import { readMetrics } from '../pretrain/run-folder.js';
import { SUPERVISED_CHECKPOINT, SUPERVISED_FILE, supervisedDone } from '../pretrain/supervised.js';
import { writeFileAtomic } from '../runtime/atomic.js';
import type { StudyRun } from './plans.js';

/** Where a study keeps runs (checkpoints) and results (records, evaluations). */
export interface StudyFolders {
  runsDir: string;
  resultsDir: string;
  log: (line: string) => void;
}

/** What the report needs of a run, kept with the results (checkpoints stay in the runs folder). */
export const RECORD_FILES = [CONFIG_FILE, METRICS_FILE, SUPERVISED_FILE] as const;
export const recordDir = (o: StudyFolders, id: string) => path.join(o.resultsDir, 'runs', id);

/** A run's checkpoints, kept with its record when a study hands an unfinished run over (--hand-off). */
const HANDOFF_FILES = [CHECKPOINT_FILE, SUPERVISED_CHECKPOINT] as const;

/** Copies a run's record into the results folder; a finished run's handed-over checkpoint goes. */
export function saveRecord(run: StudyRun, o: StudyFolders): void {
  for (const f of RECORD_FILES) {
    const src = path.join(o.runsDir, run.id, f);
    if (fs.existsSync(src)) writeFileAtomic(path.join(recordDir(o, run.id), f), fs.readFileSync(src));
  }
  if (runStatus(path.join(o.runsDir, run.id)).status === 'done' || supervisedDone(path.join(o.runsDir, run.id)))
    for (const f of HANDOFF_FILES) fs.rmSync(path.join(recordDir(o, run.id), f), { force: true });
}

/**
 * An interrupted run's record and checkpoint, kept with the results (--hand-off): a checkout of
 * the results folder alone (a fresh clone, another machine) continues the run from there.
 */
export function handOff(run: StudyRun, o: StudyFolders): void {
  saveRecord(run, o);
  for (const f of HANDOFF_FILES) {
    const src = path.join(o.runsDir, run.id, f);
    if (fs.existsSync(src)) writeFileAtomic(path.join(recordDir(o, run.id), f), fs.readFileSync(src));
  }
  o.log(`study: ${run.id}'s checkpoint is kept in ${recordDir(o, run.id)} (--hand-off): a copy of the results folder continues it`);
}

/** A run folder without a checkpoint takes the one handed over with the results, if there is one. */
export function takeHandOff(run: StudyRun, o: StudyFolders): void {
  const dir = path.join(o.runsDir, run.id);
  const kept = HANDOFF_FILES.find((f) => fs.existsSync(path.join(recordDir(o, run.id), f)));
  if (!kept || HANDOFF_FILES.some((f) => fs.existsSync(path.join(dir, f)))) return;
  for (const f of [...RECORD_FILES, kept]) {
    const src = path.join(recordDir(o, run.id), f);
    if (fs.existsSync(src)) writeFileAtomic(path.join(dir, f), fs.readFileSync(src));
  }
  o.log(`study: ${run.id} continues from the checkpoint kept with the results (${path.join(recordDir(o, run.id), kept)})`);
}

/** The run's folder while it exists, else its record (enough for the baselines: evaluate.ts). */
export function checkpointDir(id: string, o: StudyFolders): string {
  const live = path.join(o.runsDir, id);
  return fs.existsSync(path.join(live, CONFIG_FILE)) || !fs.existsSync(recordDir(o, id)) ? live : recordDir(o, id);
}

/** A run folder's state: absent, in progress (checkpoint before the end, at `step`) or finished. */
export function runStatus(dir: string): { status: 'absent' | 'partial' | 'done'; step: number } {
  if (!fs.existsSync(path.join(dir, CHECKPOINT_FILE))) return { status: 'absent', step: 0 };
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, CONFIG_FILE), 'utf8')) as { totalSteps: number };
  const step = (readMetrics(dir).at(-1)?.step ?? -1) + 1;
  return { status: step >= cfg.totalSteps ? 'done' : 'partial', step };
}
