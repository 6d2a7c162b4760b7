/**
 * Inverse-block masking with roll (method spec section 3). Runs on the CPU, one independent mask
 * per image; all counts are constant so the batch needs no padding.
 */
import type { Rng } from '../runtime/rng.js';

export interface MaskCounts {
  nTokens: number;
  nMasked: number;
  nVisible: number;
  nPredict: number;
}

/** Spec 3.1: n_mask = floor(N r), n_v = N - n_mask, n_q = floor(n_mask s) unless given. */
export function maskCounts(nTokens: number, maskRatio: number, predictionSubsampling: number, numPredictions = 0): MaskCounts {
  const nMasked = Math.floor(nTokens * maskRatio);
  const nPredict = numPredictions > 0 ? numPredictions : Math.floor(nMasked * predictionSubsampling);
  if (nPredict > nMasked) throw new Error(`invalid masking: ${nPredict} predictions but only ${nMasked} masked patches`);
  return { nTokens, nMasked, nVisible: nTokens - nMasked, nPredict };
}

export type MaskingMode = 'inverse-block' | 'block' | 'uniform';

/** Source of the five draws; `rng`-backed in training, recorded values in tests. */
export interface BlockDrawSource {
  uniform(lo: number, hi: number): number;
  randint(lo: number, hi: number): number;
}

export function rngDraws(rng: Rng): BlockDrawSource {
  return { uniform: (lo, hi) => rng.uniformIn(lo, hi), randint: (lo, hi) => rng.randint(lo, hi) };
}

/**
 * Block of exactly `nBlk` cells (spec 3.2), as a Uint8Array [H*W] with 1 inside the block.
 * With roll, the block is shifted circularly by random row and column offsets.
 */
export function sampleBlock(h: number, w: number, nBlk: number, roll: boolean, draw: BlockDrawSource): Uint8Array {
  const cells = new Uint8Array(h * w);
  if (nBlk === 0) return cells;
  const lo = Math.max(Math.log(0.5), Math.log(nBlk / (w * w)));
  const hi = Math.min(Math.log(2), Math.log((h * h) / (nBlk + 1e-5)));
  const aspect = Math.exp(draw.uniform(lo, hi));
  const bh = Math.min(h, Math.ceil(Math.sqrt(nBlk * aspect)));
  const bw = Math.min(w, Math.ceil(Math.sqrt(nBlk / aspect)));
  const top = draw.randint(0, h - bh);
  const left = draw.randint(0, w - bw);
  let kept = 0;
  for (let r = top; r < top + bh && kept < nBlk; r++) {
    for (let c = left; c < left + bw && kept < nBlk; c++) {
      cells[r * w + c] = 1;
      kept++;
    }
  }
  if (!roll) return cells;
  const dr = draw.randint(0, h - 1);
  const dc = draw.randint(0, w - 1);
  const rolled = new Uint8Array(h * w);
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) rolled[((r + dr) % h) * w + ((c + dc) % w)] = cells[r * w + c];
  }
  return rolled;
}

/** A mask [H*W] with 1 = masked, of exactly counts.nMasked cells. */
export function sampleMask(h: number, w: number, counts: MaskCounts, mode: MaskingMode, roll: boolean, rng: Rng): Uint8Array {
  if (mode === 'uniform') {
    const mask = new Uint8Array(h * w);
    rng
      .permutation(h * w)
      .slice(0, counts.nMasked)
      .forEach((i) => (mask[i] = 1));
    return mask;
  }
  if (mode === 'block') return sampleBlock(h, w, counts.nMasked, roll, rngDraws(rng));
  const visible = sampleBlock(h, w, counts.nVisible, roll, rngDraws(rng));
  return visible.map((v) => 1 - v);
}

export interface MaskedBatch {
  /** Per image: visible positions, ascending (raster order). */
  visible: Int32Array[];
  /** Per image: prediction positions, a random subset of the masked ones in random order. */
  predict: Int32Array[];
}

/** Visible and prediction positions for one image's mask (spec 3.4). */
export function splitMask(mask: Uint8Array, nPredict: number, rng: Rng): { visible: Int32Array; predict: Int32Array } {
  const visible: number[] = [];
  const masked: number[] = [];
  mask.forEach((m, i) => (m ? masked : visible).push(i));
  const order = rng.permutation(masked.length).slice(0, nPredict);
  return { visible: Int32Array.from(visible), predict: Int32Array.from(order, (o) => masked[o]) };
}

export function sampleMaskedBatch(
  b: number,
  h: number,
  w: number,
  counts: MaskCounts,
  mode: MaskingMode,
  roll: boolean,
  rng: Rng,
): MaskedBatch {
  const visible: Int32Array[] = [];
  const predict: Int32Array[] = [];
  for (let i = 0; i < b; i++) {
    const s = splitMask(sampleMask(h, w, counts, mode, roll, rng), counts.nPredict, rng);
    visible.push(s.visible);
    predict.push(s.predict);
  }
  return { visible, predict };
}
