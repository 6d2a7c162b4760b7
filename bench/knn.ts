/**
 * `npm run bench:knn -- --features FILE.safetensors [--queries 10000 --k 30]`: exact vs HNSW
 * k-NN on real patch features (any feature cache file of `npm run eval`, e.g. a segmentation
 * train split under .cache/features): the last `queries` rows query the others, after the
 * train-split standardisation. Prints the time of each and the HNSW recall, a figure a line.
 */
import { z } from 'zod';
import { commandConfig, isMain, runMain } from '../src/cli/command.js';
import { readSafetensors } from '../src/model/io/safetensors.js';
import { initBackend } from '../src/runtime/backend.js';
import { knnSearch } from '../src/features/knn.js';
import { knnRecall, knnSearchHnsw } from '../src/features/knn-hnsw.js';
import { applyStandardizer, fitStandardizer } from '../src/segmentation/standardize.js';

export const BENCH_KNN = {
  usage: 'npm run bench:knn -- --features FILE.safetensors [--queries N --k K]',
  summary: 'Exact vs HNSW k-NN on real patch features (a feature cache file of npm run eval).',
  schema: z.object({
    features: z.string().min(1).describe('a feature cache file with a "patch" tensor (.cache/features/*.safetensors)'),
    queries: z.number().int().min(1).default(10000).describe('the last N rows query the others'),
    k: z.number().int().min(1).default(30).describe('neighbours'),
    threads: z.number().int().min(1).default(2).describe('wasm threads'),
  }),
};

export async function main(argv = process.argv.slice(2)): Promise<void> {
  const parsed = commandConfig(BENCH_KNN, argv);
  if (!parsed) return;
  const { features: file, queries, k, threads } = parsed.config;
  const info = await initBackend('auto', threads);
  console.log(`backend: ${info.backend} (${info.threads} threads)`);
  const patch = readSafetensors(file).tensors.get('patch');
  if (!patch) throw new Error(`${file} has no "patch" tensor: pass a feature cache file of npm run eval`);
  const [rows, dim] = patch.shape;
  const n = rows - queries;
  if (n <= k) throw new Error(`${file} has ${rows} rows: fewer than --queries ${queries} + k`);
  const x = patch.data as Float32Array;
  const z = applyStandardizer(fitStandardizer(x.subarray(0, n * dim), dim), x);
  const base = z.subarray(0, n * dim),
    q = z.subarray(n * dim);
  console.log(`features: ${n} base rows x ${dim}, ${queries} queries, k=${k}`);
  for (const metric of ['cosine', 'l2'] as const) {
    let t0 = performance.now();
    const exact = await knnSearch(base, q, dim, k, metric);
    console.log(`exact ${metric} seconds: ${((performance.now() - t0) / 1000).toFixed(1)}`);
    t0 = performance.now();
    const approx = knnSearchHnsw(base, q, dim, k, metric);
    console.log(`HNSW ${metric} (build + queries) seconds: ${((performance.now() - t0) / 1000).toFixed(1)}`);
    console.log(`HNSW ${metric} recall@${k}: ${knnRecall(exact, approx).toFixed(4)}`);
  }
}

if (isMain(import.meta.url)) runMain(main);
