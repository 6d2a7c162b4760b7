/** Per-image correctness as a result records it: a bitset that decodes to the same flags. */
import { describe, expect, it } from 'vitest';
import { decodeCorrect, encodeCorrect } from '../../src/eval/metrics.js';

describe('per-image correctness', () => {
  it('round-trips through its bitset for a test set that is not a multiple of 8 images', () => {
    const flags = Uint8Array.from([1, 0, 0, 1, 1, 1, 0, 1, 0, 1, 1, 0, 1]);
    const bits = encodeCorrect(flags);
    expect(bits.images).toBe(13);
    // Image j is bit j % 8 of byte j / 8: bytes 0b10111001 and 0b00010110.
    expect([...Buffer.from(bits.bits, 'base64')]).toEqual([0b10111001, 0b00010110]);
    expect(decodeCorrect(bits)).toEqual(flags);
  });

  it('a bitset that does not hold its images decodes to nothing', () => {
    const bits = encodeCorrect(new Uint8Array(16).fill(1));
    expect(decodeCorrect({ ...bits, images: 17 })).toBeUndefined();
  });
});
