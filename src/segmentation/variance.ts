/**
 * Where the variance of a dense split's patch features lies (evidence for why a probe ranks models
 * as it does). The image share is the part of the total sum of squares that
 * each image's mean patch feature explains (what all patches of an image have in common); the
 * position share, the part each patch position's mean explains. A k-NN over features whose
 * variance is largely per-image finds neighbours in similar images rather than on the same kind
 * of object; a logistic probe can weight those directions down.
 */
import type { PatchSet } from './protocol.js';

export interface FeatureShares {
  /** Share of the variance explained by the image means. */
  image: number;
  /** Share explained by the patch-position means (rows of an image in raster order). */
  position: number;
}

/** Between-group over total sum of squares of the rows of x [n, dim] about their mean (ANOVA's R²). */
export function groupShare(x: Float32Array, dim: number, group: Int32Array, groups: number): number {
  const n = group.length;
  if (x.length !== n * dim) throw new Error(`groupShare: ${x.length} values for ${n} rows of ${dim}`);
  const mean = new Float64Array(dim);
  for (let r = 0; r < n; r++) for (let d = 0; d < dim; d++) mean[d] += x[r * dim + d];
  for (let d = 0; d < dim; d++) mean[d] /= n;
  const sum = new Float64Array(groups * dim);
  const count = new Float64Array(groups);
  let total = 0;
  for (let r = 0; r < n; r++) {
    const g = group[r];
    count[g]++;
    for (let d = 0; d < dim; d++) {
      const v = x[r * dim + d] - mean[d];
      sum[g * dim + d] += v;
      total += v * v;
    }
  }
  let between = 0;
  for (let g = 0; g < groups; g++) {
    if (!count[g]) continue;
    for (let d = 0; d < dim; d++) between += (sum[g * dim + d] * sum[g * dim + d]) / count[g];
  }
  return total > 0 ? between / total : 0;
}

/** The image and position shares of a split whose every image has the same number of rows (raster order). */
export function featureShares(set: Pick<PatchSet, 'feats' | 'rowImage' | 'images'>, dim: number): FeatureShares {
  const rows = set.rowImage.length;
  const perImage = rows / set.images;
  if (!Number.isInteger(perImage)) throw new Error(`featureShares: ${rows} rows is not a whole number of rows for ${set.images} images`);
  const position = Int32Array.from({ length: rows }, (_, r) => r % perImage);
  return {
    image: groupShare(set.feats, dim, set.rowImage, set.images),
    position: groupShare(set.feats, dim, position, perImage),
  };
}

/**
 * Each row of x [n, dim] minus the mean of its group's rows (a new array): what is left of patch
 * features once their image's shared part (the image share above) is removed.
 */
export function subtractGroupMeans(x: Float32Array, dim: number, group: Int32Array, groups: number): Float32Array {
  const n = group.length;
  if (x.length !== n * dim) throw new Error(`subtractGroupMeans: ${x.length} values for ${n} rows of ${dim}`);
  const sum = new Float64Array(groups * dim);
  const count = new Float64Array(groups);
  for (let r = 0; r < n; r++) {
    count[group[r]]++;
    for (let d = 0; d < dim; d++) sum[group[r] * dim + d] += x[r * dim + d];
  }
  const out = new Float32Array(x.length);
  for (let r = 0; r < n; r++) {
    const g = group[r];
    for (let d = 0; d < dim; d++) out[r * dim + d] = x[r * dim + d] - sum[g * dim + d] / count[g];
  }
  return out;
}
