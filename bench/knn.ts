/**
 * `npm run bench:knn -- --features FILE.safetensors [--queries 10000 --k 30]`: exact vs HNSW
 * k-NN on real patch features (any feature cache file of `npm run eval`, e.g. a segmentation
 * train split under .cache/features): the last `queries` rows query the others, after the
 * train-split standardisation. Prints the time of each and the HNSW recall, a figure a line.
 */
import { parseArgs, runMain, take } from '../src/cli/args.js';
import { readSafetensors } from '../src/model/io/safetensors.js';
import { initBackend } from '../src/runtime/backend.js';
import { knnSearch } from '../src/segmentation/knn.js';
import { knnRecall, knnSearchHnsw } from '../src/segmentation/knn-hnsw.js';
import { applyStandardizer, fitStandardizer } from '../src/segmentation/standardize.js';

runMain(async () => {
  const { values } = parseArgs(process.argv.slice(2));
  const file = take(values, 'features', '');
  if (!file) throw new Error('--features FILE.safetensors is required (a feature cache file with a "patch" tensor)');
  const queries = Number(take(values, 'queries', '10000'));
  const k = Number(take(values, 'k', '30'));
  const info = await initBackend('auto', Number(take(values, 'threads', '2')));
  console.log(`backend: ${info.backend} (${info.threads} threads)`);
  const patch = readSafetensors(file).tensors.get('patch');
  if (!patch) throw new Error(`${file} has no "patch" tensor: pass a feature cache file of npm run eval`);
  const [rows, dim] = patch.shape;
  const n = rows - queries;
  if (n <= k) throw new Error(`${file} has ${rows} rows: fewer than --queries ${queries} + k`);
  const x = patch.data as Float32Array;
  const z = applyStandardizer(fitStandardizer(x.subarray(0, n * dim), dim), x);
  const base = z.subarray(0, n * dim), q = z.subarray(n * dim);
  console.log(`features: ${n} base rows x ${dim}, ${queries} queries, k=${k}`);
  for (const metric of ['cosine', 'l2'] as const) {
    let t0 = performance.now();
    const exact = knnSearch(base, n, q, queries, dim, k, metric);
    console.log(`exact ${metric} seconds: ${((performance.now() - t0) / 1000).toFixed(1)}`);
    t0 = performance.now();
    const approx = knnSearchHnsw(base, n, q, queries, dim, k, metric);
    console.log(`HNSW ${metric} (build + queries) seconds: ${((performance.now() - t0) / 1000).toFixed(1)}`);
    console.log(`HNSW ${metric} recall@${k}: ${knnRecall(exact, approx).toFixed(4)}`);
  }
});
