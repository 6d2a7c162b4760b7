/**
 * `npm run bench:feature-shares -- --features FILE.safetensors [--per-image 64]`: how the variance
 * of a dense task's standardised patch features splits (a feature cache file of `npm run eval`).
 * Prints the share explained by each image's mean patch feature (what all patches of an image
 * have in common) and by each patch position's mean, a figure a line. A k-NN over features whose
 * variance is mostly per-image content finds neighbours in similar images rather than on the same
 * kind of object; a logistic probe can weight those directions down.
 */
import { z } from 'zod';
import { commandConfig, isMain, runMain } from '../src/cli/command.js';
import { readSafetensors } from '../src/model/io/safetensors.js';
import { applyStandardizer, fitStandardizer } from '../src/segmentation/standardize.js';

export const BENCH_FEATURE_SHARES = {
  usage: 'npm run bench:feature-shares -- --features FILE.safetensors [--per-image N]',
  summary: 'Shares of patch-feature variance explained by image means and by position means.',
  schema: z.object({
    features: z.string().min(1).describe('a feature cache file with a "patch" tensor (.cache/features/*.safetensors)'),
    perImage: z.number().int().min(1).default(64).describe('patches per image (rows are image-major)'),
  }),
};

/** Share of the total sum of squares of centred rows `x` [n, dim] that group means explain. */
export function groupShare(x: Float32Array, n: number, dim: number, group: (row: number) => number, groups: number): number {
  const sum = new Float64Array(groups * dim);
  const count = new Float64Array(groups);
  for (let r = 0; r < n; r++) {
    const g = group(r);
    count[g]++;
    for (let d = 0; d < dim; d++) sum[g * dim + d] += x[r * dim + d];
  }
  let explained = 0;
  for (let g = 0; g < groups; g++)
    for (let d = 0; d < dim; d++) if (count[g]) explained += (sum[g * dim + d] * sum[g * dim + d]) / count[g];
  let total = 0;
  for (let i = 0; i < n * dim; i++) total += x[i] * x[i];
  return explained / total;
}

export async function main(argv = process.argv.slice(2)): Promise<void> {
  const parsed = commandConfig(BENCH_FEATURE_SHARES, argv);
  if (!parsed) return;
  const { features: file, perImage } = parsed.config;
  const patch = readSafetensors(file).tensors.get('patch');
  if (!patch) throw new Error(`${file} has no "patch" tensor: pass a feature cache file of npm run eval`);
  const [n, dim] = patch.shape;
  if (n % perImage) throw new Error(`${file}: ${n} rows is not a multiple of --per-image ${perImage}`);
  const x = patch.data as Float32Array;
  const z = applyStandardizer(fitStandardizer(x, dim), x);
  console.log(`features: ${n} patches x ${dim}, ${n / perImage} images`);
  console.log(`share of variance in image means: ${groupShare(z, n, dim, (r) => Math.floor(r / perImage), n / perImage).toFixed(3)}`);
  console.log(`share of variance in position means: ${groupShare(z, n, dim, (r) => r % perImage, perImage).toFixed(3)}`);
}

if (isMain(import.meta.url)) runMain(main);
