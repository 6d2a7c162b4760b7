/**
 * Frozen feature models with the evaluation API (eval spec 0): for a batch of normalised images,
 * patch features [B, N, D] and a global vector [B, D_g]. CAPI: enc-normed patch tokens and
 * predictor pooling (method spec 2.7). Baselines: the same architecture with random weights, and
 * raw pixel patches (global vector = their average).
 */
import * as tf from '@tensorflow/tfjs';
import type { Params } from '../model/capi.js';
import { evalForward, initBackbone } from '../model/capi.js';
import { largestActivationBytes, type ModelConfig } from '../model/config.js';
import { allPositions, tokenCoords } from '../model/coords.js';
import { patchify } from '../model/patches.js';
import { Rng, STREAM } from '../runtime/rng.js';

export interface FeatureBatch {
  /** [B * N, D] */
  patch: Float32Array;
  /** [B, D_g] */
  global: Float32Array;
}

export interface FeatureModel {
  /** Row label in tables. */
  name: string;
  /** Identity for the feature cache (weights hash or baseline recipe). */
  key: string;
  patchSize: number;
  patchDim: number;
  globalDim: number;
  /**
   * Rough peak bytes of the activations one image adds to a forward at side `size` (one block's
   * intermediates: blocks run one at a time without a gradient tape). Sizes feature batches.
   */
  activationBytesPerImage(size: number): number;
  /** Bytes of the largest single tensor one image adds to a forward at side `size` (0: no tensors): a GPU binds each as one buffer. */
  largestTensorBytesPerImage(size: number): number;
  /** Images [B, 3, S, S] (normalised) -> features (read back asynchronously: a GPU backend has no synchronous read). */
  forward(pixels: Float32Array, b: number, size: number): Promise<FeatureBatch>;
  dispose(): void;
}

export function capiFeatureModel(name: string, key: string, params: Params, cfg: ModelConfig): FeatureModel {
  return {
    name,
    key,
    patchSize: cfg.patchSize,
    patchDim: cfg.dim,
    globalDim: cfg.predDim,
    activationBytesPerImage(size) {
      // T tokens x (~40 d-wide floats: norms, q/k/v, RoPE, MLP hidden and GELU terms) plus ~6
      // copies of the heads x T x T attention scores, in float32. Calibrated on ViT-L/14 at 224:
      // the wasm heap grew by 73 MB per image from batch 1 to batch 16 (bench:vitl); this gives 73.
      const t = cfg.registers + Math.floor(size / cfg.patchSize) ** 2;
      return 4 * t * (40 * Math.max(cfg.dim, cfg.predDim) + 6 * Math.max(cfg.heads, cfg.predHeads) * t);
    },
    largestTensorBytesPerImage: (size) => largestActivationBytes(cfg, cfg.registers + Math.floor(size / cfg.patchSize) ** 2, 1),
    async forward(pixels, b, size) {
      const g = Math.floor(size / cfg.patchSize);
      const n = g * g;
      const out = tf.tidy(() => {
        const patches = tf.tensor3d(patchify(pixels, b, 3, size, size, cfg.patchSize), [b, n, 3 * cfg.patchSize ** 2]);
        const coords = tf.tensor3d(tokenCoords(g, g, cfg.registers, allPositions(b, n), false), [b, cfg.registers + n, 2]);
        const o = evalForward(params, cfg, patches, coords, g, g);
        return [o.featureMap, o.global];
      });
      try {
        const [patch, global] = await Promise.all(out.map((t) => t.data() as Promise<Float32Array>));
        return { patch, global };
      } finally {
        tf.dispose(out);
      }
    },
    dispose: () => tf.dispose(Object.values(params)),
  };
}

/** The CAPI architecture with the reference's random initialisation (seeded). */
export function randomCapiFeatureModel(cfg: ModelConfig, seed: number): FeatureModel {
  return capiFeatureModel('random-init', `random-init:${JSON.stringify(cfg)}:${seed}`, initBackbone(cfg, new Rng(seed)), cfg);
}

/** Raw normalised pixel patches as features (D = 3 p^2); global = mean patch. */
export function pixelFeatureModel(patchSize: number): FeatureModel {
  const d = 3 * patchSize * patchSize;
  return {
    name: 'pixel-patches',
    key: `pixels:${patchSize}`,
    patchSize,
    patchDim: d,
    globalDim: d,
    activationBytesPerImage: (size) => 4 * 2 * 3 * size * size,
    largestTensorBytesPerImage: () => 0, // computed in JavaScript
    async forward(pixels, b, size) {
      const n = Math.floor(size / patchSize) ** 2;
      const patch = patchify(pixels, b, 3, size, size, patchSize);
      const global = new Float32Array(b * d);
      for (let i = 0; i < b; i++) {
        for (let t = 0; t < n; t++) for (let j = 0; j < d; j++) global[i * d + j] += patch[(i * n + t) * d + j] / n;
      }
      return { patch, global };
    },
    dispose: () => {},
  };
}

/**
 * The `pixels` baseline (the strongest simple pixel feature): global = the whole normalised image
 * of side `size` flattened (D_g = 3 S^2: the obvious raw-pixel baseline for classification);
 * patch = the normalised pixel patch plus its position (row, column in [0, 1)), for dense tasks.
 */
export function pixelImageFeatureModel(patchSize: number, size: number): FeatureModel {
  const pd = 3 * patchSize * patchSize;
  const g = Math.floor(size / patchSize);
  return {
    name: 'pixels',
    key: `pixel-image:${patchSize}:${size}`,
    patchSize,
    patchDim: pd + 2,
    globalDim: 3 * size * size,
    activationBytesPerImage: (s) => 4 * 3 * 3 * s * s,
    largestTensorBytesPerImage: () => 0, // computed in JavaScript
    async forward(pixels, b, s) {
      if (s !== size) throw new Error(`pixels baseline built for side ${size}, asked for ${s}`);
      const n = g * g;
      const raw = patchify(pixels, b, 3, s, s, patchSize);
      const patch = new Float32Array(b * n * (pd + 2));
      for (let r = 0; r < b * n; r++) {
        const t = r % n;
        patch.set(raw.subarray(r * pd, (r + 1) * pd), r * (pd + 2));
        patch[r * (pd + 2) + pd] = Math.floor(t / g) / g;
        patch[r * (pd + 2) + pd + 1] = (t % g) / g;
      }
      return { patch, global: pixels.slice(0, b * 3 * s * s) };
    },
    dispose: () => {},
  };
}

/** The `init` baseline: a capi-ts run's own step-0 weights (same seed, same init), so the gap is what training did. */
export function initCapiFeatureModel(cfg: ModelConfig, runSeed: number): FeatureModel {
  return capiFeatureModel('init', `init:${JSON.stringify(cfg)}:${runSeed}`, initBackbone(cfg, Rng.derive(runSeed, STREAM.init)), cfg);
}
