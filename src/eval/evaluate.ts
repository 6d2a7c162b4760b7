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
import { runningMs } from '../runtime/clock.js';
import { withFolderLock } from '../runtime/lock.js';
import type { EvalConfig } from './config.js';
import type { EvalResult } from './result.js';
import type { TaskName } from './tasks.js';
import { OPT_IN_PROBES, TASKS } from './tasks.js';

import type { Context, RowSource } from './context.js';
import type { RawImage } from '../data/dataset.js';
import type { ImageSource } from '../features/extract.js';
import { fillStore, openStoreFor } from '../features/extract.js';
import { Preempted } from '../segmentation/out-of-core.js';
import { defaultModelName, ownsUnit, toResult } from './context.js';
import { featureBatch, limit } from './feature-source.js';
import type { EvalHooks } from './hooks.js';
import { classificationRunner, MAJORITY_ROW } from './classification.js';
import { REFERENCE_ROWS, segmentationRunner } from './segmentation.js';

export type { EvalHooks, PcaPicture, Progress } from './hooks.js';
export { defaultModelName } from './context.js';
export { featureBatch } from './feature-source.js';

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
  build(): FeatureModel | Promise<FeatureModel>;
}

/**
 * The checkpoint, then (unless --no-baselines): the run's own step-0 weights (capi-ts runs), the
 * same architecture at the reference's random init, raw pixel patches, and the whole image.
 * The checkpoint's weights are read by its build(): baselines need only its config.
 */
function modelEntries(cfg: EvalConfig, enc: EncoderInfo, size: number, checkpointModel: () => Promise<FeatureModel>): ModelEntry[] {
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
async function openCheckpoint(cfg: EvalConfig, hooks: EvalHooks): Promise<{ enc: EncoderInfo; weights: () => Promise<LoadedEncoder> }> {
  const opts: LoadOptions = { preset: cfg.preset || undefined, imageSize: cfg.resolution || undefined, weights: cfg.weights };
  const needed = !hooks.skipModel?.(resultNames(cfg)[0]);
  const info = needed ? undefined : readEncoderInfo(cfg.checkpoint, opts);
  if (info) return { enc: info, weights: () => loadEncoder(cfg.checkpoint, opts) };
  const loaded = await loadEncoder(cfg.checkpoint, opts);
  if (needed) return { enc: loaded, weights: async () => loaded };
  tf.dispose(Object.values(loaded.params)); // a weights file without a config: read for its config only
  return { enc: loaded, weights: () => loadEncoder(cfg.checkpoint, opts) };
}

export async function evaluate(cfg: EvalConfig, hooks: EvalHooks): Promise<EvalResult[]> {
  // The tasks of a Slurm evaluation's extract and grid stages run side by side and write no results:
  // only units and store shards, each atomically.
  if (cfg.stage === 'extract' || cfg.stage === 'grid') return evaluateLocked(cfg, hooks);
  // One writer per row of an output folder: evaluations of other models (a Slurm study's jobs) may write beside it.
  const row = resultNames(cfg)[0].replace(/[^A-Za-z0-9._@-]+/g, '_');
  return withFolderLock(path.join(cfg.out, cfg.task, '.writers', row), 'evaluation', { takeOver: cfg.takeOver, log: hooks.log }, () =>
    evaluateLocked(cfg, hooks),
  );
}

async function evaluateLocked(cfg: EvalConfig, hooks: EvalHooks): Promise<EvalResult[]> {
  const task = TASKS[cfg.task];
  const probes = cfg.probes.length ? cfg.probes : task.probes.filter((p) => !OPT_IN_PROBES.includes(p));
  const { enc, weights } = await openCheckpoint(cfg, hooks);
  const checkpointModel = async () => {
    const { params, hash, config, step, source } = await weights();
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
  const entries = modelEntries(cfg, enc, size, checkpointModel);
  const names = resultNames(cfg, enc.runSeed !== undefined);
  if (cfg.stage === 'extract') {
    await extractStage(ctx, task, entries, names);
    return [];
  }
  const results: EvalResult[] = [];
  // A grid task of a Slurm evaluation writes units of work, not results.
  const emit = (r: EvalResult) => {
    if (cfg.stage === 'grid') return;
    results.push(r);
    hooks.onResult?.(r);
  };
  const perModel =
    task.kind === 'classification'
      ? await classificationRunner(ctx, task, emit)
      : await segmentationRunner(ctx, task, enc.config.patchSize, emit);
  // Built one at a time, so a large model and its random-init baseline are never in memory together.
  for (const [i, entry] of entries.entries()) {
    if (hooks.skipModel?.(names[i])) {
      hooks.log(`${names[i]}: result exists, skipped`);
      continue;
    }
    const model = await entry.build();
    try {
      const t0 = runningMs();
      const o = await perModel(model);
      o.seconds.total = (runningMs() - t0) / 1000;
      emit(toResult(ctx, model.name, model, entry, o));
    } finally {
      model.dispose();
    }
  }
  return results;
}

/** The images of a task's splits as its runners read them (same descriptions and sizes: the same stores). */
function splitImages(cfg: EvalConfig, task: (typeof TASKS)[TaskName]): ImageSource[] {
  const data = task.load(cfg);
  const images = (d: { description: string; size: number; load(i: number): Promise<unknown> }, n: number): ImageSource => {
    const l = limit(d, n);
    return {
      description: l.description,
      size: l.size,
      load: async (i) => {
        const x = (await l.load(i)) as { image?: RawImage } & RawImage;
        return x.image ?? x;
      },
    };
  };
  return [images(data.train, cfg.limitTrain), images(data.test, cfg.limitTest)];
}

/**
 * A Slurm extraction task: its share of every model's shards of both splits (round-robin over
 * all of them), each written as it is done; on preemption it stops after the shard in progress.
 */
async function extractStage(ctx: Context, task: (typeof TASKS)[TaskName], entries: ModelEntry[], names: string[]): Promise<void> {
  const { cfg, hooks, size } = ctx;
  if (!cfg.cacheDir) throw new Error('--stage extract writes the feature store: give --cache-dir a folder on the shared file system');
  const share = hooks.share ?? { task: 0, tasks: 1, preempted: () => false };
  const splits = splitImages(cfg, task);
  for (const [i, entry] of entries.entries()) {
    if (hooks.skipModel?.(names[i])) continue;
    const model = await entry.build();
    try {
      for (const [j, src] of splits.entries()) {
        const grid = Math.floor(size / model.patchSize);
        const opts = { size, transform: task.transform, cacheDir: cfg.cacheDir, shardImages: cfg.shardImages || undefined };
        const store = openStoreFor(model, src, opts, grid * grid, grid);
        const n = await fillStore(model, src, store, {
          ...opts,
          batchSize: featureBatch(cfg, model, size),
          log: hooks.log,
          shards: (shard) => ownsUnit(share, `${model.key}:${j}:${shard}`),
          preempted: share.preempted,
        });
        hooks.log(`${names[i]} ${j ? 'test' : 'train'}: ${n} shards extracted by task ${share.task} of ${share.tasks}`);
        if (share.preempted()) throw new Preempted();
      }
    } finally {
      model.dispose();
    }
  }
}
