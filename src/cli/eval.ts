/**
 * `npm run eval -- --task NAME --checkpoint RUN_OR_FILE [options]`: frozen-feature evaluation
 * with the paper's protocol (eval spec), for the checkpoint and the baselines, written under
 * <out>/<task>/. The protocol lives in src/eval; this file maps flags and outputs.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EvalConfigSchema } from '../eval/config.js';
import { evaluate } from '../eval/evaluate.js';
import { savePcaPicture } from '../report/pca.js';
import { writeResult } from '../report/results.js';
import { initBackend } from '../runtime/backend.js';
import { commandConfig, isMain, runMain } from './command.js';
import { ProgressBar } from './progress.js';

export const EVAL_COMMAND = {
  usage: 'npm run eval -- --task TASK --checkpoint RUN_OR_FILE [options]',
  summary:
    "Frozen-feature evaluation with the CAPI paper's protocol, for the checkpoint and (by default) two\n" +
    'baselines: the same architecture with random weights, and raw pixel patches.\n' +
    'Probes: classification attentive, linear, knn, predictor-pooling, pca; segmentation knn, logreg, pca.',
  schema: EvalConfigSchema,
};

export async function main(argv = process.argv.slice(2)): Promise<void> {
  const parsed = commandConfig(EVAL_COMMAND, argv);
  if (!parsed) return;
  const cfg = parsed.config;
  await initBackend(cfg.backend, cfg.threads);
  const pcaDir = path.join(cfg.out, cfg.task, 'pca');
  await evaluate(cfg, {
    log: (line) => console.error(line),
    progress: (label, total) => new ProgressBar(total, label),
    savePca: async (p) => {
      fs.mkdirSync(pcaDir, { recursive: true });
      const file = path.join(pcaDir, `${p.name.replace(/[^A-Za-z0-9._-]+/g, '_')}.png`);
      await savePcaPicture(file, p.rgb, 3, p.size, p.feats, p.grid, p.dim);
      return file;
    },
    onResult: (r) => {
      const file = writeResult(cfg.out, r);
      console.error(
        `${r.model}: ${Object.entries(r.metrics)
          .map(([k, v]) => `${k} ${v.toFixed(1)}`)
          .join(', ')} -> ${file}`,
      );
    },
  });
}

if (isMain(import.meta.url)) runMain(main);
