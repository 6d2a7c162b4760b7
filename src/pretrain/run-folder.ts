/**
 * A pretraining run folder and every file in it, named, read and written here (RunFolder):
 * config.json (the resolved config with what the run recorded about itself), metrics.jsonl (one
 * line a step), the training checkpoint and the teacher export (formats: src/model/io/run-files.ts),
 * and a supervised run's checkpoint and record. The training loops, the study and its records go
 * through it; only the model's reader (src/model/io/load.ts, a layer below) opens a run by the
 * names of run-files.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { CHECKPOINT_FILE, CONFIG_FILE, findTeacherExport, METRICS_FILE, readTeacherExport, TEACHER_DIR } from '../model/io/run-files.js';
import { removeStaleTempFiles, writeFileAtomic } from '../runtime/atomic.js';
import { LOCK_FILE } from '../runtime/lock.js';
import type { CodeVersion, TrainingCode } from '../runtime/version.js';
import type { PretrainConfig } from './config.js';
import type { PredictionFit } from './prediction-fit.js';
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
  totalSteps?: number;
  datasetSize?: number;
}

/** config.json of a run folder, or undefined where it is missing or not JSON. */
const readSavedConfig = (file: string): SavedRunConfig | undefined => {
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

/** Training seconds of the kept records (their last elapsedSec): a resumed run's clock continues from there. */
export function elapsedBefore(kept: string[]): number {
  return kept.length ? ((JSON.parse(kept.at(-1)!) as { elapsedSec?: number }).elapsedSec ?? 0) : 0;
}

export const SUPERVISED_FILE = 'supervised.json';
/** The predictor's fit to its targets at the steps where it was measured (src/pretrain/prediction-fit.ts). */
export const PREDICTION_FIT_FILE = 'prediction-fit.json';
export const SUPERVISED_CHECKPOINT = 'supervised-checkpoint.safetensors';

/** What a run folder holds; anything else in --out is the user's and is never overwritten. */
const RUN_FOLDER_ENTRIES = new Set([CONFIG_FILE, METRICS_FILE, CHECKPOINT_FILE, TEACHER_DIR, LOCK_FILE, PREDICTION_FIT_FILE]);

/** A run's state: absent (no checkpoint), in progress (checkpoint before the end, at `step`) or finished. */
export interface RunStatus {
  status: 'absent' | 'partial' | 'done';
  step: number;
}

/** One run folder: the path of each of its files, and their readers and writers. */
export class RunFolder {
  /** What a study keeps of a run with its results (the report's input). */
  static readonly RECORD_FILES = [CONFIG_FILE, METRICS_FILE, SUPERVISED_FILE, PREDICTION_FIT_FILE] as const;
  /** The checkpoints (CAPI, supervised): a run folder with one can continue. */
  static readonly CHECKPOINT_FILES = [CHECKPOINT_FILE, SUPERVISED_CHECKPOINT] as const;
  /** What a study hands over with its results (--hand-off): the checkpoints and the teacher export (a folder). */
  static readonly WEIGHT_ENTRIES = [CHECKPOINT_FILE, SUPERVISED_CHECKPOINT, TEACHER_DIR] as const;

  readonly config: string;
  readonly metrics: string;
  readonly checkpoint: string;
  readonly teacher: string;
  readonly supervisedCheckpoint: string;
  /** A finished supervised run's steps and training seconds. */
  readonly supervisedRecord: string;

  constructor(readonly dir: string) {
    this.config = path.join(dir, CONFIG_FILE);
    this.metrics = path.join(dir, METRICS_FILE);
    this.checkpoint = path.join(dir, CHECKPOINT_FILE);
    this.teacher = path.join(dir, TEACHER_DIR);
    this.supervisedCheckpoint = path.join(dir, SUPERVISED_CHECKPOINT);
    this.supervisedRecord = path.join(dir, SUPERVISED_FILE);
  }

  /** A file of the folder by its name (one of RECORD_FILES or CHECKPOINT_FILES). */
  file(name: string): string {
    return path.join(this.dir, name);
  }

  hasConfig(): boolean {
    return fs.existsSync(this.config);
  }

  /** config.json, or undefined where it is missing or not JSON. */
  readConfig(): SavedRunConfig | undefined {
    return readSavedConfig(this.config);
  }

  writeConfig(config: object): void {
    writeFileAtomic(this.config, JSON.stringify(config, null, 2));
  }

  /** The predictor's fit by the step it was measured at ({} where none was). */
  readPredictionFits(): Record<string, PredictionFit> {
    const file = this.file(PREDICTION_FIT_FILE);
    return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, PredictionFit>) : {};
  }

  writePredictionFit(step: number, fit: PredictionFit): void {
    writeFileAtomic(this.file(PREDICTION_FIT_FILE), JSON.stringify({ ...this.readPredictionFits(), [step]: fit }, null, 2));
  }

  /** The records of metrics.jsonl (a torn last line, which the run's resume repairs, left out). */
  readMetrics(): MetricsLine[] {
    return parseMetrics(this.metrics, () => {}).map(({ rec }) => rec);
  }

  /** metrics.jsonl lines of steps before `step`, as written (a crash after the last checkpoint leaves later ones). */
  keptMetrics(step: number, log: (l: string) => void): string[] {
    return parseMetrics(this.metrics, log)
      .filter(({ rec }) => typeof rec.step === 'number' && rec.step < step)
      .map(({ line }) => line);
  }

  /** Starts metrics.jsonl again with the kept lines of a resume ([] for a new run). */
  restartMetrics(kept: string[]): void {
    writeFileAtomic(this.metrics, kept.map((l) => `${l}\n`).join(''));
  }

  appendMetrics(record: object): void {
    try {
      fs.appendFileSync(this.metrics, `${JSON.stringify(record)}\n`);
    } catch (e) {
      throw new Error(`cannot append to ${this.metrics}: ${(e as NodeJS.ErrnoException).code ?? e} (free disk space, then --resume)`);
    }
  }

  /** The CAPI run's state, from its checkpoint, config and metrics. */
  status(): RunStatus {
    if (!fs.existsSync(this.checkpoint)) return { status: 'absent', step: 0 };
    const total = this.readConfig()?.totalSteps ?? Number.POSITIVE_INFINITY;
    const step = (this.readMetrics().at(-1)?.step ?? -1) + 1;
    return { status: step >= total ? 'done' : 'partial', step };
  }

  /** Whether the folder holds a finished supervised run. */
  supervisedDone(): boolean {
    return fs.existsSync(this.supervisedRecord);
  }

  writeSupervisedRecord(record: { steps: number; seconds: number }): void {
    writeFileAtomic(this.supervisedRecord, JSON.stringify(record));
  }

  /** Removes what interrupted atomic writes left in the folder and its export; returns their paths. */
  removeStaleTempFiles(): string[] {
    return [this.dir, this.teacher].flatMap((d) => removeStaleTempFiles(d));
  }

  /**
   * A new run writes only into an empty folder or one of an earlier run that never checkpointed:
   * a config.json that is not a capi-ts run's, or any other file, is the user's.
   */
  checkNoForeignFiles(): void {
    const foreign = fs.readdirSync(this.dir).filter((f) => !RUN_FOLDER_ENTRIES.has(f) && !/\.tmp-\d+/.test(f));
    const ours = (c: Record<string, unknown> | undefined) => !!c && 'totalSteps' in c && 'train' in c && 'model' in c;
    if (this.hasConfig() && !ours(this.readConfig() as Record<string, unknown> | undefined)) foreign.unshift(CONFIG_FILE);
    if (foreign.length)
      throw new Error(
        `--out ${this.dir} holds files that are not a capi-ts run's (${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ', ...' : ''}): choose an empty or new folder`,
      );
  }

  /** Whether the teacher export reads back whole. */
  teacherExportReadable(): boolean {
    const dir = findTeacherExport(this.dir);
    if (!dir) return false;
    try {
      const exp = readTeacherExport(dir);
      tf.dispose(Object.values(exp.named));
      return true;
    } catch {
      return false;
    }
  }
}
