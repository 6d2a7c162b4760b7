/** Model shapes (method spec sections 2, 6, 11): one zod schema (type, validation), presets by name. */
import { z } from 'zod';
import { validate } from '../runtime/schema.js';

const posInt = (description: string) => z.number().int().min(1).describe(description);

export const ModelConfigSchema = z
  .object({
    imageSize: posInt('input side in pixels (square images)'),
    patchSize: posInt('patch side in pixels'),
    inChans: posInt('input channels'),
    dim: posInt('encoder width d'),
    depth: posInt('encoder depth'),
    heads: posInt('encoder heads (head dim d / heads, divisible by 4)'),
    predDim: posInt('predictor width'),
    predDepth: posInt('predictor depth'),
    predHeads: posInt('predictor heads'),
    mlpRatio: z.number().gt(0).describe('MLP hidden width / d'),
    registers: z.number().int().min(0).multipleOf(4).describe('register tokens (a multiple of 4)'),
    normEps: z.number().gt(0).describe('RMSNorm epsilon'),
    ropeMode: z.enum(['reference', 'axial']).describe("RoPE channel pairing: the reference's, or clean axial"),
    ropeMaxFreq: z.number().gt(0).describe('largest RoPE frequency'),
    ropeMinFreq: z.number().gt(0).describe('smallest RoPE frequency'),
    scaleRegistersToVisible: z.boolean().describe("map register coordinates into each image's visible box (spec 2.3)"),
    numClusters: posInt('prototypes K (student head and clustering head)'),
  })
  .superRefine((c, ctx) => {
    const bad = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
    if (c.imageSize % c.patchSize !== 0) bad('imageSize', `must be a multiple of patchSize ${c.patchSize}`);
    if (c.dim % c.heads !== 0 || (c.dim / c.heads) % 4 !== 0) bad('heads', `must divide dim ${c.dim} into head dims divisible by 4`);
    if (c.predDim % c.predHeads !== 0 || (c.predDim / c.predHeads) % 4 !== 0) {
      bad('predHeads', `must divide predDim ${c.predDim} into head dims divisible by 4`);
    }
  });

export type ModelConfig = z.infer<typeof ModelConfigSchema>;

const base = {
  inChans: 3,
  mlpRatio: 4,
  normEps: 1e-5,
  ropeMode: 'reference' as const,
  ropeMaxFreq: 7,
  ropeMinFreq: 7e-4,
  scaleRegistersToVisible: true,
};

/**
 * fmnist-tiny: 28x28 Fashion-MNIST, patch 4 (7x7 = 49 tokens). Sized so that one epoch of the
 * 60k training images runs in about 20 minutes on the 2-thread wasm backend (docs/pretraining.md).
 */
export const MODEL_PRESETS: Record<string, ModelConfig> = {
  'fmnist-tiny': {
    ...base,
    imageSize: 28,
    patchSize: 4,
    dim: 128,
    depth: 4,
    heads: 2,
    predDim: 128,
    predDepth: 2,
    predHeads: 2,
    registers: 4,
    numClusters: 256,
  },
  'vit-s14': {
    ...base,
    imageSize: 224,
    patchSize: 14,
    dim: 384,
    depth: 12,
    heads: 6,
    predDim: 384,
    predDepth: 6,
    predHeads: 6,
    registers: 16,
    numClusters: 16384,
  },
  'vit-b14': {
    ...base,
    imageSize: 224,
    patchSize: 14,
    dim: 768,
    depth: 12,
    heads: 12,
    predDim: 768,
    predDepth: 6,
    predHeads: 12,
    registers: 16,
    numClusters: 16384,
  },
  'vit-l14': {
    ...base,
    imageSize: 224,
    patchSize: 14,
    dim: 1024,
    depth: 24,
    heads: 16,
    predDim: 1024,
    predDepth: 12,
    predHeads: 16,
    registers: 16,
    numClusters: 16384,
  },
};

/**
 * Bytes of the largest activation tensor a forward of `images` images of `tokens` tokens creates:
 * the attention scores [images, heads, tokens, tokens] or the MLP's hidden layer [images, tokens,
 * mlpRatio d], float32, encoder or predictor, whichever is larger. A GPU backend binds each tensor
 * as one buffer, whose size its adapter limits (src/runtime/webgpu.ts).
 */
export function largestActivationBytes(cfg: ModelConfig, tokens: number, images: number): number {
  const width = Math.max(cfg.dim, cfg.predDim);
  const heads = Math.max(cfg.heads, cfg.predHeads);
  return 4 * images * tokens * Math.max(heads * tokens, Math.ceil(cfg.mlpRatio * width), 3 * width);
}

export function gridSize(cfg: Pick<ModelConfig, 'imageSize' | 'patchSize'>): number {
  return Math.floor(cfg.imageSize / cfg.patchSize);
}

/** Checks the invariants the model code relies on; throws one line naming the field. */
export function validateModelConfig(cfg: ModelConfig): ModelConfig {
  return validate(ModelConfigSchema, cfg);
}
