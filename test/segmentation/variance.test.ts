/** Feature-variance shares: between-group over total sum of squares, against hand computations. */
import { describe, expect, it } from 'vitest';
import { featureShares, groupShare, subtractGroupMeans } from '../../src/segmentation/variance.js';

describe('groupShare', () => {
  it('equals between-group / total sum of squares about the mean, on a hand-made matrix', () => {
    // 4 rows x 1 dim: [13, 11, 9, 7], mean 10, centred [3, 1, -1, -3], total SS 20.
    const x = Float32Array.from([13, 11, 9, 7]);
    // Groups {0,1} and {2,3}: centred means 2 and -2, between SS 2 * 4 + 2 * 4 = 16.
    expect(groupShare(x, 1, Int32Array.from([0, 0, 1, 1]), 2)).toBeCloseTo(16 / 20, 12);
    // Groups {0,2} and {1,3}: centred means 1 and -1, between SS 4.
    expect(groupShare(x, 1, Int32Array.from([0, 1, 0, 1]), 2)).toBeCloseTo(4 / 20, 12);
  });

  it('is 1 when every row equals its group mean and 0 when the group means are all the mean', () => {
    const same = Float32Array.from([1, 2, 1, 2, -1, -2, -1, -2]); // [4, 2], groups of 2 identical rows
    expect(groupShare(same, 2, Int32Array.from([0, 0, 1, 1]), 2)).toBeCloseTo(1, 12);
    const opposite = Float32Array.from([1, 2, -1, -2, 3, 1, -3, -1]);
    expect(groupShare(opposite, 2, Int32Array.from([0, 0, 1, 1]), 2)).toBeCloseTo(0, 12);
  });
});

describe('featureShares', () => {
  it('groups rows by image and by position within the image', () => {
    // 2 images x 2 positions x 1 dim: image offsets ±2, position offsets ±1 (no interaction).
    // Rows [3, 1, -1, -3]: image SS 16, position SS 4, total 20.
    const shares = featureShares({ feats: Float32Array.from([3, 1, -1, -3]), rowImage: Int32Array.from([0, 0, 1, 1]), images: 2 }, 1);
    expect(shares.image).toBeCloseTo(0.8, 12);
    expect(shares.position).toBeCloseTo(0.2, 12);
  });
});

describe('subtractGroupMeans', () => {
  it("removes each group's mean row: hand-made values, and the image share of what is left is 0", () => {
    // 2 images x 2 rows x 2 dims; image 0 rows (1, 2), (3, 6): mean (2, 4); image 1 rows (0, 0), (2, -2): mean (1, -1).
    const x = Float32Array.from([1, 2, 3, 6, 0, 0, 2, -2]);
    const group = Int32Array.from([0, 0, 1, 1]);
    expect(Array.from(subtractGroupMeans(x, 2, group, 2))).toEqual([-1, -2, 1, 2, -1, 1, 1, -1]);
    expect(groupShare(subtractGroupMeans(x, 2, group, 2), 2, group, 2)).toBeCloseTo(0, 12);
  });
});
