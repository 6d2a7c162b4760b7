/** The `eval` command's configuration: one zod schema gives its type, defaults, validation and --help. */
import { createHash } from 'node:crypto';
import * as os from 'node:os';
import * as path from 'node:path';
import { z } from 'zod';
import { KNN_INDEXES } from '../features/knn.js';
import { REFINE_KEEP } from '../probes/grid.js';
import { BACKEND_FIELDS } from '../runtime/backend.js';
import { SLURM_FIELDS } from '../runtime/slurm.js';
import { OPT_IN_PROBES, PROBE_NAMES, TASK_NAMES, TASKS } from './tasks.js';

/** 60% of this machine's memory, in GiB (one decimal): the default budget of the out-of-core dense protocol. */
const defaultMemoryGb = () => Math.round(((0.6 * os.totalmem()) / 2 ** 30) * 10) / 10;

/** Probe training steps of the reference protocol (12,500 at batch 1024, eval spec 1.4). */
export const REFERENCE_PROBE_STEPS = 12500;

const count = (description: string, def = 0) => z.number().int().min(0).default(def).describe(description);

/**
 * Marks a field that defines a result: a result made with another value of it is another result,
 * which a study evaluates again (naming the field). `data`: it also defines a task's floor and
 * ceiling rows, which depend on the data alone. Unmarked fields say how or where the work runs.
 */
const protocol = <T extends z.ZodType>(s: T, kind: 'data' | 'model' = 'model'): T => s.meta({ ...s.meta(), protocol: kind }) as T;

export const EvalConfigSchema = z
  .object({
    task: protocol(z.enum(TASK_NAMES).describe(TASK_NAMES.map((t) => `${t}: ${TASKS[t].description}`).join('; ')), 'data'),
    checkpoint: protocol(
      z.string().min(1).describe('a capi-ts run folder, teacher export, checkpoint.safetensors, or a reference .pth / .safetensors'),
    ),
    checkpointStep: protocol(count("a capi-ts run's weights must be from this training step (a study's learning-curve point); 0: any")),
    name: z.string().default('').describe("row name in the tables; '': the checkpoint's folder or file name"),
    preset: z.string().default('').describe("check a reference .pth against this preset; '': shapes from the file"),
    weights: protocol(
      z
        .enum(['teacher', 'student'])
        .default('teacher')
        .describe('which weights of a capi-ts run: the EMA teacher (the paper evaluates it) or the student'),
    ),
    dataDir: z.string().default('').describe("Fashion-MNIST idx files; '': the Debian package's location"),
    dataRoot: z.string().default('').describe('dataset root for imagenet, ade20k, voc, cityscapes'),
    probes: protocol(
      z
        .array(z.enum(PROBE_NAMES))
        .default([])
        .describe(`what to run; empty: every probe the task allows but ${OPT_IN_PROBES.join(', ')}`),
    ),
    baselines: z
      .boolean()
      .default(true)
      .describe('also evaluate the baselines: init (capi-ts runs), random-init, pixel-patches and pixels'),
    resolution: count("input side; 0: the model's pretraining side (56 for fmnist-scenes)"),
    limitTrain: protocol(count('evaluate the first N training images; 0: all'), 'data'),
    limitTest: protocol(count('evaluate the first N test images; 0: all'), 'data'),
    scenesTrain: protocol(
      z.number().int().min(1).default(2000).describe('fmnist-scenes and fmnist-canvas-dense training canvases'),
      'data',
    ),
    scenesTest: protocol(z.number().int().min(1).default(500).describe('fmnist-scenes and fmnist-canvas-dense test canvases'), 'data'),
    probeLrs: protocol(
      z
        .enum(['extended', 'paper'])
        .default('extended')
        .describe(
          "probe grids' peak lrs: the paper's 10 (1e-5 .. 1e-2) plus 2e-2, 5e-2, 1e-1, which small encoders need; or the paper's alone",
        ),
    ),
    probeMode: protocol(
      z
        .enum(['fast', 'reference'])
        .default('fast')
        .describe(
          'fast: probes train on cached un-augmented features; reference: RandomResizedCrop + flip per batch, one frozen forward shared by all grids',
        ),
    ),
    probeSteps: protocol(
      z
        .number()
        .int()
        .min(1)
        .optional()
        .describe(`probe training steps; default ${REFERENCE_PROBE_STEPS} (the reference's, eval spec 1.4), or from --epochs`),
    ),
    epochs: protocol(z.number().gt(0).optional().describe('instead of --probe-steps: passes over the 90% training split')),
    attentiveSteps: protocol(
      z
        .number()
        .int()
        .min(1)
        .optional()
        .describe("fast mode: the attentive grid's own steps (it costs ~30x a linear grid per step); default: as the other grids"),
    ),
    attentiveBatchSize: protocol(
      z.number().int().min(1).optional().describe("fast mode: the attentive grid's own batch; default --batch-size"),
    ),
    attentiveRefineSteps: protocol(
      z
        .number()
        .int()
        .min(1)
        .optional()
        .describe(
          `fast mode, successive halving: the attentive grid's ${REFINE_KEEP} best points are trained again, alone, with this many steps, and select; default: off`,
        ),
    ),
    batchSize: protocol(
      z
        .number()
        .int()
        .min(1)
        .default(1024)
        .describe("probe batch; 1024 is the reference's global batch (grid lrs are scaled by batch / 256, eval spec 1.4)"),
    ),
    featureBatch: count('images per frozen forward; 0: automatic (at most 64, one block of activations under ~0.5 GiB)'),
    trainPatchStride: protocol(
      z.number().int().min(1).default(1).describe("segmentation: keep every K-th training patch (the reference's train_set_subsampling)"),
    ),
    knnIndex: protocol(
      z
        .enum(KNN_INDEXES)
        .default('auto')
        .describe('segmentation k-NN search: exact, hnsw (approximate), or auto (exact unless a search exceeds 1e13 FLOP)'),
    ),
    unknownLabels: protocol(
      z
        .enum(['error', 'ignore'])
        .default('error')
        .describe(
          'dense label values that are neither a class nor ignored: stop naming the file, or score them as ignored (counted in the result)',
        ),
    ),
    denseEngine: z
      .enum(['auto', 'tfjs', 'cpu'])
      .default('auto')
      .describe(
        'dense protocol: tfjs (in memory, on the backend), cpu (out of core: rows read from the feature store in blocks, OpenBLAS kernels), or auto (tfjs while the training rows take <= 512 MiB)',
      ),
    memoryGb: z
      .number()
      .gt(0)
      .default(defaultMemoryGb())
      .describe("out-of-core dense protocol: memory for labels and blocks, GiB; default: 60% of this machine's memory"),
    standardize: protocol(
      z.boolean().default(true).describe('segmentation: standardise features with train-split statistics (false: Table 7)'),
    ),
    logregMaxIter: protocol(z.number().int().min(1).default(1000).describe('L-BFGS iterations per logistic-regression fit')),
    seed: protocol(count('seed of the probes, splits and baselines'), 'data'),
    out: z.string().min(1).default('eval-results').describe('results folder (<out>/<task>/<model>.json)'),
    takeOver: z.boolean().default(false).describe("take the output folder's lock although another process holds it"),
    overwrite: z.boolean().default(false).describe('replace result files tracked by git (e.g. the committed results/)'),
    cacheDir: z
      .string()
      .default('.cache/features')
      .describe("feature store: a folder of shards per model and split, checked and resumable; '': extract into memory"),
    shardImages: count('images a feature-store shard; 0: automatic (about 256 MiB of patch features, 16-1024 images)'),
    maxFeatureGb: z.number().gt(0).default(8).describe('refuse patch-feature arrays above this many GiB'),
    pcaImages: count('test images with a PCA picture of their patch features', 6),
    saveSplits: z
      .string()
      .default('')
      .describe(
        "segmentation: also write the prepared splits (standardised patch features, pixel labels, training rows) as .npy under DIR/<task>/<model>/, to fit the same classifier elsewhere (bench/logreg_sklearn.py); in-memory engine only; '': none",
      ),
    ...BACKEND_FIELDS,
    ...SLURM_FIELDS,
    stage: z
      .enum(['all', 'extract', 'grid', 'finish'])
      .default('all')
      .describe(
        "what this process runs: all of it; or, as a task of a Slurm evaluation, its share of the feature extraction (extract) or of the dense protocol's units (grid), or the rest (finish)",
      ),
  })
  .superRefine((c, ctx) => {
    if (
      c.probeMode === 'reference' &&
      (c.attentiveSteps !== undefined || c.attentiveBatchSize !== undefined || c.attentiveRefineSteps !== undefined)
    )
      ctx.addIssue({
        code: 'custom',
        path: ['attentiveSteps'],
        message:
          'reference mode trains every grid on the same augmented batches: drop --attentive-steps / --attentive-batch-size / --attentive-refine-steps',
      });
    if (c.probeSteps !== undefined && c.epochs !== undefined)
      ctx.addIssue({ code: 'custom', path: ['epochs'], message: 'give --probe-steps or --epochs, not both' });
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

/** How long the probes train: --epochs passes if given, else --probe-steps (default the reference's). */
export function probeSchedule(c: Pick<EvalConfig, 'probeSteps' | 'epochs'>): { steps?: number; epochs: number } {
  return c.epochs !== undefined ? { epochs: c.epochs } : { steps: c.probeSteps ?? REFERENCE_PROBE_STEPS, epochs: 0 };
}

/** Fields that say how an evaluation is run, not what it computes: left out of results and of the work key. */
export const EXECUTION_FIELDS = ['backend', 'threads', 'stage', 'dryRun', ...Object.keys(SLURM_FIELDS)] as const;

type Field = keyof EvalConfig;
const marked = (kinds: string[]): Field[] =>
  Object.entries(EvalConfigSchema.shape)
    .filter(([, s]) => kinds.includes((s as z.ZodType).meta()?.protocol as string))
    .map(([k]) => k as Field);

/** The fields that define a result (marked `protocol` in the schema). */
export const PROTOCOL_FIELDS: readonly Field[] = marked(['data', 'model']);
/** The fields that define a task's floor and ceiling rows: its data alone. */
export const DATA_FIELDS: readonly Field[] = marked(['data']);

/** Each field's default: a result written before a field existed was made with it. */
const DEFAULTS: Partial<EvalConfig> = EvalConfigSchema.parse({ task: TASK_NAMES[0], checkpoint: '-' });

/** A field's value as a result's identity sees it: a checkpoint by its file or folder name (a study moved to another machine keeps its results). */
function identity(c: Partial<EvalConfig>, k: Field): string | undefined {
  const v = c[k] === undefined ? DEFAULTS[k] : c[k];
  return JSON.stringify(k === 'checkpoint' && typeof v === 'string' ? path.basename(v) : v);
}

/**
 * Why a result made with config `made` is not the one `cfg` would make: the first protocol field
 * that differs, as `field: made -> wanted`; undefined when it is. `dataOnly`: a floor or ceiling
 * row, compared on the data fields alone.
 */
export function staleField(made: Partial<EvalConfig>, cfg: EvalConfig, dataOnly = false): string | undefined {
  for (const k of dataOnly ? DATA_FIELDS : PROTOCOL_FIELDS) {
    if (identity(made, k) !== identity(cfg, k)) return `${k}: ${identity(made, k) ?? 'unset'} -> ${identity(cfg, k) ?? 'unset'}`;
  }
  return undefined;
}

/** A short hash of a config's protocol fields, recorded in each result: equal hashes, same protocol settings. */
export function protocolHash(cfg: Partial<EvalConfig>): string {
  const fields = PROTOCOL_FIELDS.map((k) => `${k}=${identity(cfg, k)}`).join('\n');
  return createHash('sha256').update(fields).digest('hex').slice(0, 16);
}
