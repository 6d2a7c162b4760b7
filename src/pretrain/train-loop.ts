/**
 * The training loop both kinds of run share, driven by what differs between them (the CAPI run,
 * loop.ts; the supervised ceiling, supervised.ts): steps until the end, a stop request (SIGINT /
 * SIGTERM, or Slurm's SIGUSR1) or `stopAfter`; one metrics line a step on one clock (the running
 * clock: time the process was stopped is not training time), continued from the kept lines on
 * resume; a checkpoint every `checkpointEvery` steps, when stopped, and at the end where the
 * driver asks; a divergence stops it with the driver's message.
 */
import * as os from 'node:os';
import { runningMs } from '../runtime/clock.js';
import { elapsedBefore, type RunFolder } from './run-folder.js';

/** The clock of a step: its images per second (the step alone) and the run's training seconds so far. */
export interface StepClock {
  imagesPerSec: number;
  elapsedSec: number;
}

/** What one kind of run does at each point of the loop. */
export interface TrainDriver<M, R> {
  /** Steps done so far. */
  readonly step: number;
  readonly total: number;
  /**
   * One step on the batch of the current step (what the clock times): its metrics and the images it
   * saw. `lastSaved` is the last checkpoint's step (-1: none), for the messages of a failure.
   */
  trainStep(lastSaved: number): Promise<{ metrics: M; images: number }>;
  /** The step's metrics line: its metrics, the clock and what the driver measures beside them (not timed). */
  record(metrics: M, clock: StepClock): Promise<R>;
  /** Why the run cannot go on after this record (it diverged), or undefined. */
  divergence(record: R, lastSaved: number): string | undefined;
  /** Writes a checkpoint of the current step (`lastSaved`: the one before, -1 if none). */
  checkpoint(lastSaved: number): Promise<void>;
  /** Whether the last step is checkpointed too (the supervised run exports its encoder instead). */
  readonly checkpointAtEnd: boolean;
}

export interface LoopOptions<R> {
  /** Where the metrics lines go. */
  folder: RunFolder;
  /** Metrics lines of the steps before the first one run now (a resume's), [] for a new run. */
  kept: string[];
  /** The step of the checkpoint the run resumed from (-1: a new run). */
  resumedAt: number;
  /** Stop (with a checkpoint) once this many steps are done; 0: run to the end. */
  stopAfter: number;
  checkpointEvery: number;
  log: (line: string) => void;
  onStep?: (record: R, total: number) => void;
}

export interface LoopOutcome<R> {
  /** The records of the steps run now. */
  records: R[];
  /** It stopped before the last step (a checkpoint waits for a rerun). */
  stoppedEarly: boolean;
  /** The signal that stopped it (after its checkpoint), if one did. */
  interrupted?: NodeJS.Signals;
}

const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGUSR1'] as const;
/** A second signal this long after the first aborts without a checkpoint (earlier ones are the same Ctrl-C, relayed). */
const ABORT_AFTER_MS = 2000;

/**
 * SIGINT / SIGTERM (and SIGUSR1, Slurm's preemption warning): the first asks the loop to stop after
 * the current step; a later one aborts.
 */
export class StopRequest {
  signal?: NodeJS.Signals;
  private at = 0;
  private readonly handler = (signal: NodeJS.Signals) => {
    if (this.signal && Date.now() - this.at > ABORT_AFTER_MS) {
      process.stderr.write(`\n${signal} again: aborting without a checkpoint (the last one stays)\n`);
      process.exit(128 + (os.constants.signals[signal] ?? 15));
    }
    if (this.signal) return;
    this.signal = signal;
    this.at = Date.now();
    this.log(`\n${signal}: finishing this step, then writing a checkpoint (send it again after 2 s to abort)`);
  };

  constructor(private readonly log: (line: string) => void) {
    for (const s of STOP_SIGNALS) process.on(s, this.handler);
  }

  dispose(): void {
    for (const s of STOP_SIGNALS) process.off(s, this.handler);
  }
}

/** Lets signal handlers (and other events) run between synchronous steps. */
export const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export async function trainLoop<M, R extends object>(d: TrainDriver<M, R>, o: LoopOptions<R>): Promise<LoopOutcome<R>> {
  o.folder.restartMetrics(o.kept);
  const started = runningMs() - 1000 * elapsedBefore(o.kept);
  const stop = new StopRequest(o.log);
  const records: R[] = [];
  let lastSaved = o.resumedAt;
  const checkpoint = async () => {
    await d.checkpoint(lastSaved);
    lastSaved = d.step;
  };
  try {
    while (d.step < d.total) {
      await yieldToEventLoop();
      if (stop.signal) break;
      const t0 = runningMs();
      const { metrics, images } = await d.trainStep(lastSaved);
      const now = runningMs();
      const rec = await d.record(metrics, { imagesPerSec: images / ((now - t0) / 1000), elapsedSec: (now - started) / 1000 });
      records.push(rec);
      o.folder.appendMetrics(rec);
      o.onStep?.(rec, d.total);
      const diverged = d.divergence(rec, lastSaved);
      if (diverged) throw new Error(diverged);
      await yieldToEventLoop(); // a signal sent during the step is seen now
      const done = d.step >= d.total;
      const stopNow = stop.signal !== undefined || (o.stopAfter > 0 && d.step >= o.stopAfter);
      if (done ? d.checkpointAtEnd : stopNow || d.step % o.checkpointEvery === 0) await checkpoint();
      if (stopNow && !done) break;
    }
    // A signal seen before a step began: that step's checkpoint was not written yet.
    if (stop.signal && d.step < d.total && lastSaved !== d.step) await checkpoint();
  } finally {
    stop.dispose();
  }
  return { records, stoppedEarly: d.step < d.total, interrupted: stop.signal };
}
