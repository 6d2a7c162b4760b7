/**
 * `npm run bench:dense-scale [-- --dir /tmp/capi-dense-scale --memory-gb 16]`: the dense protocol at
 * ADE20K's real size, out of core, on this machine. Writes synthetic ADE20K-shaped features to the
 * sharded store (20,210 train images x 256 patches = 5.17M rows x 1024, 2,000 test images; 150
 * classes plus the ignore label 0, with class structure a classifier can learn), then, without
 * subsampling, times one figure a line: the streamed standardisation, logistic-regression loss and
 * gradient evaluations, and a sample of k-NN queries against the whole base (GFLOP/s against the
 * measured sgemm peak); peak RSS; and the projected wall time of the full grid on 1, 8 and 64
 * Slurm tasks from those per-block rates. The store is kept (--dir) and reused by a rerun.
 */
import * as fs from 'node:fs';
import { z } from 'zod';
import { commandConfig, isMain, runMain } from '../src/cli/command.js';
import { openFeatureStore, shardRange, storeRows, writeShard } from '../src/features/store.js';
import { initBackend } from '../src/runtime/backend.js';
import { cpuKernels } from '../src/runtime/cpu-kernels.js';
import { Rng } from '../src/runtime/rng.js';
import { LOGREG_C_GRID } from '../src/segmentation/logreg.js';
import { prepareOutOfCore } from '../src/segmentation/out-of-core.js';
import { outOfCoreNeighbours } from '../src/segmentation/out-of-core-knn.js';
import { outOfCoreLogRegObjective } from '../src/segmentation/out-of-core-logreg.js';

export const DENSE_SCALE_COMMAND = {
  usage: 'npm run bench:dense-scale -- [--dir DIR] [--memory-gb 16]',
  summary: "The dense protocol out of core at ADE20K's size (5.17M x 1024 training rows): memory, per-block rates, projections.",
  schema: z.object({
    dir: z.string().default('/tmp/capi-dense-scale').describe('feature store of the synthetic features (about 21 GB; kept and reused)'),
    trainImages: z.number().int().min(1).default(20210).describe('training images (256 patches each)'),
    testImages: z.number().int().min(1).default(2000).describe('test images'),
    dim: z.number().int().min(1).default(1024).describe('feature width (ViT-L)'),
    classes: z.number().int().min(2).default(151).describe('labels 0..classes-1; 0 is ignored (ADE20K)'),
    memoryGb: z.number().gt(0).default(16).describe('the protocol memory budget'),
    logregEvals: z.number().int().min(1).default(2).describe('loss-and-gradient evaluations to time'),
    knnQueries: z.number().int().min(1).default(2048).describe('test rows searched against the whole base (a sample)'),
  }),
};

const TOKENS = 256;
const PIXELS = 196; // 14 x 14 pixel labels a patch

/** Class of patch t of image i: three regions of the image with their own classes (a segmentation-like layout). */
function patchClass(rng: Rng, classes: number): (t: number) => number {
  const cls = [0, 1, 2].map(() => rng.randint(1, classes - 1));
  return (t) => (t % 37 === 0 ? 0 : cls[Math.min(2, Math.floor(((t % 16) * 3) / 16))]);
}

/** Writes a split's synthetic store (class centres + noise from a shared table: cheap, learnable) and returns its patch labels. */
function syntheticSplit(dir: string, split: string, images: number, dim: number, classes: number, seed: number) {
  const store = openFeatureStore(dir, {
    model: 'synthetic-ade20k-vitl',
    dataset: `synthetic-ade20k:${split}`,
    images,
    size: 224,
    transform: 'resize',
    tokens: TOKENS,
    grid: 16,
    patchDim: dim,
    globalDim: dim,
    dtype: 'float32',
    shardImages: 256,
  });
  const centres = new Rng(1000);
  const centre = Array.from({ length: classes }, () => Float32Array.from({ length: dim }, () => centres.normal()));
  const noiseRng = new Rng(2000);
  const noise = Float32Array.from({ length: 1 << 20 }, () => 2 * noiseRng.normal());
  const rng = new Rng(seed);
  const rows = images * TOKENS;
  const pixels = new Int32Array(rows * PIXELS);
  const rowImage = new Int32Array(rows);
  for (let s = 0; s < store.shards; s++) {
    const { first, count } = shardRange(store, s);
    const patch = new Float32Array(count * TOKENS * dim);
    for (let i = 0; i < count; i++) {
      const cls = patchClass(rng, classes);
      for (let t = 0; t < TOKENS; t++) {
        const r = (first + i) * TOKENS + t;
        const c = cls(t);
        pixels.fill(c, r * PIXELS, (r + 1) * PIXELS);
        rowImage[r] = first + i;
        const off = rng.randint(0, noise.length - dim - 1);
        const o = (i * TOKENS + t) * dim;
        for (let j = 0; j < dim; j++) patch[o + j] = centre[c][j] + noise[off + j];
      }
    }
    if (!fs.existsSync(`${store.dir}/shard-${String(s).padStart(6, '0')}.safetensors`))
      writeShard(store, s, patch, new Float32Array(count * dim), new Float32Array(count * dim));
  }
  return { store, pixels, rowImage, images };
}

const seconds = (t0: number) => (performance.now() - t0) / 1000;
const rssGb = () => process.resourceUsage().maxRSS / 2 ** 20;

export async function main(argv = process.argv.slice(2)): Promise<void> {
  const parsed = commandConfig(DENSE_SCALE_COMMAND, argv);
  if (!parsed) return;
  const c = parsed.config;
  await initBackend('auto', 2, () => {});
  const kernels = cpuKernels();
  const say = (l: string) => console.log(l);
  say(`kernels: ${kernels.name}`);
  let t0 = performance.now();
  const train = syntheticSplit(c.dir, 'training', c.trainImages, c.dim, c.classes, 1);
  const test = syntheticSplit(c.dir, 'validation', c.testImages, c.dim, c.classes, 2);
  say(
    `store: ${train.images * TOKENS} train rows and ${test.images * TOKENS} test rows x ${c.dim} in ${train.store.dir} (${seconds(t0).toFixed(0)} s to write or find)`,
  );

  // The sgemm peak, as the k-NN uses it (queries x base block).
  const m = 2048;
  const a = Float32Array.from({ length: m * c.dim }, (_, i) => Math.sin(i));
  const b = Float32Array.from({ length: 8192 * c.dim }, (_, i) => Math.cos(i));
  const out = new Float32Array(m * 8192);
  kernels.matmul(a, b, out, m, 8192, c.dim, false, true);
  t0 = performance.now();
  for (let i = 0; i < 3; i++) kernels.matmul(a, b, out, m, 8192, c.dim, false, true);
  const peak = (3 * 2 * m * 8192 * c.dim) / seconds(t0) / 1e9;
  say(`sgemm peak (${m} x 8192 x ${c.dim}, transposed B): ${peak.toFixed(1)} GFLOP/s`);

  t0 = performance.now();
  const source = (s: typeof train) => ({ source: storeRows(s.store), pixels: s.pixels, rowImage: s.rowImage, images: s.images });
  const splits = prepareOutOfCore(source(train), source(test), {
    dim: c.dim,
    pixelsPerPatch: PIXELS,
    numLabels: 256,
    classes: c.classes,
    ignore: [0],
    standardize: true,
    seed: 0,
    kernels,
    memoryBytes: c.memoryGb * 2 ** 30,
  });
  const standardize = seconds(t0);
  say(
    `standardisation (one streamed pass over the train rows): ${standardize.toFixed(1)} s; blocks of ${splits.blockRows} base rows, ${splits.queryRows} queries`,
  );

  const objective = outOfCoreLogRegObjective(splits, 'validation', LOGREG_C_GRID[4]);
  const theta = new Float32Array(c.dim * c.classes + c.classes);
  const evalTimes: number[] = [];
  for (let i = 0; i < c.logregEvals; i++) {
    t0 = performance.now();
    const { loss } = await objective(theta);
    evalTimes.push(seconds(t0));
    say(`logistic regression: loss and gradient over the 90% split in ${evalTimes.at(-1)!.toFixed(1)} s (loss ${loss.toFixed(4)})`);
    theta[i] = 0.01;
  }
  const perEval = Math.min(...evalTimes);

  // A sample of the test queries against every training row (the refit's base).
  const sample = { ...splits, test: { ...splits.test, source: firstRows(splits.test.source, c.knnQueries) } };
  t0 = performance.now();
  outOfCoreNeighbours(sample, 'test', 'cosine', 30);
  const knnSec = seconds(t0);
  let base = 0;
  for (let r = 0; r < splits.train.source.rows; r++) if (splits.training[r]) base++;
  const gflop = (2 * c.knnQueries * base * c.dim) / 1e9;
  say(
    `k-NN: ${c.knnQueries} queries x ${base} base rows x ${c.dim} in ${knnSec.toFixed(1)} s: ${(gflop / knnSec).toFixed(1)} GFLOP/s, ${(gflop / knnSec / peak).toFixed(2)} of the sgemm peak`,
  );
  say(`peak RSS: ${rssGb().toFixed(2)} GiB (budget ${c.memoryGb} GiB)`);

  // Projections of the full protocol: the grid's evaluations (the measured 3,139 for 8 C values + a 423-iteration
  // refit on ADE20K-like features), and the k-NN's two phases (validation: 10% queries x 90% base; test: all test rows x all train).
  const evals = 3139 + 423;
  const valQueries = splits.trainSplit.reduce((n, v) => n + (v === 2 ? 1 : 0), 0);
  const knnFlop = 2 * c.dim * (valQueries * base * 0.9 + test.images * TOKENS * base) * 2; // 2 metrics
  const rate = (gflop / knnSec) * 1e9;
  for (const tasks of [1, 8, 64]) {
    // The C grid spreads over at most 8 tasks (one a C); the k-NN's query blocks over all of them.
    const logreg = (evals * perEval) / Math.min(tasks, 8);
    const knn = knnFlop / rate / tasks;
    say(`projected full grid on ${tasks} task(s): logistic regression ${(logreg / 3600).toFixed(1)} h, k-NN ${(knn / 3600).toFixed(1)} h`);
  }
}

/** The first `n` rows of a row stream. */
function firstRows(src: ReturnType<typeof storeRows>, n: number): ReturnType<typeof storeRows> {
  return {
    rows: Math.min(n, src.rows),
    dim: src.dim,
    forEachBlock(maxRows, f) {
      let left = Math.min(n, src.rows);
      src.forEachBlock(maxRows, (start, feats, count) => {
        if (left <= 0) return;
        const take = Math.min(count, left);
        f(start, feats.subarray(0, take * src.dim), take);
        left -= take;
      });
    },
  };
}

if (isMain(import.meta.url)) runMain(main);
