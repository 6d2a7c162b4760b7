/**
 * What the evaluation runners share (src/eval/classification.ts, src/eval/segmentation.ts):
 * the per-evaluation context (with the hooks a caller gives: hooks.ts), the share of a task's
 * units a process owns, and a model's outcome and how it becomes a result (its features:
 * feature-source.ts).
 */
import type { EvalDetails } from './details.js';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import type { FeatureModel } from '../features/models.js';
import { backendInfo } from '../runtime/backend.js';
import type { EvalConfig } from './config.js';
import { EXECUTION_FIELDS, protocolHash } from './config.js';
import type { MetricNotes, MetricQualities, Metrics } from './metrics.js';
import type { EvalResult } from './result.js';
import { EVAL_PROTOCOL } from './result.js';
import { TASKS } from './tasks.js';
import { shellCommand } from '../runtime/shell.js';
import { codeVersion } from '../runtime/version.js';
import { featureBatch } from './feature-source.js';
import type { EvalHooks, TaskShare } from './hooks.js';

/** Whether a unit (by name) is this task's: a stable hash of its name, round-robin over the tasks. */
export function ownsUnit(share: TaskShare, name: string): boolean {
  let h = 2166136261;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619);
  return (h >>> 0) % share.tasks === share.task;
}

/**
 * Where a model's units of dense work are kept for the tasks of one Slurm evaluation: under the
 * output folder, by what defines the work (the config but how it is run) and the model.
 */
export function unitsDir(cfg: EvalConfig, modelKey: string): string {
  const defining = Object.fromEntries(
    Object.entries(cfg).filter(
      ([k]) => !(EXECUTION_FIELDS as readonly string[]).includes(k) && !['name', 'out', 'overwrite', 'takeOver', 'pcaImages'].includes(k),
    ),
  );
  const hash = (x: string) => createHash('sha256').update(x).digest('hex').slice(0, 16);
  return path.join(cfg.out, cfg.task, '.work', hash(JSON.stringify(defining)), hash(modelKey));
}

/** The default row name: the checkpoint's folder or file name (+ '-student'). */
export function defaultModelName(cfg: Pick<EvalConfig, 'checkpoint' | 'weights'>): string {
  const base = path.basename(cfg.checkpoint.replace(/[/\\]+$/, '')).replace(/\.(pth|pt|safetensors)$/, '');
  return cfg.weights === 'student' ? `${base}-student` : base;
}

/** Everything of a model's evaluation that goes into its result. */
export interface Outcome {
  metrics: Metrics;
  notes: MetricNotes;
  quality: MetricQualities;
  details: EvalDetails;
  seconds: Record<string, number>;
}

export const newOutcome = (): Outcome => ({ metrics: {}, notes: {}, quality: {}, details: {}, seconds: {} });

/** Where a row comes from: a model (capi, baseline) or a task reference. */
export interface RowSource {
  kind: EvalResult['kind'];
  source: string;
}

export interface Context {
  cfg: EvalConfig;
  hooks: EvalHooks;
  size: number;
  probes: readonly EvalConfig['probes'][number][];
}

export function toResult(ctx: Context, name: string, model: FeatureModel | undefined, entry: RowSource, o: Outcome): EvalResult {
  const { cfg, size } = ctx;
  const { backend, threads } = cfg;
  const rest = Object.fromEntries(Object.entries(cfg).filter(([k]) => !(EXECUTION_FIELDS as readonly string[]).includes(k)));
  const segmentation = TASKS[cfg.task].kind === 'segmentation';
  return {
    task: cfg.task,
    protocol: EVAL_PROTOCOL,
    protocolHash: protocolHash(cfg),
    // Reference-mode probes are another protocol: their own row (and file) next to the fast one.
    model: cfg.probeMode === 'reference' && !segmentation ? `${name} (reference probes)` : name,
    kind: entry.kind,
    source: entry.source,
    metrics: o.metrics,
    notes: o.notes,
    quality: o.quality,
    details: o.details,
    config: {
      ...rest,
      name: cfg.name || defaultModelName(cfg),
      resolution: size,
      ...(model ? { featureBatch: featureBatch(cfg, model, size) } : {}),
    },
    seed: cfg.seed,
    backend: { ...backendInfo(), requested: backend, threads },
    code: codeVersion(),
    seconds: o.seconds,
    command: ctx.hooks.command ?? shellCommand(['npm', 'run', 'eval', '--', ...process.argv.slice(2)]),
    createdAt: new Date().toISOString(),
  };
}

export type ModelRunner = (model: FeatureModel) => Promise<Outcome>;
