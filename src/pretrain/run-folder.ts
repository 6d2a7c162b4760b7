/**
 * The files of a pretraining run folder, read and checked: config.json (with what the run
 * recorded about itself), metrics.jsonl (one line a step), the checkpoint and the teacher export.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { CONFIG_FILE, findTeacherExport, METRICS_FILE, readTeacherExport, TEACHER_DIR } from '../model/io/run-files.js';
import { LOCK_FILE } from '../runtime/lock.js';
import type { CodeVersion, TrainingCode } from '../runtime/version.js';
import { CHECKPOINT_FILE } from './checkpoint.js';
import type { PretrainConfig } from './config.js';
import type { StepRecord } from './loop.js';
import type { ResumeRecord } from './resume.js';
import type { SupervisedRecord } from './supervised.js';
import type { StepClock } from './train-loop.js';

/** A run folder's config.json: the resolved config and what the run recorded about itself. */
export interface SavedRunConfig extends PretrainConfig {
  datasetFingerprint?: string;
  /** The code that started the run, and each resume's (absent in runs recorded before). */
  code?: CodeVersion;
  trainingCode?: TrainingCode;
  resumes?: ResumeRecord[];
}

/** config.json of a run folder, or undefined where it is missing or not JSON. */
export const readSavedConfig = (file: string): SavedRunConfig | undefined => {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as SavedRunConfig;
  } catch {
    return undefined;
  }
};

/**
 * One line of a run's metrics.jsonl: a CAPI step's (loop.ts StepRecord) or a supervised step's
 * (supervised.ts), each with the clock (train-loop.ts). Read back, any field but the step may be
 * missing (lines written by earlier versions).
 */
export type MetricsLine = { step: number } & Partial<StepClock> &
  Partial<Omit<StepRecord, 'step'>> &
  Partial<Omit<SupervisedRecord, 'step'>>;

/** A metrics line's value that is there and finite. */
export const isFiniteNumber = (x: number | undefined): x is number => x !== undefined && Number.isFinite(x);

/** The numeric fields of a metrics line (what the report averages and plots). */
export type MetricsKey = { [K in keyof MetricsLine]-?: NonNullable<MetricsLine[K]> extends number ? K : never }[keyof MetricsLine];

/**
 * The lines of a metrics.jsonl, each with its parsed record. A torn last line (a crash or a full
 * disk during the append) is dropped and said; a bad line elsewhere is an error naming the file
 * and line.
 */
function parseMetrics(file: string, log: (l: string) => void): { line: string; rec: MetricsLine }[] {
  if (!fs.existsSync(file)) return [];
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines.flatMap((line, i) => {
    try {
      return [{ line, rec: JSON.parse(line) as MetricsLine }];
    } catch {
      if (i === lines.length - 1) {
        log(`${file}: dropped a torn last line (${line.length} bytes)`);
        return [];
      }
      throw new Error(`${file}:${i + 1}: not a JSON line; the metrics are damaged (remove the line to resume)`);
    }
  });
}

/** metrics.jsonl lines of steps before `step`, as written (a crash after the last checkpoint leaves later ones). */
export function keptMetrics(file: string, step: number, log: (l: string) => void): string[] {
  return parseMetrics(file, log)
    .filter(({ rec }) => typeof rec.step === 'number' && rec.step < step)
    .map(({ line }) => line);
}

/** The records of a run folder's metrics.jsonl (a torn last line, which the run's resume repairs, left out). */
export const readMetrics = (dir: string): MetricsLine[] => parseMetrics(path.join(dir, METRICS_FILE), () => {}).map(({ rec }) => rec);

/** Training seconds of the kept records (their last elapsedSec): a resumed run's clock continues from there. */
export function elapsedBefore(kept: string[]): number {
  return kept.length ? ((JSON.parse(kept.at(-1)!) as { elapsedSec?: number }).elapsedSec ?? 0) : 0;
}

/** What a run folder holds; anything else in --out is the user's and is never overwritten. */
const RUN_FOLDER_ENTRIES = new Set([CONFIG_FILE, METRICS_FILE, CHECKPOINT_FILE, TEACHER_DIR, LOCK_FILE]);

/**
 * A new run writes only into an empty folder or one of an earlier run that never checkpointed:
 * a config.json that is not a capi-ts run's, or any other file, is the user's.
 */
export function checkNoForeignFiles(out: string): void {
  const foreign = fs.readdirSync(out).filter((f) => !RUN_FOLDER_ENTRIES.has(f) && !/\.tmp-\d+/.test(f));
  const cfg = path.join(out, CONFIG_FILE);
  const ours = (c: Record<string, unknown> | undefined) => !!c && 'totalSteps' in c && 'train' in c && 'model' in c;
  if (fs.existsSync(cfg) && !ours(readSavedConfig(cfg) as Record<string, unknown> | undefined)) foreign.unshift(CONFIG_FILE);
  if (foreign.length)
    throw new Error(
      `--out ${out} holds files that are not a capi-ts run's (${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ', ...' : ''}): choose an empty or new folder`,
    );
}

/** Whether the run folder's teacher export reads back whole. */
export function teacherExportReadable(out: string): boolean {
  const dir = findTeacherExport(out);
  if (!dir) return false;
  try {
    const exp = readTeacherExport(dir);
    tf.dispose(Object.values(exp.named));
    return true;
  } catch {
    return false;
  }
}
