/**
 * `npm run bench:prediction-fit -- --run DIR [--batches 4]`: how well a run's predictor fits its
 * targets (src/pretrain/prediction-fit.ts), a figure a line: on the batches the run would have
 * trained on next (its own data pipeline and masks), the predictions' mean KL to the SK targets
 * beside the KL of the image-blind prediction (every patch the batch's mean target), the share of
 * that the predictor removes, the argmax agreement and both entropies.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { commandConfig, isMain, runMain } from '../src/cli/command.js';
import { loadCheckpoint } from '../src/pretrain/checkpoint.js';
import { BatchSampler, loadPretrainBatch, openPretrainDataset } from '../src/pretrain/data.js';
import type { PredictionFit } from '../src/pretrain/prediction-fit.js';
import { predictionFit } from '../src/pretrain/prediction-fit.js';
import { disposeState, totalSteps } from '../src/pretrain/step.js';
import { BACKEND_FIELDS, initBackend } from '../src/runtime/backend.js';

export const BENCH_PREDICTION_FIT = {
  usage: 'npm run bench:prediction-fit -- --run DIR [--batches N]',
  summary: "How well a run's predictor fits its targets, against the image-blind prediction.",
  schema: z.object({
    run: z.string().min(1).describe('a pretraining run folder (its checkpoint.safetensors)'),
    batches: z.number().int().min(1).default(4).describe('batches measured (the run would have trained on them next)'),
    ...BACKEND_FIELDS,
  }),
};

export async function main(argv = process.argv.slice(2)): Promise<void> {
  const parsed = commandConfig(BENCH_PREDICTION_FIT, argv);
  if (!parsed) return;
  const c = parsed.config;
  await initBackend(c.backend, c.threads);
  const file = path.join(c.run, 'checkpoint.safetensors');
  if (!fs.existsSync(file)) throw new Error(`${file} does not exist: --run takes a pretraining run folder (npm run pretrain -- --out DIR)`);
  const { state, config: cfg } = loadCheckpoint(file);
  const { dataset } = await openPretrainDataset(cfg.train, cfg.model.imageSize);
  const sampler = new BatchSampler(dataset.size, cfg.train.batchSize, cfg.train.seed);
  const total = totalSteps(cfg, dataset.size);
  const fits: PredictionFit[] = [];
  for (let t = total; t < total + c.batches; t++)
    fits.push(await predictionFit(state, cfg, await loadPretrainBatch(dataset, sampler, cfg, t), t));
  disposeState(state);
  const mean = (f: (x: PredictionFit) => number) =>
    fits.reduce((a, x) => a + f(x) * x.patches, 0) / fits.reduce((a, x) => a + x.patches, 0);
  const [kl, blind] = [mean((x) => x.kl), mean((x) => x.marginalKl)];
  console.log(
    `run: ${c.run} at step ${state.step} of ${total}; ${fits.reduce((a, x) => a + x.patches, 0)} predicted patches of ${c.batches} batches`,
  );
  console.log(`predictions' KL to the targets (nats): ${kl.toFixed(3)}`);
  console.log(`image-blind prediction's KL (the batch's mean target): ${blind.toFixed(3)}`);
  console.log(`share of the image-blind KL the predictor removes: ${(1 - kl / blind).toFixed(3)}`);
  console.log(`argmax agreement: ${mean((x) => x.argmaxAgreement).toFixed(3)} (chance ${(1 / cfg.model.numClusters).toFixed(3)})`);
  console.log(
    `entropy (nats): targets ${mean((x) => x.targetEntropy).toFixed(3)}, predictions ${mean((x) => x.predictionEntropy).toFixed(3)}`,
  );
}

if (isMain(import.meta.url)) runMain(main);
