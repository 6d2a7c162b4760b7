/** The dense protocol's CPU kernels: the JS ones against hand-computed values, the native ones (where built) against the JS ones. */
import { describe, expect, it } from 'vitest';
import { cpuKernels, jsKernels } from '../../src/runtime/cpu-kernels.js';
import { Rng } from '../../src/runtime/rng.js';

const rand = (n: number, seed: number) => {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, () => r.normal());
};
const js = jsKernels();
const native = cpuKernels();

describe('CPU kernels (JS) by hand', () => {
  it('matmul with either operand transposed', () => {
    const a = Float32Array.from([1, 2, 3, 4, 5, 6]); // [2, 3]
    const b = Float32Array.from([1, 0, 0, 1, 1, 1]); // [3, 2]
    const c = new Float32Array(4);
    js.matmul(a, b, c, 2, 2, 3, false, false);
    expect(Array.from(c)).toEqual([4, 5, 10, 11]);
    const bt = Float32Array.from([1, 0, 1, 0, 1, 1]); // b transposed, [2, 3]
    js.matmul(a, bt, c, 2, 2, 3, false, true);
    expect(Array.from(c)).toEqual([4, 5, 10, 11]);
  });

  it('topkMerge keeps the k best per row across blocks, with column offsets and index bases', () => {
    const vals = new Float32Array(4).fill(Number.NEGATIVE_INFINITY);
    const idx = new Int32Array(4).fill(-1);
    js.topkMerge(Float32Array.from([1, 5, 3, 2, 0, 9]), 2, 3, undefined, 0, 2, vals, idx); // rows [1 5 3], [2 0 9]
    expect([Array.from(vals), Array.from(idx)]).toEqual([
      [5, 3, 9, 2],
      [1, 2, 2, 0],
    ]);
    js.topkMerge(Float32Array.from([4, 1, 8, 8]), 2, 2, Float32Array.from([0, 3]), 10, 2, vals, idx); // +[0, 3]: [4 4], [8 11]
    expect([Array.from(vals), Array.from(idx)]).toEqual([
      [5, 4, 11, 9],
      [1, 10, 11, 2],
    ]);
  });

  it('softmaxXent: the gradient softmax - onehot and the summed cross-entropy', () => {
    const logits = Float32Array.from([0, Math.log(3), 0, 0]); // row 0: p = [1/4, 3/4]; row 1: [1/2, 1/2]
    const loss = js.softmaxXent(logits, Int32Array.from([1, 0]), 2, 2);
    expect(loss).toBeCloseTo(-Math.log(3 / 4) - Math.log(1 / 2), 6);
    const want = [0.25, -0.25, -0.5, 0.5];
    for (let i = 0; i < 4; i++) expect(logits[i]).toBeCloseTo(want[i], 6);
    // With a bias: row 0 becomes [log 3, log 3] (p = [1/2, 1/2]), row 1 [log 3, 0] (p = [3/4, 1/4]);
    // the column sums of softmax - onehot are the bias's gradient.
    const biased = Float32Array.from([0, 0, 0, -Math.log(3)]);
    const colSum = Float64Array.from([10, 20]); // added to
    const loss2 = js.softmaxXent(biased, Int32Array.from([1, 0]), 2, 2, Float32Array.from([Math.log(3), Math.log(3)]), colSum);
    expect(loss2).toBeCloseTo(-Math.log(1 / 2) - Math.log(3 / 4), 6);
    const grad = [0.5, -0.5, -0.25, 0.25];
    for (let i = 0; i < 4; i++) expect(biased[i]).toBeCloseTo(grad[i], 6);
    expect(colSum[0]).toBeCloseTo(10 + 0.5 - 0.25, 6);
    expect(colSum[1]).toBeCloseTo(20 - 0.5 + 0.25, 6);
  });

  it('colMoments and affineRows (standardise, then l2-normalise)', () => {
    const x = Float32Array.from([1, 2, 3, 6]); // [2, 2]
    const sum = new Float64Array(2);
    const sq = new Float64Array(2);
    js.colMoments(x, 2, 2, sum, sq);
    expect([Array.from(sum), Array.from(sq)]).toEqual([
      [4, 8],
      [10, 40],
    ]);
    js.affineRows(x, 2, 2, Float32Array.from([2, 4]), Float32Array.from([1, 0.5]), false);
    expect(Array.from(x)).toEqual([-1, -1, 1, 1]);
    js.affineRows(x, 2, 2, new Float32Array(2), Float32Array.from([1, 1]), true);
    for (const v of x) expect(Math.abs(v)).toBeCloseTo(Math.SQRT1_2, 6);
  });
});

describe.skipIf(native.name !== 'native')('CPU kernels: native = JS', () => {
  it('on random shapes, transposes, offsets and labels', () => {
    for (const [m, n, k] of [
      [7, 5, 3],
      [64, 33, 128],
      [1, 1, 1],
    ]) {
      const a = rand(m * k, m);
      const b = rand(k * n, n);
      for (const [ta, tb] of [
        [false, false],
        [true, false],
        [false, true],
        [true, true],
      ] as const) {
        const c1 = new Float32Array(m * n);
        const c2 = new Float32Array(m * n);
        js.matmul(a, b, c1, m, n, k, ta, tb);
        native.matmul(a, b, c2, m, n, k, ta, tb);
        for (let i = 0; i < c1.length; i++) expect(c2[i]).toBeCloseTo(c1[i], 4);
      }
      const scores = rand(m * n, 7);
      const add = rand(n, 8);
      const kk = Math.min(4, n);
      const run = (kern: typeof js) => {
        const vals = new Float32Array(m * kk).fill(Number.NEGATIVE_INFINITY);
        const idx = new Int32Array(m * kk).fill(-1);
        kern.topkMerge(scores, m, n, undefined, 0, kk, vals, idx); // a first block without offsets,
        kern.topkMerge(scores, m, n, add, 100, kk, vals, idx); // merged with a second one with them
        return [Array.from(vals), Array.from(idx)];
      };
      expect(run(native)).toEqual(run(js));
      const labels = Int32Array.from({ length: m }, (_, i) => i % n);
      const l1 = Float32Array.from(scores);
      const l2 = Float32Array.from(scores);
      expect(native.softmaxXent(l2, labels, m, n)).toBeCloseTo(js.softmaxXent(l1, labels, m, n), 3);
      for (let i = 0; i < l1.length; i++) expect(l2[i]).toBeCloseTo(l1[i], 5);
      const bias = rand(n, 9);
      const [c1, c2] = [new Float64Array(n), new Float64Array(n)];
      const [b1, b2] = [Float32Array.from(scores), Float32Array.from(scores)];
      expect(native.softmaxXent(b2, labels, m, n, bias, c2)).toBeCloseTo(js.softmaxXent(b1, labels, m, n, bias, c1), 3);
      for (let i = 0; i < b1.length; i++) expect(b2[i]).toBeCloseTo(b1[i], 5);
      for (let j = 0; j < n; j++) expect(c2[j]).toBeCloseTo(c1[j], 5);
    }
    const x = rand(50 * 16, 3);
    const [s1, q1, s2, q2] = [new Float64Array(16), new Float64Array(16), new Float64Array(16), new Float64Array(16)];
    js.colMoments(x, 50, 16, s1, q1);
    native.colMoments(x, 50, 16, s2, q2);
    for (let j = 0; j < 16; j++) {
      expect(s2[j]).toBeCloseTo(s1[j], 9);
      expect(q2[j]).toBeCloseTo(q1[j], 9);
    }
    const shift = rand(16, 4);
    const scale = rand(16, 5);
    for (const normalize of [false, true]) {
      const x1 = Float32Array.from(x);
      const x2 = Float32Array.from(x);
      js.affineRows(x1, 50, 16, shift, scale, normalize);
      native.affineRows(x2, 50, 16, shift, scale, normalize);
      for (let i = 0; i < x1.length; i++) expect(x2[i]).toBeCloseTo(x1[i], 5);
    }
    const n1 = new Float32Array(50);
    const n2 = new Float32Array(50);
    js.rowSqNorms(x, 50, 16, n1);
    native.rowSqNorms(x, 50, 16, n2);
    for (let i = 0; i < 50; i++) expect(n2[i]).toBeCloseTo(n1[i], 4);
  });
});
