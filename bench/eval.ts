/**
 * `npm run bench:eval [-- --rows 200000 --dim 192 --classes 11 --queries 20000 --out bench/out --hnsw false]`:
 * timings of the evaluation classifiers on features of realistic size, one figure per line:
 * the logistic-regression C grid (8 values), the k-NN grid (2 metrics x k in {1,3,10,30}), the
 * approximate (HNSW) search with its recall against the exact one, and one epoch of the
 * 30-probe attentive grid. Features are seeded Gaussian class clusters, saved as
 * .npy (float32 features, int32 labels) so other tools can be timed on the very same arrays.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { z } from 'zod';
import { commandConfig, isMain, runMain } from '../src/cli/command.js';
import { attentiveFamily } from '../src/probes/families.js';
import { CLASSIFIERS } from '../src/eval/classifiers.js';
import { probeGrid } from '../src/probes/grid.js';
import { trainProbeGrid } from '../src/probes/train.js';
import { initBackend } from '../src/runtime/backend.js';
import { Rng } from '../src/runtime/rng.js';
import { knnSearch, knnVotePixels } from '../src/features/knn.js';
import type { KnnResult } from '../src/features/knn.js';
import { knnRecall, knnSearchHnsw } from '../src/features/knn-hnsw.js';
import { disposeLogRegData, fitLogReg, LOGREG_C_GRID, LOGREG_DEFAULTS, prepareLogRegData } from '../src/segmentation/logreg.js';
import { arrayRows, prepareOutOfCore } from '../src/segmentation/out-of-core.js';
import { prepareSegmentation } from '../src/segmentation/protocol.js';
import { cpuKernels } from '../src/runtime/cpu-kernels.js';
import { readNpy, writeNpy } from '../src/runtime/npy.js';

/** Class centres shared by every split (seeded once): train and test samples come from the same classes. */
function classCentres(dim: number, classes: number): Float32Array[] {
  const rng = new Rng(1000);
  return Array.from({ length: classes }, () => Float32Array.from({ length: dim }, () => rng.normal()));
}

/** n samples around the shared centres (per-coordinate noise of spread `noise`), with the sample noise and labels drawn from `seed`. */
function clusters(n: number, dim: number, classes: number, seed: number, noise = 1.5) {
  const rng = new Rng(seed);
  const centres = classCentres(dim, classes);
  const x = new Float32Array(n * dim);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = rng.randint(0, classes - 1);
    for (let j = 0; j < dim; j++) x[i * dim + j] = centres[y[i]][j] + noise * rng.normal();
  }
  return { x, y };
}

/**
 * The dense protocol's classifiers (src/eval/classifiers.ts) on given arrays, each row a "patch"
 * of one pixel: 10% of the training rows select (logistic regression over the reference C grid,
 * k-NN over k x metric), the refit on all of train is tested. Features as given (no
 * standardisation), so other tools can be timed on the very same problem. Engine `tfjs` holds the
 * arrays on the wasm heap (protocol.ts); `cpu` is the out-of-core engine (out-of-core.ts), whose
 * validation fits each C from zeros, as scikit-learn does.
 */
async function protocolOnArrays(
  dir: string,
  maxIter: number,
  engine: 'tfjs' | 'cpu',
  names: readonly ('seg.logreg' | 'seg.knn')[],
): Promise<void> {
  const read = (name: string) => readNpy(path.join(dir, `${name}.npy`));
  const [xtr, ytr, xte, yte] = ['train_features', 'train_labels', 'test_features', 'test_labels'].map(read);
  const dim = xtr.shape[1];
  let classes = 0;
  for (const y of [ytr.data, yte.data]) for (const v of y) classes = Math.max(classes, v + 1);
  const set = (x: Float32Array, y: Int32Array) => ({ feats: x, pixels: y, rowImage: Int32Array.from(y.keys()), images: y.length });
  const labels = { dim, pixelsPerPatch: 1, numLabels: classes, classes, ignore: [], standardize: false, seed: 0 };
  const train = set(xtr.data as Float32Array, Int32Array.from(ytr.data));
  const test = set(xte.data as Float32Array, Int32Array.from(yte.data));
  const rows = (s: typeof train) => ({ ...s, source: arrayRows(s.feats, dim) });
  const splits =
    engine === 'tfjs'
      ? prepareSegmentation(train, test, labels)
      : prepareOutOfCore(rows(train), rows(test), { ...labels, kernels: cpuKernels(), memoryBytes: 0.6 * os.totalmem() });
  console.log(`features: ${ytr.data.length} x ${dim} train, ${yte.data.length} test, ${classes} classes (${dir}); engine ${engine}`);
  for (const name of names) {
    const t0 = performance.now();
    const out = await CLASSIFIERS[name].run(splits, { knnIndex: 'exact', logregMaxIter: maxIter, progress: () => {} });
    const sec = (performance.now() - t0) / 1000;
    const what =
      name === 'seg.logreg'
        ? `logistic regression (8 C, max ${maxIter} iterations, select + refit)`
        : 'k-NN (k 1,3,10,30 x cosine,l2, select + refit)';
    console.log(`${what} seconds: ${sec.toFixed(1)}`);
    console.log(`${what} chose: ${out.bestLabel}`);
    console.log(`${what} test accuracy: ${(100 * out.selection.test.accuracy).toFixed(2)}`);
  }
}

const count = (def: number, description: string) => z.number().int().min(1).default(def).describe(description);

export const BENCH_EVAL = {
  usage: 'npm run bench:eval -- [options]',
  summary: 'Timings of the evaluation classifiers on synthetic features of realistic size (saved as .npy).',
  schema: z.object({
    rows: count(200000, 'training feature rows'),
    dim: count(192, 'feature dimension'),
    classes: count(11, 'classes'),
    queries: count(20000, 'test rows'),
    logregMaxIter: count(100, 'L-BFGS iterations per C'),
    attentiveSamples: count(4096, 'samples of the attentive-grid epoch'),
    noise: z
      .number()
      .gt(0)
      .default(1.5)
      .describe('per-coordinate spread of the synthetic samples around their class centre (larger: harder)'),
    out: z.string().min(1).default('bench/out').describe('folder of the .npy files'),
    writeOnly: z.boolean().default(false).describe('only write the synthetic arrays (to time both tools on them with --features)'),
    features: z
      .string()
      .default('')
      .describe("run the protocol on DIR/{train,test}_{features,labels}.npy instead of timing synthetic features; '': synthetic"),
    engine: z.enum(['tfjs', 'cpu']).default('tfjs').describe('the dense engine of a --features run: tfjs (in memory) or cpu (out of core)'),
    classifiers: z.enum(['both', 'logreg', 'knn']).default('both').describe('the classifiers of a --features run'),
    hnsw: z.boolean().default(true).describe('also time the approximate (HNSW) search'),
    threads: z.number().int().min(1).default(2).describe('wasm threads'),
  }),
};

export async function main(argv = process.argv.slice(2)): Promise<void> {
  const parsed = commandConfig(BENCH_EVAL, argv);
  if (!parsed) return;
  const { rows, dim, classes, queries, logregMaxIter: maxIter, attentiveSamples: attSamples, out, hnsw, threads, noise } = parsed.config;
  const info = await initBackend('auto', threads);
  console.log(`backend: ${info.backend} (${info.provider}, ${info.threads} threads)`);
  if (parsed.config.features) {
    const which = parsed.config.classifiers;
    const names = (['seg.logreg', 'seg.knn'] as const).filter((n) => which === 'both' || n === `seg.${which}`);
    return protocolOnArrays(parsed.config.features, maxIter, parsed.config.engine, names);
  }
  const train = clusters(rows, dim, classes, 1, noise);
  const test = clusters(queries, dim, classes, 2, noise);
  fs.mkdirSync(out, { recursive: true });
  writeNpy(path.join(out, 'train_features.npy'), train.x, [rows, dim]);
  writeNpy(path.join(out, 'train_labels.npy'), train.y, [rows]);
  writeNpy(path.join(out, 'test_features.npy'), test.x, [queries, dim]);
  writeNpy(path.join(out, 'test_labels.npy'), test.y, [queries]);
  console.log(`features: ${rows} x ${dim} train, ${queries} test, ${classes} classes (saved under ${out})`);
  if (parsed.config.writeOnly) return;

  let t0 = performance.now();
  const data = prepareLogRegData(train.x, train.y, dim, classes);
  let iters = 0,
    evals = 0;
  for (const c of LOGREG_C_GRID) {
    const m = await fitLogReg(data, { ...LOGREG_DEFAULTS, maxIter, c });
    iters += m.iterations;
    evals += m.evaluations;
  }
  disposeLogRegData(data);
  const lrSec = (performance.now() - t0) / 1000;
  console.log(
    `logreg C grid (8 fits, max ${maxIter} iterations, ${iters} in all, ${evals} loss+gradient evaluations) seconds: ${lrSec.toFixed(1)}`,
  );
  console.log(`logreg seconds per evaluation: ${(lrSec / evals).toFixed(3)}`);

  t0 = performance.now();
  const labels1 = Int32Array.from(train.y);
  const exact: Record<string, KnnResult> = {};
  for (const metric of ['cosine', 'l2'] as const) {
    const res = await knnSearch(train.x, test.x, dim, 30, metric);
    exact[metric] = res;
    for (const k of [1, 3, 10, 30]) knnVotePixels(res, k, labels1, 1, classes);
  }
  console.log(`k-NN grid (2 metrics x k in 1,3,10,30, exact) seconds: ${((performance.now() - t0) / 1000).toFixed(1)}`);
  if (hnsw) {
    for (const metric of ['cosine', 'l2'] as const) {
      t0 = performance.now();
      const approx = knnSearchHnsw(train.x, test.x, dim, 30, metric);
      const sec = (performance.now() - t0) / 1000;
      console.log(`k-NN HNSW ${metric} (index build + ${queries} queries, k=30, defaults) seconds: ${sec.toFixed(1)}`);
      console.log(`k-NN HNSW ${metric} recall@30 vs exact: ${knnRecall(exact[metric], approx).toFixed(4)}`);
    }
  }

  const tokens = 49;
  const att = clusters(attSamples * tokens, dim, classes, 3);
  const attLabels = Int32Array.from({ length: attSamples }, (_, i) => att.y[i * tokens]);
  const r = await trainProbeGrid(
    attentiveFamily,
    { x: att.x, rowShape: [tokens, dim], labels: attLabels },
    { x: att.x.subarray(0, 256 * tokens * dim), rowShape: [tokens, dim], labels: attLabels.subarray(0, 256) },
    classes,
    {
      epochs: 1,
      batchSize: 256,
      seed: 0,
      grid: probeGrid(256),
    },
  );
  console.log(`attentive grid (30 probes, ${attSamples} samples x ${tokens} tokens x ${dim}) seconds per epoch: ${r.seconds.toFixed(1)}`);
}

if (isMain(import.meta.url)) runMain(main);
