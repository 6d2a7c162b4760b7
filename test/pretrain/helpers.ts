import * as path from 'node:path';
import type { PretrainConfig } from '../../src/pretrain/config.js';
import { resolvePretrainConfig } from '../../src/pretrain/config.js';
import { type RunOptions, runPretraining } from '../../src/pretrain/loop.js';
import { disposeState } from '../../src/pretrain/step.js';
import type { PretrainBatch } from '../../src/pretrain/step.js';
import { backendInfo } from '../../src/runtime/backend.js';
import { kebabCase } from '../../src/runtime/schema.js';
import { Rng } from '../../src/runtime/rng.js';

/** The fields of a small CAPI (28x28, patch 4) that trains in a fraction of a second per step. */
export const TINY_FIELDS: Record<string, number> = {
  dim: 64,
  depth: 2,
  heads: 1,
  predDim: 64,
  predDepth: 1,
  predHeads: 1,
  registers: 4,
  numClusters: 32,
  batchSize: 16,
  numPredictions: 4,
};

export function tinyConfig(overrides: Record<string, unknown> = {}): PretrainConfig {
  return resolvePretrainConfig('fmnist-tiny', { ...TINY_FIELDS, ...overrides });
}

/** Trains a fresh tiny run on the Fashion-MNIST slice into `out`, quietly, and frees its state. */
export async function trainTinyRun(out: string, overrides: Record<string, unknown>, opts: Partial<RunOptions> = {}): Promise<void> {
  const cfg = tinyConfig({ dataDir: path.resolve('data/fmnist-slice'), ...overrides });
  const r = await runPretraining(cfg, { out, resume: false, stopAfter: 0, backend: backendInfo(), log: () => {}, ...opts });
  disposeState(r.state);
}

/** The same fields (with overrides) as command-line flags. */
export function tinyFlags(overrides: Record<string, number> = {}): string[] {
  return Object.entries({ ...TINY_FIELDS, ...overrides }).flatMap(([k, v]) => [`--${kebabCase(k)}`, String(v)]);
}

export function randomBatch(cfg: PretrainConfig, seed: number): PretrainBatch {
  const rng = new Rng(seed);
  const n = (cfg.model.imageSize / cfg.model.patchSize) ** 2;
  const len = n * 3 * cfg.model.patchSize ** 2;
  const patches = new Float32Array(cfg.train.batchSize * len);
  for (let i = 0; i < patches.length; i++) patches[i] = rng.normal();
  return { size: cfg.train.batchSize, patches };
}
