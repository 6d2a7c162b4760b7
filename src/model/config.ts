/** Model shapes (method spec sections 2, 6, 11) as plain typed objects, with presets by name. */
import type { RopeMode } from './layers.js';

export interface ModelConfig {
  /** Input side in pixels (square images). */
  imageSize: number;
  patchSize: number;
  inChans: number;
  /** Encoder width d, depth L_e, heads h (head dim d / h). */
  dim: number;
  depth: number;
  heads: number;
  /** Predictor width d_p, depth L_p, heads. */
  predDim: number;
  predDepth: number;
  predHeads: number;
  mlpRatio: number;
  registers: number;
  normEps: number;
  ropeMode: RopeMode;
  ropeMaxFreq: number;
  ropeMinFreq: number;
  /** Map register coordinates into each image's visible bounding box (spec 2.3). */
  scaleRegistersToVisible: boolean;
  /** Number of prototypes K (student head and clustering head). */
  numClusters: number;
}

const base = {
  inChans: 3,
  mlpRatio: 4,
  normEps: 1e-5,
  ropeMode: 'reference' as RopeMode,
  ropeMaxFreq: 7,
  ropeMinFreq: 7e-4,
  scaleRegistersToVisible: true,
};

/**
 * fmnist-tiny: 28x28 Fashion-MNIST, patch 4 (7x7 = 49 tokens). Sized so that one epoch of the
 * 60k training images runs in about 20 minutes on the 2-thread wasm backend (see README).
 */
export const MODEL_PRESETS: Record<string, ModelConfig> = {
  'fmnist-tiny': {
    ...base, imageSize: 28, patchSize: 4, dim: 128, depth: 4, heads: 2,
    predDim: 128, predDepth: 2, predHeads: 2, registers: 4, numClusters: 256,
  },
  'vit-s14': {
    ...base, imageSize: 224, patchSize: 14, dim: 384, depth: 12, heads: 6,
    predDim: 384, predDepth: 6, predHeads: 6, registers: 16, numClusters: 16384,
  },
  'vit-b14': {
    ...base, imageSize: 224, patchSize: 14, dim: 768, depth: 12, heads: 12,
    predDim: 768, predDepth: 6, predHeads: 12, registers: 16, numClusters: 16384,
  },
  'vit-l14': {
    ...base, imageSize: 224, patchSize: 14, dim: 1024, depth: 24, heads: 16,
    predDim: 1024, predDepth: 12, predHeads: 16, registers: 16, numClusters: 16384,
  },
};

export function gridSize(cfg: Pick<ModelConfig, 'imageSize' | 'patchSize'>): number {
  return Math.floor(cfg.imageSize / cfg.patchSize);
}

/** Checks the invariants the model code relies on; throws one line naming the field. */
export function validateModelConfig(cfg: ModelConfig): void {
  const bad = (field: string, why: string) => {
    throw new Error(`invalid model config: ${field} ${why}`);
  };
  const posInt = ['imageSize', 'patchSize', 'dim', 'depth', 'heads', 'predDim', 'predDepth', 'predHeads', 'numClusters'] as const;
  for (const k of posInt) if (!Number.isInteger(cfg[k]) || cfg[k] <= 0) bad(k, `must be a positive integer (got ${cfg[k]})`);
  if (cfg.imageSize % cfg.patchSize !== 0) bad('imageSize', `must be a multiple of patchSize ${cfg.patchSize} (got ${cfg.imageSize})`);
  if (cfg.dim % cfg.heads !== 0) bad('dim', `must be divisible by heads ${cfg.heads} (got ${cfg.dim})`);
  if (cfg.predDim % cfg.predHeads !== 0) bad('predDim', `must be divisible by predHeads ${cfg.predHeads} (got ${cfg.predDim})`);
  if ((cfg.dim / cfg.heads) % 4 !== 0) bad('heads', `must give a head dim divisible by 4 for axial RoPE (got ${cfg.dim / cfg.heads})`);
  if ((cfg.predDim / cfg.predHeads) % 4 !== 0) bad('predHeads', `must give a head dim divisible by 4 (got ${cfg.predDim / cfg.predHeads})`);
  if (!Number.isInteger(cfg.registers) || cfg.registers < 0 || cfg.registers % 4 !== 0) {
    bad('registers', `must be a non-negative multiple of 4 (got ${cfg.registers})`);
  }
  if (cfg.ropeMode !== 'reference' && cfg.ropeMode !== 'axial') bad('ropeMode', `must be 'reference' or 'axial' (got ${cfg.ropeMode})`);
}
