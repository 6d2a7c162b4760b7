/** A classification task's floor: the most frequent training class predicted for every test image. */
import { describe, expect, it } from 'vitest';
import { majorityFloor } from '../../src/eval/classification.js';

describe('majorityFloor', () => {
  it('scores the most frequent training class on the test labels; ties go to the smallest class', () => {
    // Training labels: class 2 three times, class 0 twice -> predict 2; test: two of five are 2.
    expect(majorityFloor(Int32Array.from([2, 0, 2, 1, 0, 2]), Int32Array.from([2, 1, 2, 0, 3]), 4)).toBeCloseTo(2 / 5, 12);
    // A tie between classes 1 and 3 -> 1; test: one of four is 1.
    expect(majorityFloor(Int32Array.from([3, 1, 3, 1]), Int32Array.from([1, 3, 3, 0]), 4)).toBeCloseTo(1 / 4, 12);
    // Balanced classes (as Fashion-MNIST): 1 / classes.
    expect(majorityFloor(Int32Array.from([0, 1, 2, 0, 1, 2]), Int32Array.from([0, 1, 2]), 3)).toBeCloseTo(1 / 3, 12);
  });
});
