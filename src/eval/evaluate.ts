/**
 * evaluate(cfg): the evaluation counterpart of the pretraining loop. Loads the task's data, its
 * labels and (dense tasks) patch labels once; then, for the checkpoint and each baseline in
 * turn, extracts features (or reads them from the cache) and runs only the classifiers the
 * probes ask for (DINOv2's split: protocol on features -> with a model -> main). The runners per
 * task kind are in classification.ts and segmentation.ts; what they share in context.ts.
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { FeatureModel } from '../features/models.js';
import {
  capiFeatureModel,
  initCapiFeatureModel,
  pixelFeatureModel,
  pixelImageFeatureModel,
  randomCapiFeatureModel,
} from '../features/models.js';
import type { EncoderInfo, LoadedEncoder, LoadOptions } from '../model/io/load.js';
import { loadEncoder, readEncoderInfo } from '../model/io/load.js';
import { withFolderLock } from '../runtime/lock.js';
import type { EvalConfig } from './config.js';
import type { EvalResult } from './result.js';
import { OPT_IN_PROBES, TASKS } from './tasks.js';

import type { Context, RowSource } from './context.js';
import { defaultModelName, toResult } from './context.js';
import type { EvalHooks } from './context.js';
import { classificationRunner, MAJORITY_ROW } from './classification.js';
import { REFERENCE_ROWS, segmentationRunner } from './segmentation.js';

export type { EvalHooks, PcaPicture, Progress } from './context.js';
export { defaultModelName, featureBatch } from './context.js';

/** The row names evaluate() will write (checkpoint, baselines, a dense task's references). */
export function resultNames(cfg: EvalConfig, canInit = true): string[] {
  const segmentation = TASKS[cfg.task].kind === 'segmentation';
  const names = [
    cfg.name || defaultModelName(cfg),
    ...(cfg.baselines ? [...(canInit ? ['init'] : []), 'random-init', 'pixel-patches', 'pixels'] : []),
    // The classification floor depends on no probe: written once, by the fast mode's evaluation.
    ...(segmentation || cfg.probeMode === 'reference' ? [] : [MAJORITY_ROW.name]),
  ];
  // Reference-mode probes are another protocol: their rows (and files) are named apart (context.ts toResult).
  const rows = names.map((n) => (cfg.probeMode === 'reference' && !segmentation ? `${n} (reference probes)` : n));
  return segmentation ? [...rows, ...Object.values(REFERENCE_ROWS).map((r) => r.name)] : rows;
}

interface ModelEntry extends RowSource {
  build(): FeatureModel;
}

/**
 * The checkpoint, then (unless --no-baselines): the run's own step-0 weights (capi-ts runs), the
 * same architecture at the reference's random init, raw pixel patches, and the whole image.
 * The checkpoint's weights are read by its build(): baselines need only its config.
 */
function modelEntries(cfg: EvalConfig, enc: EncoderInfo, size: number, checkpointModel: () => FeatureModel): ModelEntry[] {
  const models: ModelEntry[] = [{ build: checkpointModel, kind: 'capi', source: enc.source }];
  if (cfg.baselines) {
    const seed = enc.runSeed;
    if (seed !== undefined) {
      models.push({
        build: () => initCapiFeatureModel(enc.config, seed),
        kind: 'baseline',
        source: `the run's own step-0 weights (seed ${seed}): the gap is what training did`,
      });
    }
    models.push({
      build: () => randomCapiFeatureModel(enc.config, cfg.seed),
      kind: 'baseline',
      source: 'same architecture, reference init, no training',
    });
    const p = enc.config.patchSize;
    models.push({ build: () => pixelFeatureModel(p), kind: 'baseline', source: `raw normalised ${p}x${p} pixel patches` });
    models.push({
      build: () => pixelImageFeatureModel(p, size),
      kind: 'baseline',
      source: `the whole normalised ${size}x${size} image flattened (the pred-pool columns hold it); patches: pixel patch + position`,
    });
  }
  return models;
}

/**
 * The checkpoint's config, and its weights when they are needed. A study continued on another
 * machine keeps a run's record, not its weights: once the checkpoint's own row exists, its
 * baselines need only the config.
 */
function openCheckpoint(cfg: EvalConfig, hooks: EvalHooks): { enc: EncoderInfo; weights: () => LoadedEncoder } {
  const opts: LoadOptions = { preset: cfg.preset || undefined, imageSize: cfg.resolution || undefined, weights: cfg.weights };
  const needed = !hooks.skipModel?.(resultNames(cfg)[0]);
  const info = needed ? undefined : readEncoderInfo(cfg.checkpoint, opts);
  if (info) return { enc: info, weights: () => loadEncoder(cfg.checkpoint, opts) };
  const loaded = loadEncoder(cfg.checkpoint, opts);
  if (needed) return { enc: loaded, weights: () => loaded };
  tf.dispose(Object.values(loaded.params)); // a weights file without a config: read for its config only
  return { enc: loaded, weights: () => loadEncoder(cfg.checkpoint, opts) };
}

export async function evaluate(cfg: EvalConfig, hooks: EvalHooks): Promise<EvalResult[]> {
  // One writer per output folder (a study that evaluates in its own results folder shares its lock).
  return withFolderLock(path.join(cfg.out, cfg.task), 'evaluation', { takeOver: cfg.takeOver, log: hooks.log }, () =>
    evaluateLocked(cfg, hooks),
  );
}

async function evaluateLocked(cfg: EvalConfig, hooks: EvalHooks): Promise<EvalResult[]> {
  const task = TASKS[cfg.task];
  const probes = cfg.probes.length ? cfg.probes : task.probes.filter((p) => !OPT_IN_PROBES.includes(p));
  const { enc, weights } = openCheckpoint(cfg, hooks);
  const checkpointModel = () => {
    const { params, hash, config, step, source } = weights();
    if (cfg.checkpointStep && step !== cfg.checkpointStep) {
      tf.dispose(Object.values(params));
      throw new Error(
        `--checkpoint-step ${cfg.checkpointStep}: ${source} is ${step === undefined ? 'not a capi-ts run' : `at step ${step}`}; evaluate the run when it is at that step`,
      );
    }
    return capiFeatureModel(cfg.name || defaultModelName(cfg), hash, params, config);
  };
  const size = cfg.resolution || task.resolution(enc.config.imageSize);
  if (size % enc.config.patchSize !== 0)
    throw new Error(`--resolution ${size} is not a multiple of the patch size ${enc.config.patchSize}`);
  hooks.log(`model: ${enc.source}`);
  const ctx: Context = { cfg, hooks, size, probes };
  const results: EvalResult[] = [];
  const emit = (r: EvalResult) => {
    results.push(r);
    hooks.onResult?.(r);
  };
  const perModel =
    task.kind === 'classification'
      ? await classificationRunner(ctx, task, emit)
      : await segmentationRunner(ctx, task, enc.config.patchSize, emit);
  // Built one at a time, so a large model and its random-init baseline are never in memory together.
  const entries = modelEntries(cfg, enc, size, checkpointModel);
  const names = resultNames(cfg, enc.runSeed !== undefined);
  for (const [i, entry] of entries.entries()) {
    if (hooks.skipModel?.(names[i])) {
      hooks.log(`${names[i]}: result exists, skipped`);
      continue;
    }
    const model = entry.build();
    try {
      const t0 = performance.now();
      const o = await perModel(model);
      o.seconds.total = (performance.now() - t0) / 1000;
      emit(toResult(ctx, model.name, model, entry, o));
    } finally {
      model.dispose();
    }
  }
  return results;
}
