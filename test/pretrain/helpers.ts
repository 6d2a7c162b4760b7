import type { PretrainConfig } from '../../src/pretrain/config.js';
import { resolvePretrainConfig } from '../../src/pretrain/config.js';
import type { PretrainBatch } from '../../src/pretrain/step.js';
import { Rng } from '../../src/runtime/rng.js';

/** A small CAPI (28x28, patch 4) that trains in a fraction of a second per step. */
export function tinyConfig(overrides: Record<string, unknown> = {}): PretrainConfig {
  return resolvePretrainConfig('fmnist-tiny', {
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
    ...overrides,
  });
}

export function randomBatch(cfg: PretrainConfig, seed: number): PretrainBatch {
  const rng = new Rng(seed);
  const n = (cfg.model.imageSize / cfg.model.patchSize) ** 2;
  const len = n * 3 * cfg.model.patchSize ** 2;
  const patches = new Float32Array(cfg.train.batchSize * len);
  for (let i = 0; i < patches.length; i++) patches[i] = rng.normal();
  return { size: cfg.train.batchSize, patches };
}
