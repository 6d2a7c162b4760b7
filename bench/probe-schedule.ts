/**
 * `npm run bench:probe-schedule -- --checkpoint RUN [--probe attentive --steps 2500,5000,10000 --lrs 1e-2,2e-2,5e-2]`:
 * how a probe's held-out and test accuracy grow with its schedule length, on a checkpoint's
 * features of a classification task (read from the evaluation's feature cache, or extracted into
 * it). One line per schedule length: the held-out accuracy of every grid point, the best, its test
 * accuracy and the seconds. This is the measurement that sizes the probe schedules (docs/evaluation.md;
 * src/probes/grid.ts REFINE_KEEP): a schedule is long enough when doubling it moves
 * the best held-out accuracy by less than one held-out SE.
 */
import { z } from 'zod';
import { commandConfig, isMain, runMain } from '../src/cli/command.js';
import type { ClassificationTask } from '../src/eval/tasks.js';
import { TASKS } from '../src/eval/tasks.js';
import { EvalConfigSchema } from '../src/eval/config.js';
import { featureBatch } from '../src/eval/evaluate.js';
import { capiFeatureModel } from '../src/features/models.js';
import { extractFeatures } from '../src/features/extract.js';
import { loadEncoder } from '../src/model/io/load.js';
import { attentiveFamily, linearFamily } from '../src/probes/families.js';
import { PROBE_WDS } from '../src/probes/grid.js';
import { trainProbeGrid } from '../src/probes/train.js';
import { initBackend } from '../src/runtime/backend.js';
import { validate } from '../src/runtime/schema.js';

const numberList = (description: string, def: string) =>
  z
    .string()
    .default(def)
    .describe(description)
    .transform((s, ctx) => {
      const xs = s.split(',').map(Number);
      if (xs.some((x) => !Number.isFinite(x) || x <= 0))
        ctx.addIssue({ code: 'custom', message: `'${s}' is not a list of positive numbers` });
      return xs;
    });

export const BENCH_PROBE_SCHEDULE = {
  usage: 'npm run bench:probe-schedule -- --checkpoint RUN [options]',
  summary: "A probe's held-out / test accuracy at several schedule lengths, on a checkpoint's (cached) features of a classification task.",
  schema: z.object({
    checkpoint: z.string().min(1).describe('pretraining run folder (or teacher export) whose features are probed'),
    task: z.enum(['fmnist', 'imagenet']).default('fmnist').describe('classification task'),
    dataDir: z.string().default('').describe('fmnist: folder of the Fashion-MNIST files (default: the Debian package)'),
    dataRoot: z.string().default('').describe('imagenet: folder with train/ and val/'),
    probe: z.enum(['attentive', 'linear']).default('attentive').describe('attentive on patch tokens, or linear on average pooling'),
    steps: numberList('schedule lengths, comma-separated', '2500,5000,10000,20000'),
    lrs: numberList('peak lrs (used as given: no batch / 256 scaling)', '1e-2,2e-2,5e-2,1e-1'),
    wds: numberList('weight decays', String(PROBE_WDS[0])),
    batchSize: z.number().int().min(1).default(256).describe('probe batch'),
    seed: z.number().int().min(0).default(0).describe('probe seed (init and batch order)'),
    cacheDir: z.string().default('.cache/features').describe("feature cache shared with npm run eval; '': none"),
  }),
  aliases: { batch: 'batchSize' },
};

export async function main(argv = process.argv.slice(2)): Promise<void> {
  const parsed = commandConfig(BENCH_PROBE_SCHEDULE, argv);
  if (!parsed) return;
  const c = parsed.config;
  const info = await initBackend('auto');
  console.log(`backend: ${info.backend} (${info.provider}, ${info.threads} threads)`);
  const cfg = validate(EvalConfigSchema, {
    task: c.task,
    checkpoint: c.checkpoint,
    dataDir: c.dataDir,
    dataRoot: c.dataRoot,
    cacheDir: c.cacheDir,
  });
  const task = TASKS[c.task] as ClassificationTask;
  const enc = await loadEncoder(c.checkpoint, { weights: 'teacher' });
  const size = task.resolution(enc.config.imageSize);
  const data = task.load(cfg);
  const model = capiFeatureModel('bench', enc.hash, enc.params, enc.config);
  const opts = {
    size,
    transform: task.transform,
    batchSize: featureBatch(cfg, model, size),
    cacheDir: c.cacheDir,
    maxBytes: cfg.maxFeatureGb * 2 ** 30,
  };
  const ftr = await extractFeatures(model, data.train, opts);
  const fte = await extractFeatures(model, data.test, opts);
  model.dispose();
  console.log(`features: ${ftr.n} train / ${fte.n} test, ${ftr.tokens} tokens x ${ftr.patchDim}${ftr.fromCache ? ' (cache)' : ''}`);
  const labels = (d: { size: number; label(i: number): number }) => Int32Array.from({ length: d.size }, (_, i) => d.label(i));
  const attentive = c.probe === 'attentive';
  const rowShape = attentive ? [ftr.tokens, ftr.patchDim] : [ftr.patchDim];
  const train = { x: attentive ? ftr.patch : ftr.avg, rowShape, labels: labels(data.train) };
  const test = { x: attentive ? fte.patch : fte.avg, rowShape, labels: labels(data.test) };
  const grid = c.lrs.flatMap((lr) => c.wds.map((wd) => ({ lr, wd })));
  for (const steps of c.steps) {
    const r = await trainProbeGrid(attentive ? attentiveFamily : linearFamily, train, test, data.train.numClasses, {
      epochs: 0,
      steps,
      batchSize: c.batchSize,
      seed: c.seed,
      grid,
      halfScheduleCheck: false,
    });
    const heldOut = grid.map((g, i) => `${g.lr}/${g.wd} ${(100 * r.valAccuracy[i]).toFixed(2)}`).join(', ');
    const best = grid[r.best];
    console.log(
      `${c.probe} ${steps} x ${c.batchSize}: held-out ${heldOut}; best lr ${best.lr} wd ${best.wd}: held-out ${(100 * r.valAccuracy[r.best]).toFixed(2)}, test ${(100 * r.testAccuracy).toFixed(2)}; ${r.seconds.toFixed(0)} s`,
    );
  }
}

if (isMain(import.meta.url)) runMain(main);
