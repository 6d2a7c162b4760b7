/**
 * CAPI encoder-predictor (method spec sections 2 and 6), written as pure functions of a flat
 * parameter map whose names and shapes are those of the reference's `EncoderDecoder` state dict
 * (spec 2.9, without the `backbone.` prefix). Linear weights are out x in.
 */
import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../runtime/rng.js';
import type { ModelConfig } from './config.js';
import {
  applyRope,
  gelu,
  linear,
  mergeHeads,
  rmsNorm,
  ropeAngles,
  ropeFrequencies,
  scaledDotProductAttention,
  splitHeads,
} from './layers.js';

export type Params = Record<string, tf.Tensor>;

export const encoderBlock = (i: number) => `encoder.blocks.${i}.`;
export const decoderBlock = (i: number) => `decoder.blocks.${i}.`;

/** Names and shapes of every backbone parameter, in the reference's state-dict order. */
export function backboneShapes(cfg: ModelConfig): [string, number[]][] {
  const { dim: d, predDim: dp, registers: r, patchSize: p, inChans: c } = cfg;
  const shapes: [string, number[]][] = [
    ['mask_token', [1, dp]],
    ['registers', [1, r, d]],
  ];
  const block = (prefix: string, width: number, ctxWidth: number, headDim: number) => {
    const h = cfg.mlpRatio * width;
    shapes.push(
      [`${prefix}residual1.norm.weight`, [width]],
      [`${prefix}residual1.fn.q_proj.weight`, [width, width]],
      [`${prefix}residual1.fn.k_proj.weight`, [width, ctxWidth]],
      [`${prefix}residual1.fn.v_proj.weight`, [width, ctxWidth]],
      [`${prefix}residual1.fn.proj.weight`, [width, width]],
      [`${prefix}residual1.fn.rope.freqs`, [2, headDim]],
      [`${prefix}residual2.norm.weight`, [width]],
      [`${prefix}residual2.fn.fc1.weight`, [h, width]],
      [`${prefix}residual2.fn.fc2.weight`, [width, h]],
    );
  };
  for (let i = 0; i < cfg.depth; i++) block(encoderBlock(i), d, d, d / cfg.heads);
  for (let i = 0; i < cfg.predDepth; i++) block(decoderBlock(i), dp, d, dp / cfg.predHeads);
  shapes.push(['patch_embed.weight', [d, c, p, p]], ['patch_embed.bias', [d]]);
  return shapes;
}

function xavierUniform(rng: Rng, fanOut: number, fanIn: number, size: number): Float32Array {
  const a = Math.sqrt(6 / (fanIn + fanOut));
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) out[i] = rng.uniformIn(-a, a);
  return out;
}

function normalArray(rng: Rng, std: number, size: number): Float32Array {
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) out[i] = std * rng.normal();
  return out;
}

/** The reference's initialisation (spec 2.8), drawn from `rng`. */
export function initBackbone(cfg: ModelConfig, rng: Rng): Params {
  const params: Params = {};
  for (const [name, shape] of backboneShapes(cfg)) {
    const size = shape.reduce((a, b) => a * b, 1);
    let values: Float32Array;
    if (name === 'mask_token' || name === 'registers') values = normalArray(rng, 0.02, size);
    else if (name.endsWith('norm.weight')) values = new Float32Array(size).fill(1);
    else if (name.endsWith('rope.freqs')) values = ropeFrequencies(shape[1], cfg.ropeMaxFreq, cfg.ropeMinFreq);
    else if (name === 'patch_embed.bias') {
      const fanIn = cfg.inChans * cfg.patchSize ** 2;
      const a = 1 / Math.sqrt(fanIn);
      values = new Float32Array(size);
      for (let i = 0; i < size; i++) values[i] = rng.uniformIn(-a, a);
    } else values = xavierUniform(rng, shape[0], size / shape[0], size);
    params[name] = tf.tensor(values, shape);
  }
  return params;
}

/** Randomly drops whole samples from a residual branch: the reference's "efficient" drop path (spec 2.6). */
export interface DropPath {
  rate: number;
  rng: Rng;
}

/**
 * x + branch(x) where, with drop path, the branch only runs on a random subset of n_keep samples
 * and its output is scaled by B / n_keep. `select` gathers any per-sample tensor (context, RoPE
 * angles) with the same subset.
 */
function residual(
  x: tf.Tensor,
  drop: DropPath | undefined,
  branch: (xs: tf.Tensor, select: (t: tf.Tensor) => tf.Tensor) => tf.Tensor,
): tf.Tensor {
  const b = x.shape[0]!;
  if (!drop || drop.rate <= 0)
    return tf.add(
      x,
      branch(x, (t) => t),
    );
  const nKeep = Math.max(Math.floor(b * (1 - drop.rate)), 1);
  const keep = drop.rng.permutation(b).slice(0, nKeep);
  // Position of each sample in the kept subset, or nKeep (a zero row) when dropped.
  const slot = new Int32Array(b).fill(nKeep);
  keep.forEach((s, i) => (slot[s] = i));
  const keepT = tf.tensor1d(keep, 'int32');
  const select = (t: tf.Tensor) => tf.gather(t, keepT);
  const out = tf.mul(branch(select(x), select), b / nKeep);
  const padded = tf.concat([out, tf.zeros([1, ...out.shape.slice(1)])]);
  return tf.add(x, tf.gather(padded, tf.tensor1d(slot, 'int32')));
}

interface Rope {
  cos: tf.Tensor;
  sin: tf.Tensor;
}

function attention(
  p: Params,
  prefix: string,
  xq: tf.Tensor,
  xkv: tf.Tensor,
  rq: Rope,
  rk: Rope,
  heads: number,
  cfg: ModelConfig,
): tf.Tensor {
  const w = (n: string) => p[`${prefix}residual1.fn.${n}.weight`];
  let q = splitHeads(linear(xq, w('q_proj')), heads);
  let k = splitHeads(linear(xkv, w('k_proj')), heads);
  const v = splitHeads(linear(xkv, w('v_proj')), heads);
  q = applyRope(q, rq.cos, rq.sin, cfg.ropeMode);
  k = applyRope(k, rk.cos, rk.sin, cfg.ropeMode);
  return linear(mergeHeads(scaledDotProductAttention(q, k, v)), w('proj'));
}

function mlp(p: Params, prefix: string, x: tf.Tensor): tf.Tensor {
  const h = gelu(linear(x, p[`${prefix}residual2.fn.fc1.weight`]));
  return linear(h, p[`${prefix}residual2.fn.fc2.weight`]);
}

/**
 * One pre-norm block. Self-attention when `context` is undefined; otherwise cross-attention of
 * the (normed) queries x to the (un-normed) context (spec 6).
 */
function block(
  p: Params,
  prefix: string,
  x: tf.Tensor,
  coords: tf.Tensor,
  heads: number,
  cfg: ModelConfig,
  drop: DropPath | undefined,
  context?: { tokens: tf.Tensor; coords: tf.Tensor },
): tf.Tensor {
  const freqs = p[`${prefix}residual1.fn.rope.freqs`];
  const rq = ropeAngles(coords, freqs);
  const rk = context ? ropeAngles(context.coords, freqs) : rq;
  x = residual(x, drop, (xs, sel) => {
    const xn = rmsNorm(xs, p[`${prefix}residual1.norm.weight`], cfg.normEps);
    const kv = context ? sel(context.tokens) : xn;
    const q = { cos: sel(rq.cos), sin: sel(rq.sin) };
    const k = context ? { cos: sel(rk.cos), sin: sel(rk.sin) } : q;
    return attention(p, prefix, xn, kv, q, k, heads, cfg);
  });
  return residual(x, drop, (xs) => mlp(p, prefix, rmsNorm(xs, p[`${prefix}residual2.norm.weight`], cfg.normEps)));
}

/** Patch embedding of already patchified pixels [B, n, C*p*p] (conv weight flattened as (c, i, j)). */
export function embedPatches(p: Params, patches: tf.Tensor): tf.Tensor {
  const w = p['patch_embed.weight'];
  return linear(patches, w.reshape([w.shape[0], -1]), p['patch_embed.bias']);
}

/** [registers; patch tokens]: [B, R + n, d]. */
export function prependRegisters(p: Params, tokens: tf.Tensor): tf.Tensor {
  const reg = p.registers;
  const b = tokens.shape[0]!;
  return tf.concat([tf.add(tf.zeros([b, reg.shape[1]!, reg.shape[2]!]), reg), tokens], 1);
}

/** Encoder blocks on tokens [B, T, d] with coordinates [B, T, 2]; returns the output before enc_norm. */
export function encoderBlocks(
  p: Params,
  cfg: ModelConfig,
  tokens: tf.Tensor,
  coords: tf.Tensor,
  drop?: DropPath,
  taps?: tf.Tensor[],
): tf.Tensor {
  return runBlocks(tokens, cfg.depth, (x, i) => block(p, encoderBlock(i), x, coords, cfg.heads, cfg, drop), taps);
}

/**
 * x -> f(x, 0) -> f(., 1) ... Without a gradient tape each block runs in its own tidy and the
 * previous block's output is freed, so only one block's intermediates are alive at a time (a
 * ViT-L/14 forward otherwise keeps all 24 blocks' activations in the wasm heap until it ends).
 */
function runBlocks(x0: tf.Tensor, depth: number, f: (x: tf.Tensor, i: number) => tf.Tensor, taps?: tf.Tensor[]): tf.Tensor {
  const scoped = !tf.engine().isTapeOn() && !taps;
  let x = x0;
  for (let i = 0; i < depth; i++) {
    if (!scoped) {
      x = f(x, i);
      taps?.push(x);
      continue;
    }
    const prev = x;
    x = tf.tidy(() => f(prev, i));
    if (prev !== x0) prev.dispose();
  }
  return x;
}

/** Predictor blocks: [MSK] queries at `queryCoords` [B, q, 2] attending to the normed context. */
export function predictorBlocks(
  p: Params,
  cfg: ModelConfig,
  queryCoords: tf.Tensor,
  context: tf.Tensor,
  contextCoords: tf.Tensor,
  drop?: DropPath,
  depth = cfg.predDepth,
  taps?: tf.Tensor[],
): tf.Tensor {
  const [b, q] = queryCoords.shape;
  const mask = p.mask_token;
  const x0 = tf.add(tf.zeros([b!, q!, mask.shape[1]!]), mask);
  const ctx = { tokens: context, coords: contextCoords };
  return runBlocks(x0, depth, (x, i) => block(p, decoderBlock(i), x, queryCoords, cfg.predHeads, cfg, drop, ctx), taps);
}

export const finalNorm = (x: tf.Tensor, cfg: ModelConfig) => rmsNorm(x, undefined, cfg.normEps);

/** Everything a batch needs besides pixels: which patches are visible and which are predicted. */
export interface StudentOutputs {
  /** enc_norm'd visible patch tokens [B, n_v, d]. */
  patchTokens: tf.Tensor;
  /** dec_norm'd predictions [(B * n_q), d_p], image-major. */
  predictions: tf.Tensor;
}

/**
 * Student pretraining forward (spec 1 steps 5-6). `visiblePatches` [B, n_v, C p^2] are the
 * visible patches in raster order; `encCoords` [B, R + n_v, 2] and `predCoords` [B, n_q, 2].
 */
export function studentForward(
  p: Params,
  cfg: ModelConfig,
  visiblePatches: tf.Tensor,
  encCoords: tf.Tensor,
  predCoords: tf.Tensor,
  drop?: DropPath,
): StudentOutputs {
  const tokens = prependRegisters(p, embedPatches(p, visiblePatches));
  const context = finalNorm(encoderBlocks(p, cfg, tokens, encCoords, drop), cfg);
  const r = cfg.registers;
  const patchTokens = context.slice([0, r, 0], [-1, -1, -1]);
  const pred = finalNorm(predictorBlocks(p, cfg, predCoords, context, encCoords, drop), cfg);
  return { patchTokens, predictions: pred.reshape([-1, cfg.predDim]) };
}

/** Teacher / full-image encoder: enc_norm'd tokens [B, R + N, d] (registers first). */
export function encodeFull(p: Params, cfg: ModelConfig, patches: tf.Tensor, coords: tf.Tensor): tf.Tensor {
  return finalNorm(encoderBlocks(p, cfg, prependRegisters(p, embedPatches(p, patches)), coords), cfg);
}

export interface EvalOutputs {
  /** Predictor pooling [B, d_p] (spec 2.7). */
  global: tf.Tensor;
  /** [B, R, d] */
  registers: tf.Tensor;
  /** [B, H', W', d] */
  featureMap: tf.Tensor;
}

/** The reference's hub forward (spec 2.7): global representation, registers and feature map. */
export function evalForward(p: Params, cfg: ModelConfig, patches: tf.Tensor, coords: tf.Tensor, gridH: number, gridW: number): EvalOutputs {
  const b = patches.shape[0]!;
  const r = cfg.registers;
  const tokens = encodeFull(p, cfg, patches, coords);
  const patchCoords = coords.slice([0, r, 0], [-1, -1, -1]);
  const pooled = finalNorm(predictorBlocks(p, cfg, patchCoords, tokens, coords, undefined, 1), cfg);
  return {
    global: tf.mean(pooled, 1),
    registers: tokens.slice([0, 0, 0], [-1, r, -1]),
    featureMap: tokens.slice([0, r, 0], [-1, -1, -1]).reshape([b, gridH, gridW, cfg.dim]),
  };
}
