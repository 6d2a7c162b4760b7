/** Nominal training FLOPs per image (method spec 12), for images/s -> GFLOP/s and MFU. */
import type { ModelConfig } from '../model/config.js';
import type { MaskCounts } from './masking.js';

/** Self-attention block on n tokens of width d: 24 n d^2 + 4 n^2 d. */
export function blockFlops(n: number, d: number): number {
  return 24 * n * d * d + 4 * n * n * d;
}

export function trainFlopsPerImage(m: ModelConfig, c: MaskCounts): number {
  const n = c.nTokens;
  const r = m.registers;
  const d = m.dim;
  const dp = m.predDim;
  const k = m.numClusters;
  const q = c.nPredict;
  const ctx = c.nVisible + r;
  const fPe = 2 * n * m.inChans * m.patchSize ** 2 * d;
  const fEncFull = m.depth * blockFlops(n + r, d) + fPe;
  const fPred = m.predDepth * (20 * q * dp * dp + 4 * ctx * d * dp + 4 * q * ctx * dp);
  return fEncFull + 3 * m.depth * blockFlops(ctx, d) + 2 * fPe + 3 * fPred + 6 * q * dp * k + 4 * n * d * k;
}
