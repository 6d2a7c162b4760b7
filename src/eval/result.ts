/** What one evaluation of one model produces (written by src/report/results.ts). */
import type { CodeVersion } from '../runtime/version.js';
import type { EvalDetails } from './details.js';
import type { MetricNotes, MetricQualities, Metrics } from './metrics.js';

/**
 * Version of the evaluation protocol as code (not config) defines it; a result of another version
 * is not the result today's evaluation would write. 2: the 39-point probe grid and the
 * half-schedule convergence test; 3: that test paired (the half run starts from the
 * chosen probe's own initial parameters and batches); absent: before.
 */
export const EVAL_PROTOCOL = 3;

export interface EvalResult {
  task: string;
  /** EVAL_PROTOCOL of the code that wrote it. */
  protocol?: number;
  /** Hash of its config's protocol fields (src/eval/config.ts protocolHash; absent in results written before it was recorded). */
  protocolHash?: string;
  model: string;
  /** 'capi' for a checkpoint, 'baseline' for init / random-init / pixel features, 'reference' for a task's floors and ceiling. */
  kind: 'capi' | 'baseline' | 'reference';
  source: string;
  /** Metric -> value (accuracies and mIoU in %). */
  metrics: Metrics;
  /** How each metric was produced (probe mode, selected hyper-parameters). */
  notes: MetricNotes;
  /** Each metric's standard error and selection flags (absent in results of the earliest versions). */
  quality?: MetricQualities;
  details: EvalDetails;
  config: Record<string, unknown>;
  seed: number;
  backend: unknown;
  seconds: Record<string, number>;
  /** The code that made it (absent in results written before it was recorded). */
  code?: CodeVersion;
  command: string;
  createdAt: string;
}
