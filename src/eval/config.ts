/** The `eval` command's configuration: one zod schema gives its type, defaults, validation and --help. */
import { z } from 'zod';
import { KNN_INDEXES } from '../features/knn.js';
import { BACKEND_FIELDS } from '../runtime/backend.js';
import { PROBE_NAMES, TASK_NAMES, TASKS } from './tasks.js';

const count = (description: string, def = 0) => z.number().int().min(0).default(def).describe(description);

export const EvalConfigSchema = z
  .object({
    task: z.enum(TASK_NAMES).describe(TASK_NAMES.map((t) => `${t}: ${TASKS[t].description}`).join('; ')),
    checkpoint: z
      .string()
      .min(1)
      .describe('a capi-ts run folder, teacher export, checkpoint.safetensors, or a reference .pth / .safetensors'),
    name: z.string().default('').describe("row name in the tables; '': the checkpoint's folder or file name"),
    preset: z.string().default('').describe("check a reference .pth against this preset; '': shapes from the file"),
    weights: z
      .enum(['teacher', 'student'])
      .default('teacher')
      .describe('which weights of a capi-ts run: the EMA teacher (the paper evaluates it) or the student'),
    dataDir: z.string().default('').describe("Fashion-MNIST idx files; '': the Debian package's location"),
    dataRoot: z.string().default('').describe('dataset root for imagenet, ade20k, voc, cityscapes'),
    probes: z.array(z.enum(PROBE_NAMES)).default([]).describe('what to run; empty: every probe the task allows'),
    baselines: z.boolean().default(true).describe('also evaluate random-init and pixel-patch baselines'),
    resolution: count("input side; 0: the model's pretraining side (56 for fmnist-scenes)"),
    limitTrain: count('evaluate the first N training images; 0: all'),
    limitTest: count('evaluate the first N test images; 0: all'),
    scenesTrain: z.number().int().min(1).default(2000).describe('fmnist-scenes training canvases'),
    scenesTest: z.number().int().min(1).default(500).describe('fmnist-scenes test canvases'),
    probeMode: z
      .enum(['fast', 'reference'])
      .default('fast')
      .describe(
        'fast: probes train on cached un-augmented features; reference: RandomResizedCrop + flip per batch, one frozen forward shared by all grids',
      ),
    epochs: z.number().gt(0).default(10).describe('probe training epochs over the 90% split (unless --probe-steps)'),
    probeSteps: count('probe training steps; 0: from --epochs'),
    batchSize: z.number().int().min(1).default(256).describe('probe batch (grid lrs are scaled by batch / 256)'),
    featureBatch: count('images per frozen forward; 0: automatic (at most 64, one block of activations under ~0.5 GiB)'),
    trainPatchStride: z
      .number()
      .int()
      .min(1)
      .default(1)
      .describe("segmentation: keep every K-th training patch (the reference's train_set_subsampling)"),
    knnIndex: z
      .enum(KNN_INDEXES)
      .default('auto')
      .describe('segmentation k-NN search: exact, hnsw (approximate), or auto (exact unless a search exceeds 1e13 FLOP)'),
    standardize: z.boolean().default(true).describe('segmentation: standardise features with train-split statistics (false: Table 7)'),
    logregMaxIter: z.number().int().min(1).default(1000).describe('L-BFGS iterations per logistic-regression fit'),
    seed: count('seed of the probes, splits and baselines'),
    out: z.string().min(1).default('eval-results').describe('results folder (<out>/<task>/<model>.json)'),
    overwrite: z.boolean().default(false).describe('replace result files tracked by git (e.g. the committed results/)'),
    cacheDir: z.string().default('.cache/features').describe("feature cache; '': no cache"),
    maxFeatureGb: z.number().gt(0).default(8).describe('refuse patch-feature arrays above this many GiB'),
    pcaImages: count('test images with a PCA picture of their patch features', 6),
    ...BACKEND_FIELDS,
  })
  .superRefine((c, ctx) => {
    const allowed: readonly string[] = TASKS[c.task].probes;
    const bad = c.probes.find((p) => !allowed.includes(p));
    if (bad)
      ctx.addIssue({
        code: 'custom',
        path: ['probes'],
        message: `probe '${bad}' does not apply to ${c.task}: choose from ${allowed.join(', ')}`,
      });
  });

export type EvalConfig = z.output<typeof EvalConfigSchema>;
