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
import { TASKS } from '../eval/tasks.js';

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
  /**
   * A learning curve: every run stops after each of these epochs (before its end) and its
   * evaluations run there on those weights, except for the probes in `endOnly`.
   */
  curve?: { epochs: number[]; endOnly: ProbeName[] };
  /**
   * The student's probes (teacher >= student), on the first run only (default) or on every run of
   * the default arm at every point of its curve.
   */
  students?: { probes: ProbeName[]; runs: 'first' | 'default-arm' };
}

export interface RunMonitor {
  task: 'fmnist' | 'fmnist-canvas';
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
  /** A learning-curve point: the run's weights after this many epochs (absent: at its end). */
  atEpochs?: number;
  config: Partial<EvalConfig>;
}

/** A row's name in the results: the run, its learning-curve point, whose weights. */
export const evalRowName = (e: Pick<StudyEval, 'run' | 'atEpochs' | 'weights'>): string =>
  `${e.run}${e.atEpochs === undefined ? '' : `@${e.atEpochs}ep`}${e.weights === 'student' ? '-student' : ''}`;

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

/** A family's evaluations of one run at one point of its curve (undefined: the end), teacher then student. */
function runEvals(family: Family, arm: ArmName, id: string, first: boolean, atEpochs: number | undefined): StudyEval[] {
  const out: StudyEval[] = [];
  const students = family.students ?? { probes: STUDENT_PROBES, runs: 'first' };
  const atPoint = (probes: ProbeName[]) =>
    atEpochs === undefined ? probes : probes.filter((p) => !(family.curve?.endOnly ?? []).includes(p));
  for (const e of family.evals) {
    const teacher = atPoint(arm === 'capi' ? [...new Set([...e.probes, ...(e.mainProbes ?? [])])] : e.probes);
    const baselines = first && atEpochs === undefined;
    out.push({ run: id, task: e.task, probes: teacher, baselines, weights: 'teacher', atEpochs, config: e.config });
    const studentRun = students.runs === 'first' ? first : arm === 'capi';
    const asked = [...e.probes, ...(e.mainProbes ?? [])];
    const probes = atPoint(students.probes.filter((x) => asked.includes(x)));
    if (studentRun && probes.length && TASKS[e.task].kind !== 'segmentation')
      out.push({ run: id, task: e.task, probes, baselines: false, weights: 'student', atEpochs, config: e.config });
  }
  return out;
}

/**
 * Runs in the order that makes a partial study useful: the default arm's first seed in each
 * family (with the baselines and the student), the supervised ceilings, the default arm's other
 * seeds, then the other arms. The seeds come before the arms because a single-seed arm's SE takes
 * its seed-to-seed spread from the default arm's seeds (src/report/statistics.ts
 * withSeedSpreadOf): without them an arm's claim would rest on the test-set SE alone.
 */
function expand(p: PlanShape): Plan {
  const order: { arm: ArmName; seed: number }[] = [
    { arm: 'capi', seed: p.seeds[0] },
    ...p.seeds.slice(1).map((seed) => ({ arm: 'capi' as ArmName, seed })),
    ...p.arms.filter((a) => a !== 'capi').map((arm) => ({ arm, seed: p.seeds[0] })),
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
      for (const atEpochs of [...(family.curve?.epochs ?? []), undefined]) evals.push(...runEvals(family, arm, id, first, atEpochs));
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
 * paper's 1 - lr a 700-step teacher would still be ~25% its random init.
 */
const SHORT_RUN_MOMENTUM = { teacherInitShareTarget: 0.01 };

/**
 * The fmnist-tiny model on the 42 px fmnist-canvas images with 6 px patches: the same 7 x 7 token
 * grid (and cost a step) as on Fashion-MNIST.
 */
const CANVAS_MODEL = { data: 'fmnist-canvas', imageSize: 42, patchSize: 6 };

/**
 * The teacher momentum as the paper's schedules set it, as a share of the run: the final teacher's
 * mean age (the weight-averaged age of the students it holds, src/pretrain/diagnostics.ts) is 1.8%
 * of the run for the release recipe (0.999 over 500k steps) and 2.2% for the 100k-step ablations
 * (0.996): 2%.
 */
const PAPER_MOMENTUM = { teacherMeanAgeShare: 0.02 };

/** The medium plan's arms: the Table 1 ablations a 7 x 7 grid can resolve (block masks need more patches; see the plan's summary). */
const MEDIUM_ARMS: ArmName[] = ['capi', 'mask-uniform', 'registers-0', 'sk-standard'];

/** The fmnist-canvas family: one set of canvases, classification and dense; `fields` sets the run length. */
function canvasFamily(
  fields: Record<string, unknown>,
  curve: number[],
  evalConfig: Partial<EvalConfig>,
  dense: Partial<EvalConfig>,
  monitor: RunMonitor,
): Family {
  return {
    name: 'canvas',
    supervisedCeiling: true,
    fields: { ...CANVAS_MODEL, ...PAPER_MOMENTUM, ...fields },
    monitor,
    curve: { epochs: curve, endOnly: ['attentive'] },
    students: { probes: ['linear', 'knn', 'predictor-pooling'], runs: 'default-arm' },
    evals: [
      { task: 'fmnist-canvas', probes: ['linear', 'knn'], mainProbes: ['predictor-pooling', 'attentive'], config: evalConfig },
      { task: 'fmnist-canvas-dense', probes: ['knn', 'knn-patch', 'knn-centered', 'logreg'], config: dense },
    ],
  };
}

/** A CAPI small enough that a test trains it in well under a second per step. */
const TINY_MODEL = { dim: 32, depth: 1, heads: 1, predDim: 32, predDepth: 1, predHeads: 1, numClusters: 16, numPredictions: 4 };
const TINY_STEPS = { dataDir: 'data/fmnist-slice', batchSize: 16, steps: 3, checkpointEvery: 1, ...TINY_MODEL };
const TINY_RUN = { ...TINY_STEPS, ...SHORT_RUN_MOMENTUM };

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
          // Every half epoch (6 points a run; the evidence of what run length does): 6,000 forward
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
  'medium-tiny': () =>
    expand({
      name: 'medium-tiny',
      summary:
        "test-sized: plan medium's structure (learning curve, students, the canvas tasks) on the committed data/fmnist-slice, 6 steps a run",
      estimate: 'about 1 min with the native path',
      preset: 'fmnist-tiny',
      families: [
        canvasFamily(
          { ...TINY_STEPS, canvases: 64, steps: 0, epochs: 6 },
          [2, 4],
          { dataDir: 'data/fmnist-slice', limitTrain: 64, limitTest: 32, probeSteps: 10, batchSize: 32 },
          { dataDir: 'data/fmnist-slice', scenesTrain: 12, scenesTest: 6, logregMaxIter: 10 },
          { task: 'fmnist-canvas', dataDir: 'data/fmnist-slice', every: 4, train: 32, test: 16 },
        ),
      ],
      arms: ['capi', 'registers-0'],
      seeds: [0, 1],
    }),
  medium: () =>
    expand({
      name: 'medium',
      summary:
        "fmnist-tiny on fmnist-canvas (one Fashion-MNIST item at a random scale and place on a 42 px canvas; classification 60k / 10k and the same canvases as a dense task, 2,000 / 1,000), 30 epochs (7,031 steps) a run with the paper's teacher (mean age 2% of the run), evaluated at 3, 10 and 30 epochs (teacher and student); arms: default x 3 seeds, uniform 90% masking, 0 registers, standard Sinkhorn-Knopp, supervised ceiling. Left out: aligned Fashion-MNIST (nothing beats pixels there: plan small), the block and inverse-block-without-roll arms (on 7 x 7 patches plan small put them within 1.3 points of the default, below what 3 seeds resolve)",
      estimate:
        "about 36 hours on 2 cores with the native path (measured on a 2-core AMD EPYC VM and a 2-core Intel Xeon VM: a canvas run trains at 160-170 images/s, 30 epochs in 3.1-3.5 h, the supervised ceiling's too; a default-arm run's evaluations ~1.7 h, 29 min of it the attentive probe; an ablation arm's ~35 min; the supervised ceiling's 43 min; the baselines', once, 2-4 h); resumable: rerun the same command, with --hand-off to continue from a fresh clone",
      preset: 'fmnist-tiny',
      families: [
        canvasFamily(
          { epochs: 30 },
          [3, 10],
          { attentiveSteps: 5000, attentiveBatchSize: 256, attentiveRefineSteps: 50000 },
          { scenesTrain: 2000, scenesTest: 1000 },
          // Every 2 epochs (15 points a run; 6,000 forward passes each).
          { task: 'fmnist-canvas', every: 469, train: 5000, test: 1000 },
        ),
      ],
      arms: MEDIUM_ARMS,
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
