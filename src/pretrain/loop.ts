/**
 * The pretraining run: data, steps, metrics (JSONL, one line per step), checkpoints every K
 * steps and at the end (atomic), resume, NaN guard, and a clean stop on SIGINT.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { BackendInfo } from '../runtime/backend.js';
import type { PretrainConfig } from './config.js';
import { writeFileAtomic } from '../runtime/atomic.js';
import { CHECKPOINT_FILE, exportTeacher, loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { BatchSampler, loadPretrainBatch, openPretrainDataset } from './data.js';
import type { CapiState, StepMetrics } from './step.js';
import { initState, stepMaskCounts, totalSteps, trainStep } from './step.js';
import { trainFlopsPerImage } from './flops.js';

export interface RunOptions {
  out: string;
  resume: boolean;
  /** Stop (with a checkpoint) once this many steps are done; 0: run to the end. */
  stopAfter: number;
  backend: BackendInfo;
  log: (line: string) => void;
  onStep?: (m: StepRecord, total: number) => void;
}

export interface StepRecord extends StepMetrics {
  imagesPerSec: number;
  elapsedSec: number;
}

export interface RunResult {
  state: CapiState;
  config: PretrainConfig;
  records: StepRecord[];
  totalSteps: number;
  stoppedEarly: boolean;
}

/** How many consecutive non-finite losses abort the run (spec 13: "more than 2"). */
const MAX_NAN_STEPS = 3;

export async function runPretraining(requested: PretrainConfig, opts: RunOptions): Promise<RunResult> {
  fs.mkdirSync(opts.out, { recursive: true });
  const ckptFile = path.join(opts.out, CHECKPOINT_FILE);
  let cfg = requested;
  let state: CapiState;
  if (opts.resume) {
    const loaded = loadCheckpoint(ckptFile);
    state = loaded.state;
    cfg = loaded.config;
    opts.log(`resumed ${ckptFile} at step ${state.step}`);
  } else {
    if (fs.existsSync(ckptFile)) {
      throw new Error(`${ckptFile} already exists: pass --resume to continue that run, or choose another --out`);
    }
    state = initState(cfg);
  }
  const dataset = openPretrainDataset(cfg.train, cfg.model.imageSize);
  const total = totalSteps(cfg, dataset.size);
  const sampler = new BatchSampler(dataset.size, cfg.train.batchSize, cfg.train.seed);
  const counts = stepMaskCounts(cfg);
  const flops = trainFlopsPerImage(cfg.model, counts);
  writeFileAtomic(
    path.join(opts.out, 'config.json'),
    JSON.stringify(
      {
        ...cfg,
        backend: opts.backend,
        dataset: dataset.description,
        datasetSize: dataset.size,
        totalSteps: total,
        stepsPerEpoch: sampler.stepsPerEpoch,
        masking: counts,
        trainGflopPerImage: flops / 1e9,
      },
      null,
      2,
    ),
  );
  opts.log(`data: ${dataset.description}, ${dataset.size} images, ${sampler.stepsPerEpoch} steps/epoch, ${total} steps total`);
  opts.log(`masking: ${counts.nVisible} visible / ${counts.nMasked} masked of ${counts.nTokens}, ${counts.nPredict} predictions per image`);

  // Metrics of steps beyond the checkpoint (a crash after the last save) are dropped on resume.
  const metricsFile = path.join(opts.out, 'metrics.jsonl');
  const kept =
    fs.existsSync(metricsFile) && opts.resume
      ? fs
          .readFileSync(metricsFile, 'utf8')
          .split('\n')
          .filter((l) => l && JSON.parse(l).step < state.step)
      : [];
  writeFileAtomic(metricsFile, kept.map((l) => `${l}\n`).join(''));

  let interrupted = false;
  const onSigint = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    opts.log('\ninterrupt: finishing this step and writing a checkpoint (Ctrl-C again to abort)');
  };
  process.on('SIGINT', onSigint);
  const save = async () => {
    saveCheckpoint(opts.out, state, cfg, opts.backend);
    await exportTeacher(opts.out, state, cfg.model, { step: state.step, seed: cfg.train.seed, backend: opts.backend, preset: cfg.preset });
  };

  const records: StepRecord[] = [];
  const started = performance.now();
  let nanSteps = 0;
  let stoppedEarly = false;
  try {
    while (state.step < total) {
      const t0 = performance.now();
      const batch = await loadPretrainBatch(dataset, sampler, cfg, state.step);
      const m = trainStep(state, batch, cfg, total);
      const dt = (performance.now() - t0) / 1000;
      const rec: StepRecord = { ...m, imagesPerSec: batch.size / dt, elapsedSec: (performance.now() - started) / 1000 };
      records.push(rec);
      fs.appendFileSync(metricsFile, `${JSON.stringify(rec)}\n`);
      opts.onStep?.(rec, total);
      nanSteps = Number.isFinite(m.capiLoss) && Number.isFinite(m.clusteringLoss) ? 0 : nanSteps + 1;
      if (nanSteps >= MAX_NAN_STEPS) {
        throw new Error(
          `training diverged: non-finite loss for ${nanSteps} consecutive steps at step ${m.step}; lower --lr or check the data`,
        );
      }
      const done = state.step >= total;
      const stop = interrupted || (opts.stopAfter > 0 && state.step >= opts.stopAfter);
      if (done || stop || state.step % cfg.train.checkpointEvery === 0) await save();
      if (stop && !done) {
        stoppedEarly = true;
        break;
      }
    }
  } finally {
    process.off('SIGINT', onSigint);
  }
  if (tf.memory().numTensors > 10_000) opts.log(`warning: ${tf.memory().numTensors} live tensors`);
  return { state, config: cfg, records, totalSteps: total, stoppedEarly };
}
