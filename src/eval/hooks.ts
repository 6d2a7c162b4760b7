/**
 * What a caller of an evaluation gives it (src/eval/evaluate.ts): where progress, log lines,
 * PCA pictures and results go, and the share of the work that is this process's. Apart from
 * context.ts so that feature-source.ts, which context.ts uses, can report progress without
 * importing context.ts back.
 */
import type { EvalResult } from './result.js';

/** A phase's progress sink (the CLI draws a bar; tests may record). */
export interface Progress {
  update(done: number, info?: string): void;
}

/** A progress report that opens its bar at the first call, when the total is known. */
export function lazyProgress(hooks: Pick<EvalHooks, 'progress'>, label: string): (done: number, total: number, info?: string) => void {
  let bar: Progress | undefined;
  return (done, total, info) => {
    bar ??= hooks.progress(label, total);
    bar.update(done, info);
  };
}

/** An input image and its patch features, for a PCA picture (written by src/report/pca.ts). */
export interface PcaPicture {
  name: string;
  /** RGB bytes of the evaluation view, side `size`. */
  rgb: Uint8Array;
  size: number;
  /** [grid * grid, dim] */
  feats: Float32Array;
  grid: number;
  dim: number;
}

export interface EvalHooks {
  log(line: string): void;
  /** `initial`: units already done before this call (a resumed run), left out of the rate behind the ETA. */
  progress(label: string, total: number, initial?: number): Progress;
  /** Writes a PCA picture; returns its file. */
  savePca?(picture: PcaPicture): Promise<string>;
  /** Each model's result as soon as it is done. */
  onResult?(result: EvalResult): void;
  /** Leave out a row (a model, or the task's floor or ceiling) whose result already exists (a resumed study). */
  skipModel?(name: string): boolean;
  /** The command recorded with every result (default: this process's `npm run eval -- ...`). */
  command?: string;
  /** This process as one task of a Slurm array (stages extract and grid): its index, the array's size, preemption. */
  share?: TaskShare;
}

export interface TaskShare {
  task: number;
  tasks: number;
  /** True once the job was told to make way (USR1): stop after the current unit. */
  preempted(): boolean;
}
