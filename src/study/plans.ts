/**
 * Study plans: which pretraining runs (arm x seed, per data family) and which evaluations a
 * `npm run study -- --plan NAME` makes. A plan is data; src/study/run.ts executes it in order
 * (the units that matter most first, so a partial run already reports the main comparison).
 *
 * Arms are the paper's Table 1 ablations that apply at our scale (method spec 3, 5.3, 2.3):
 * the default CAPI recipe, standard instead of position-wise Sinkhorn-Knopp, the three other
 * masking strategies, and no registers. Every arm has the same budget (steps, batch, model).
 */
import type { EvalConfig } from '../eval/config.js';
import type { ProbeName, TaskName } from '../eval/tasks.js';

export const ARM_NAMES = ['capi', 'sk-standard', 'mask-inverse-block', 'mask-block', 'mask-uniform', 'registers-0'] as const;
export type ArmName = (typeof ARM_NAMES)[number];

export interface Arm {
  /** Table 1 group and the variant's label there. */
  factor: string;
  variant: string;
  /** Training / model fields that differ from the default recipe. */
  overrides: Record<string, unknown>;
  /** Paper Table 1 (ViT-L/16, IN-22k, 100k steps; eval spec 7.6): ADE20K mIoU / IN-1k top-1. */
  paper: { ade: number; in1k: number };
}

export const ARMS: Record<ArmName, Arm> = {
  capi: {
    factor: 'default',
    variant: 'position-wise SK, inverse block + roll, registers',
    overrides: {},
    paper: { ade: 29.1, in1k: 81.4 },
  },
  'sk-standard': { factor: 'Sinkhorn-Knopp', variant: 'standard', overrides: { positionwiseSK: false }, paper: { ade: 28.5, in1k: 81.3 } },
  'mask-inverse-block': { factor: 'masking', variant: 'inverse block', overrides: { roll: false }, paper: { ade: 27.2, in1k: 80.7 } },
  'mask-block': { factor: 'masking', variant: 'block', overrides: { masking: 'block', roll: false }, paper: { ade: 25.6, in1k: 79.9 } },
  // The paper's random masking masks 90%; on a 7 x 7 grid that still leaves 5 patches visible.
  'mask-uniform': {
    factor: 'masking',
    variant: 'uniform random (90%)',
    overrides: { masking: 'uniform', maskRatio: 0.9 },
    paper: { ade: 23.6, in1k: 76.4 },
  },
  'registers-0': { factor: 'registers', variant: '0', overrides: { registers: 0 }, paper: { ade: 25.9, in1k: 79.3 } },
};

/**
 * A family of runs: what they pretrain on and the tasks that evaluate them. At our scale the
 * dense task gets its own family pretrained in-domain on its unlabeled canvases (CAPI pretrains
 * on images like those it is evaluated on); at the paper's scale one family serves both.
 */
export interface Family {
  name: string;
  /** Also train the supervised ceiling (labeled data only). */
  supervisedCeiling?: boolean;
  /** Pretraining fields of every run of the family (data, length, model size). */
  fields: Record<string, unknown>;
  /**
   * `probes` on every run; `mainProbes` also on the default arm's runs and the supervised ceiling
   * (Table 2 and Table 5 read them; Table 1's ablation arms are compared on `probes`).
   */
  evals: { task: TaskName; probes: ProbeName[]; mainProbes?: ProbeName[]; config: Partial<EvalConfig> }[];
  /** k-NN of the teacher during each pretraining run (src/eval/monitor.ts), on a labeled classification task. */
  monitor?: RunMonitor;
}

export interface RunMonitor {
  task: 'fmnist';
  dataDir?: string;
  /** Steps between measurements (and after the last). */
  every: number;
  train: number;
  test: number;
}

export interface StudyRun {
  /** Folder name under the plan's runs folder and row name in its tables. */
  id: string;
  family: string;
  /** A Table 1 arm, or the family's supervised ceiling (src/pretrain/supervised.ts: same encoder and budget, labels). */
  arm: ArmName | 'supervised';
  seed: number;
  /** Pretraining fields of the run on top of the preset (family + arm + seed). */
  fields: Record<string, unknown>;
  monitor?: RunMonitor;
}

export interface StudyEval {
  run: string;
  task: TaskName;
  probes: ProbeName[];
  /** Also the baselines (init, random-init, pixel patches, pixels): once per task, with its first run. */
  baselines: boolean;
  /** Evaluate the run's student weights instead of its EMA teacher (teacher >= student). */
  weights: 'teacher' | 'student';
  config: Partial<EvalConfig>;
}

export interface Plan {
  name: string;
  summary: string;
  /** Wall time on the reference 2-core machine, for --help and the report. */
  estimate: string;
  preset: string;
  runs: StudyRun[];
  /** In execution order; each run's evaluations follow it. */
  evals: StudyEval[];
}

interface PlanShape extends Omit<Plan, 'runs' | 'evals'> {
  families: Family[];
  arms: readonly ArmName[];
  /** Seeds of the default arm; the other arms run the first seed only. */
  seeds: number[];
}

/** Linear and k-NN probes of the student, beside the teacher's (paper: the EMA teacher is the better encoder). */
const STUDENT_PROBES: ProbeName[] = ['linear', 'knn'];

/**
 * Runs in the order that makes a partial study useful: the default arm's first seed in each
 * family (with the baselines and the student), the supervised ceilings, then the other arms, then
 * the remaining seeds.
 */
function expand(p: PlanShape): Plan {
  const order: { arm: ArmName; seed: number }[] = [
    { arm: 'capi', seed: p.seeds[0] },
    ...p.arms.filter((a) => a !== 'capi').map((arm) => ({ arm, seed: p.seeds[0] })),
    ...p.seeds.slice(1).map((seed) => ({ arm: 'capi' as ArmName, seed })),
  ];
  const runs: StudyRun[] = [];
  const evals: StudyEval[] = [];
  for (const [i, { arm, seed }] of order.entries()) {
    for (const family of p.families) {
      const id = `${family.name}-${arm}-s${seed}`;
      const first = !runs.some((r) => r.family === family.name);
      runs.push({
        id,
        family: family.name,
        arm,
        seed,
        fields: { ...family.fields, ...ARMS[arm].overrides, seed },
        monitor: family.monitor,
      });
      for (const e of family.evals) {
        const probes = arm === 'capi' ? [...new Set([...e.probes, ...(e.mainProbes ?? [])])] : e.probes;
        evals.push({ run: id, task: e.task, probes, baselines: first, weights: 'teacher', config: e.config });
        const student = first && e.probes.some((x) => STUDENT_PROBES.includes(x)) && !e.task.includes('scenes');
        if (student) {
          const probes = STUDENT_PROBES.filter((x) => e.probes.includes(x));
          evals.push({ run: id, task: e.task, probes, baselines: false, weights: 'student', config: e.config });
        }
      }
    }
    // The supervised ceilings after the first run of every family: each family's task is tried before any ceiling.
    if (i > 0) continue;
    for (const family of p.families.filter((f) => f.supervisedCeiling)) {
      const sup = `${family.name}-supervised-s${seed}`;
      runs.push({ id: sup, family: family.name, arm: 'supervised', seed, fields: { ...family.fields, seed } });
      for (const e of family.evals) {
        const probes = [...new Set([...e.probes, ...(e.mainProbes ?? [])])];
        evals.push({ run: sup, task: e.task, probes, baselines: false, weights: 'teacher', config: e.config });
      }
    }
  }
  return { name: p.name, summary: p.summary, estimate: p.estimate, preset: p.preset, runs, evals };
}

/**
 * The fmnist-tiny model at 56 px with 7 px patches: an 8 x 8 token grid on the scene canvases, 4 x 4
 * patches on each 28 px cell (src/data/fmnist-scenes.ts), so no patch straddles two items.
 */
const SCENES_MODEL = { data: 'fmnist-scenes', imageSize: 56, patchSize: 7 };

/**
 * Teacher momentum scaled to the run (a named option, recorded in every run's config): with the
 * paper's 1 - lr a 700-step teacher would still be ~25% its random init (issue 9, point 4).
 */
const SHORT_RUN_MOMENTUM = { teacherInitShareTarget: 0.01 };

/** A CAPI small enough that a test trains it in well under a second per step. */
const TINY_MODEL = { dim: 32, depth: 1, heads: 1, predDim: 32, predDepth: 1, predHeads: 1, numClusters: 16, numPredictions: 4 };
const TINY_RUN = { dataDir: 'data/fmnist-slice', batchSize: 16, steps: 3, checkpointEvery: 1, ...TINY_MODEL, ...SHORT_RUN_MOMENTUM };

export const PLANS: Record<string, () => Plan> = {
  tiny: () =>
    expand({
      name: 'tiny',
      summary: 'test-sized: every arm and table on the committed data/fmnist-slice, 3 steps a run (checks the machinery, not the method)',
      estimate: 'about 30 s with the native path',
      preset: 'fmnist-tiny',
      families: [
        {
          name: 'fmnist',
          supervisedCeiling: true,
          fields: TINY_RUN,
          monitor: { task: 'fmnist', dataDir: 'data/fmnist-slice', every: 2, train: 40, test: 20 },
          evals: [
            {
              task: 'fmnist',
              probes: ['linear', 'knn'],
              mainProbes: ['predictor-pooling', 'attentive'],
              config: { dataDir: 'data/fmnist-slice', limitTrain: 200, limitTest: 100, probeSteps: 20, batchSize: 64 },
            },
          ],
        },
        {
          name: 'scenes',
          fields: { ...TINY_RUN, ...SCENES_MODEL, scenes: 64 },
          evals: [
            {
              task: 'fmnist-scenes',
              probes: ['knn', 'logreg'],
              config: { dataDir: 'data/fmnist-slice', scenesTrain: 12, scenesTest: 6, logregMaxIter: 20 },
            },
          ],
        },
      ],
      arms: ARM_NAMES,
      seeds: [0, 1],
    }),
  small: () =>
    expand({
      name: 'small',
      summary:
        'fmnist-tiny, 3 epochs (703 steps) a run, every Table 1 arm in both families, 3 seeds of the default; fmnist on its full 60k / 10k splits, scenes on 2,000 / 1,000 canvases',
      estimate:
        'about 10 hours on 2 cores with the native path where an fmnist run trains at ~270 images/s (measured on a 2-core Intel Xeon VM: an fmnist run 10-13 min, a scenes run 13-17 min; a default fmnist model evaluated 30 min with the attentive probe, an ablation arm 5 min, a scenes model 3 min; the baselines, once, 2.8 h on an AMD EPYC VM), about twice that on a 2-core VM at ~120 images/s (measured: an fmnist run 22 min); resumable, also from this folder alone on another machine',
      preset: 'fmnist-tiny',
      families: [
        {
          name: 'fmnist',
          supervisedCeiling: true,
          fields: { epochs: 3, ...SHORT_RUN_MOMENTUM },
          // Every half epoch (6 points a run; issue 9: the evidence of what run length does): 6,000 forward
          // passes each, measured 22 s on a 2-core VM where the run takes 22 min (10% more).
          monitor: { task: 'fmnist', every: 117, train: 5000, test: 1000 },
          // Linear probes at the reference schedule. The attentive grid (~30x the cost per step) at
          // 5,000 steps of 256, then its best points at 50,000 steps of 256: the reference's 12.8M
          // training samples (12,500 x 1024). Measured: 40,000 steps already pass the half-schedule
          // test (src/probes/grid.ts, REFINE_KEEP); 5,000 steps do not (half: 1.0 point lower).
          evals: [
            {
              task: 'fmnist',
              probes: ['linear', 'knn'],
              mainProbes: ['predictor-pooling', 'attentive'],
              config: { attentiveSteps: 5000, attentiveBatchSize: 256, attentiveRefineSteps: 50000 },
            },
          ],
        },
        {
          name: 'scenes',
          fields: { ...SCENES_MODEL, scenes: 60000, epochs: 3, ...SHORT_RUN_MOMENTUM },
          evals: [{ task: 'fmnist-scenes', probes: ['knn', 'logreg'], config: { scenesTrain: 2000, scenesTest: 1000 } }],
        },
      ],
      arms: ARM_NAMES,
      seeds: [0, 1, 2],
    }),
  paper: () =>
    expand({
      name: 'paper',
      summary:
        "the paper's scale: ViT-L/14 on ImageNet-1k train (an ImageNet-style folder), 500k steps of 16,384 images; evaluated on ImageNet-1k and ADE20K",
      estimate: 'about 180 h on 32 A100 per run (eval spec 7.7); not feasible on a CPU: use it for its configuration, or with the hardware',
      preset: 'vit-l14',
      families: [
        {
          name: 'in1k',
          fields: { data: 'imagenet/train', steps: 500000, batchSize: 16384, lr: 1e-3 },
          evals: [
            {
              task: 'imagenet',
              probes: ['linear', 'knn'],
              mainProbes: ['predictor-pooling', 'attentive'],
              config: { dataRoot: 'imagenet' },
            },
            { task: 'ade20k', probes: ['knn', 'logreg'], config: { dataRoot: 'ADEChallengeData2016' } },
          ],
        },
      ],
      arms: ARM_NAMES,
      seeds: [0, 1],
    }),
};

export const PLAN_NAMES = Object.keys(PLANS) as [string, ...string[]];
