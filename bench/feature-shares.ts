/**
 * `npm run bench:feature-shares -- --features FILE.safetensors [--per-image 64]`: how the variance
 * of a dense task's standardised patch features splits (a feature cache file of `npm run eval`),
 * a figure a line: the shares explained by each image's mean patch feature and by each patch
 * position's mean (src/segmentation/variance.ts; the dense evaluation records the same figures
 * on its test split in each result's details.featureShares).
 */
import { z } from 'zod';
import { commandConfig, isMain, runMain } from '../src/cli/command.js';
import { readSafetensors } from '../src/model/io/safetensors.js';
import { applyStandardizer, fitStandardizer } from '../src/segmentation/standardize.js';
import { featureShares } from '../src/segmentation/variance.js';

export const BENCH_FEATURE_SHARES = {
  usage: 'npm run bench:feature-shares -- --features FILE.safetensors [--per-image N]',
  summary: 'Shares of patch-feature variance explained by image means and by position means.',
  schema: z.object({
    features: z.string().min(1).describe('a feature cache file with a "patch" tensor (.cache/features/*.safetensors)'),
    perImage: z.number().int().min(1).default(64).describe('patches per image (rows are image-major)'),
  }),
};

export async function main(argv = process.argv.slice(2)): Promise<void> {
  const parsed = commandConfig(BENCH_FEATURE_SHARES, argv);
  if (!parsed) return;
  const { features: file, perImage } = parsed.config;
  const patch = readSafetensors(file).tensors.get('patch');
  if (!patch) throw new Error(`${file} has no "patch" tensor: pass a feature cache file of npm run eval`);
  const [n, dim] = patch.shape;
  if (n % perImage) throw new Error(`${file}: ${n} rows is not a multiple of --per-image ${perImage}`);
  const x = patch.data as Float32Array;
  const images = n / perImage;
  const shares = featureShares(
    {
      feats: applyStandardizer(fitStandardizer(x, dim), x),
      rowImage: Int32Array.from({ length: n }, (_, r) => Math.floor(r / perImage)),
      images,
    },
    dim,
  );
  console.log(`features: ${n} patches x ${dim}, ${images} images`);
  console.log(`share of variance in image means: ${shares.image.toFixed(3)}`);
  console.log(`share of variance in position means: ${shares.position.toFixed(3)}`);
}

if (isMain(import.meta.url)) runMain(main);
