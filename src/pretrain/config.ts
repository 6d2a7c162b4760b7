/** The `pretrain` command's configuration: one zod schema (types, defaults, validation), presets by name. */
import { z } from 'zod';
import type { ModelConfig } from '../model/config.js';
import { MODEL_PRESETS, ModelConfigSchema } from '../model/config.js';
import { kebabCase, validate } from '../runtime/schema.js';

const unit = z.number().min(0).max(1);

/** `--data` values that name a built-in dataset; anything else is a folder of images. */
export const BUILTIN_DATA = ['fmnist', 'fmnist-scenes', 'fmnist-canvas'] as const;
export const isBuiltinData = (data: string): boolean => (BUILTIN_DATA as readonly string[]).includes(data);

export const TrainConfigSchema = z
  .object({
    data: z
      .string()
      .min(1)
      .default('fmnist')
      .describe(
        "'fmnist' (Fashion-MNIST train split), 'fmnist-scenes' (the dense task's unlabeled training canvases), 'fmnist-canvas' (one item at a random scale and place on a 42 px canvas, unlabeled) or a folder of images",
      ),
    scenes: z.number().int().min(1).default(20000).describe('with --data fmnist-scenes: how many training canvases'),
    canvases: z
      .number()
      .int()
      .min(1)
      .max(60000)
      .default(60000)
      .describe('with --data fmnist-canvas: how many training canvases (one per fmnist item)'),
    dataDir: z.string().default('').describe("Fashion-MNIST idx files; '': the Debian package's location"),
    batchSize: z.number().int().min(1).default(256).describe('images per step'),
    epochs: z.number().gt(0).max(1e5).default(1).describe('run length in epochs over the data (--steps overrides)'),
    // At most 1e8 steps (200x the paper's run): past that a value is a typo, and its schedule meaningless.
    steps: z.number().int().min(0).max(1e8).default(0).describe('run length in steps; 0: from --epochs'),
    seed: z.number().int().min(0).default(0).describe('every random draw derives from (seed, step)'),
    // Student optimiser (spec 8.1, 8.2)
    lr: z.number().gt(0).default(1e-3).describe('peak learning rate'),
    finalLr: z.number().min(0).default(0).describe('learning rate at the end of the cosine'),
    warmupFraction: unit.default(0.1).describe('linear warmup, fraction of the run'),
    truncation: unit.default(0.8).describe('truncated cosine: fraction of the cosine that is run'),
    weightDecay: z.number().min(0).default(0.1).describe('AdamW weight decay'),
    beta1: unit.default(0.9).describe('AdamW beta1'),
    beta2: unit.default(0.95).describe('AdamW beta2'),
    eps: z.number().gt(0).default(1e-8).describe('AdamW epsilon'),
    teacherMomentum: unit.optional().describe('peak EMA teacher momentum; default 1 - lr (spec 8.2)'),
    teacherInitShareTarget: z
      .number()
      .gt(0)
      .lt(1)
      .optional()
      .describe(
        "instead of 1 - lr: the peak momentum that leaves the final teacher this share of its init (prod of the momenta), for runs far shorter than the paper's",
      ),
    teacherMeanAgeShare: z
      .number()
      .gt(0)
      .lt(1)
      .optional()
      .describe(
        "instead of 1 - lr: the peak momentum that gives the final teacher this mean age (weight-averaged age of the students it holds) as a share of the run; the paper's schedules give ~0.02 (0.018 at 0.999 over 500k steps, 0.022 at 0.996 over 100k)",
      ),
    // Clustering optimiser (spec 5.4)
    clusterLr: z.number().gt(0).optional().describe('clustering-head learning rate; default lr / 2'),
    clusterWeightDecay: z.number().min(0).default(0.01).describe('clustering-head weight decay'),
    // Losses and clustering (spec 5, 7)
    studentTemp: z.number().gt(0).default(0.12).describe('student softmax temperature'),
    targetTemp: z.number().gt(0).default(0.06).describe('Sinkhorn-Knopp temperature'),
    clusterTemp: z.number().gt(0).default(0.12).describe('clustering-loss temperature'),
    skIterations: z.number().int().min(1).default(3).describe('Sinkhorn-Knopp iterations'),
    positionwiseSK: z.boolean().default(true).describe('position-wise Sinkhorn-Knopp (CAPI); false: standard'),
    // Masking (spec 3)
    masking: z.enum(['inverse-block', 'block', 'uniform']).default('inverse-block').describe('mask shape'),
    maskRatio: z.number().min(0).lt(1).default(0.65).describe('fraction of patches masked (< 1: some must stay visible)'),
    roll: z.boolean().default(true).describe('roll the (inverse) block mask circularly'),
    predictionSubsampling: unit.default(0.05).describe('fraction of masked patches predicted'),
    numPredictions: z.number().int().min(0).default(0).describe('predictions per image; 0: from predictionSubsampling'),
    dropPath: z.number().min(0).lt(1).default(0.2).describe('stochastic depth rate'),
    // Augmentation (spec 9)
    cropScaleMin: z.number().gt(0).max(1).default(0.6).describe('RandomResizedCrop smallest area fraction'),
    cropScaleMax: z.number().gt(0).max(1).default(1).describe('RandomResizedCrop largest area fraction'),
    hflip: unit.default(0.5).describe('horizontal flip probability'),
    checkpointEvery: z.number().int().min(1).default(100).describe('steps between checkpoints'),
  })
  .superRefine((t, ctx) => {
    const momentumSetters = (['teacherMomentum', 'teacherInitShareTarget', 'teacherMeanAgeShare'] as const).filter(
      (k) => t[k] !== undefined,
    );
    if (momentumSetters.length > 1) {
      ctx.addIssue({
        code: 'custom',
        path: [momentumSetters[1]],
        message: `sets the teacher momentum, as does --${kebabCase(momentumSetters[0])}: give one of them`,
      });
    }
    if (t.cropScaleMin > t.cropScaleMax) {
      ctx.addIssue({ code: 'custom', path: ['cropScaleMin'], message: `must be <= cropScaleMax ${t.cropScaleMax}` });
    }
  });

/** A resolved training config: teacherMomentum and clusterLr filled (the two momentum targets stay optional). */
export type TrainConfig = Required<Omit<z.output<typeof TrainConfigSchema>, 'teacherInitShareTarget' | 'teacherMeanAgeShare'>> & {
  teacherInitShareTarget?: number;
  teacherMeanAgeShare?: number;
};

/** How a run's teacher momentum is set when it is not given: what the final teacher must be. */
export type TeacherTarget = { initShare: number } | { meanAgeShare: number };

/** The teacher property a run solves its peak momentum for (src/pretrain/step.ts), if it asks for one. */
export function teacherTarget(t: TrainConfig): TeacherTarget | undefined {
  if (t.teacherInitShareTarget !== undefined) return { initShare: t.teacherInitShareTarget };
  if (t.teacherMeanAgeShare !== undefined) return { meanAgeShare: t.teacherMeanAgeShare };
  return undefined;
}

export interface PretrainConfig {
  preset: string;
  model: ModelConfig;
  train: TrainConfig;
}

/** Training presets; the model part comes from MODEL_PRESETS under the same name. */
const TRAIN_PRESETS: Record<string, Partial<TrainConfig>> = {
  // 8 predictions per image on the 7x7 grid (5% of 31 masked would give 1); lr as the paper's
  // small models (ViT-S: 2e-3).
  'fmnist-tiny': { batchSize: 256, lr: 2e-3, numPredictions: 8, checkpointEvery: 50 },
  'vit-s14': { lr: 2e-3, batchSize: 16 },
  'vit-b14': { batchSize: 8 },
  'vit-l14': { batchSize: 4 },
};

export const PRESET_NAMES = Object.keys(MODEL_PRESETS);

/**
 * Preset + overrides (flat field names of either part) -> resolved, validated config; an invalid
 * value throws one line naming the field as a flag, the value and the allowed range.
 */
export function resolvePretrainConfig(preset: string, overrides: Record<string, unknown> = {}): PretrainConfig {
  const modelPreset = MODEL_PRESETS[preset];
  if (!modelPreset) throw new Error(`unknown preset '${preset}': choose one of ${PRESET_NAMES.join(', ')}`);
  const modelKeys = new Set(Object.keys(ModelConfigSchema.shape));
  const trainKeys = new Set(Object.keys(TrainConfigSchema.shape));
  const model: Record<string, unknown> = { ...modelPreset };
  const train: Record<string, unknown> = { ...TRAIN_PRESETS[preset] };
  for (const [key, value] of Object.entries(overrides)) {
    if (modelKeys.has(key)) model[key] = value;
    else if (trainKeys.has(key)) train[key] = value;
    else throw new Error(`unknown config field '${key}': see --help for the list of fields`);
  }
  const t = validate(TrainConfigSchema, train);
  return {
    preset,
    model: validate(ModelConfigSchema, model),
    // With teacherInitShareTarget, the run solves the momentum once it knows its length (loop.ts).
    train: { ...t, teacherMomentum: t.teacherMomentum ?? 1 - t.lr, clusterLr: t.clusterLr ?? t.lr / 2 },
  };
}

/**
 * A resolved config with some fields changed (a forced resume: e.g. a lower lr after a divergence),
 * each value checked against its field. Model fields cannot change under a checkpoint.
 */
export function withOverrides(cfg: PretrainConfig, overrides: Record<string, unknown>): PretrainConfig {
  const train: Record<string, unknown> = { ...cfg.train };
  for (const [key, value] of Object.entries(overrides)) {
    if (key in ModelConfigSchema.shape) throw new Error(`--${kebabCase(key)}: the model cannot change under a checkpoint; start a new run`);
    const field = (TrainConfigSchema.shape as Record<string, z.ZodType>)[key];
    if (!field) throw new Error(`unknown config field '${key}': see --help for the list of fields`);
    train[key] = validate(z.object({ [key]: field }), { [key]: value })[key];
  }
  return { ...cfg, train: train as TrainConfig };
}

/** Every model and training field, optional: the overrides a command accepts on top of a preset. */
export const CONFIG_OVERRIDE_FIELDS = Object.fromEntries(
  [...Object.entries(ModelConfigSchema.shape), ...Object.entries(TrainConfigSchema.shape)].map(([k, v]) => [
    k,
    (v as z.ZodType).optional(),
  ]),
);

/** The fmnist-tiny values of every field, for --help. */
export const FMNIST_TINY_DEFAULTS = (): Record<string, unknown> => {
  const c = resolvePretrainConfig('fmnist-tiny');
  return { ...c.model, ...c.train };
};
