/** bench:feature-shares: the share of variance that group means explain, against a hand computation. */
import { describe, expect, it } from 'vitest';
import { groupShare } from '../../bench/feature-shares.js';

describe('groupShare', () => {
  it('equals between-group / total sum of squares on a hand-made centred matrix', () => {
    // 4 rows x 1 dim, centred: [3, 1, -1, -3]; groups {0,1} and {2,3} have means 2 and -2.
    // Between-group SS = 2 * 2^2 + 2 * 2^2 = 16; total SS = 9 + 1 + 1 + 9 = 20.
    const x = Float32Array.from([3, 1, -1, -3]);
    expect(groupShare(x, 4, 1, (r) => Math.floor(r / 2), 2)).toBeCloseTo(16 / 20, 12);
    // Groups {0,2} and {1,3}: means 1 and -1, between SS 4.
    expect(groupShare(x, 4, 1, (r) => r % 2, 2)).toBeCloseTo(4 / 20, 12);
  });

  it('is 1 when every row equals its group mean and 0 when the group means are 0', () => {
    const same = Float32Array.from([1, 2, 1, 2, -1, -2, -1, -2]); // [4, 2], groups of 2 identical rows
    expect(groupShare(same, 4, 2, (r) => Math.floor(r / 2), 2)).toBeCloseTo(1, 12);
    const opposite = Float32Array.from([1, 2, -1, -2, 3, 1, -3, -1]);
    expect(groupShare(opposite, 4, 2, (r) => Math.floor(r / 2), 2)).toBeCloseTo(0, 12);
  });
});
