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
import { CHECKPOINT_FILE } from '../src/model/io/run-files.js';
import { measurePredictionFit } from '../src/pretrain/prediction-fit.js';
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
  const file = path.join(c.run, CHECKPOINT_FILE);
  if (!fs.existsSync(file)) throw new Error(`${file} does not exist: --run takes a pretraining run folder (npm run pretrain -- --out DIR)`);
  const { step, total, fit } = await measurePredictionFit(c.run, c.batches);
  console.log(`run: ${c.run} at step ${step} of ${total}; ${fit.patches} predicted patches of ${c.batches} batches`);
  console.log(`predictions' KL to the targets (nats): ${fit.kl.toFixed(3)}`);
  console.log(`image-blind prediction's KL (the batch's mean target): ${fit.marginalKl.toFixed(3)}`);
  console.log(`share of the image-blind KL the predictor removes: ${(1 - fit.kl / fit.marginalKl).toFixed(3)}`);
  console.log(`argmax agreement: ${fit.argmaxAgreement.toFixed(3)} (chance ${(1 / fit.clusters).toFixed(3)})`);
  console.log(`entropy (nats): targets ${fit.targetEntropy.toFixed(3)}, predictions ${fit.predictionEntropy.toFixed(3)}`);
}

if (isMain(import.meta.url)) runMain(main);
