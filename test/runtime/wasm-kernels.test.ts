/**
 * The kernels capi-ts registers for the wasm backend (src/runtime/wasm-kernels.ts: Slice, Unpack,
 * SplitV, Identity, GatherV2, UnsortedSegmentSum) give what tfjs's own kernels give, the cpu
 * backend's as the oracle (the stock wasm ones are replaced, and UnsortedSegmentSum has none), on
 * random shapes, float32 and int32, edge cases included (empty sizes, whole axes, repeated and
 * out-of-order indices, empty segments).
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/runtime/backend.js';
import { Rng } from '../../src/runtime/rng.js';

let wasm = '';
beforeAll(async () => {
  wasm = (await initBackend()).backend;
});

/** `op` on the wasm backend and on the cpu backend, same inputs: both results as plain arrays. */
async function both(op: () => tf.Tensor | tf.Tensor[]): Promise<[unknown, unknown]> {
  const run = () => {
    const out = op();
    const list = Array.isArray(out) ? out : [out];
    const values = list.map((t) => ({ shape: t.shape, dtype: t.dtype, data: Array.from(t.dataSync()) }));
    tf.dispose(list);
    return values;
  };
  const a = run();
  await tf.setBackend('cpu');
  const b = run();
  await tf.setBackend(wasm);
  return [a, b];
}

const rng = new Rng(7);
const dims = (rank: number) => Array.from({ length: rank }, () => 1 + Math.floor(rng.uniform() * 5));
const values = (shape: number[], dtype: 'float32' | 'int32') => {
  const n = shape.reduce((x, y) => x * y, 1);
  return dtype === 'int32'
    ? Int32Array.from({ length: n }, () => Math.floor(rng.uniform() * 100) - 50)
    : Float32Array.from({ length: n }, () => rng.normal());
};

describe.skipIf(process.env.CAPI_BACKEND === 'cpu')('wasm kernels = the stock kernels', () => {
  it('Slice: random boxes of ranks 1-4, empty and whole', async () => {
    for (let trial = 0; trial < 40; trial++) {
      const shape = dims(1 + (trial % 4));
      const dtype = trial % 3 === 0 ? 'int32' : 'float32';
      const data = values(shape, dtype);
      const begin = shape.map((s) => Math.floor(rng.uniform() * s));
      const size = shape.map((s, i) =>
        trial % 7 === 0 ? 0 : trial % 5 === 0 ? s - begin[i] : Math.floor(rng.uniform() * (s - begin[i] + 1)),
      );
      const [a, b] = await both(() => tf.slice(tf.tensor(data, shape, dtype), begin, size));
      expect(a).toEqual(b);
    }
  });

  it('Unpack (unstack) and SplitV (split) along every axis, equal and unequal parts', async () => {
    for (let trial = 0; trial < 20; trial++) {
      const shape = dims(2 + (trial % 3));
      const data = values(shape, trial % 2 ? 'int32' : 'float32');
      const dtype = trial % 2 ? 'int32' : 'float32';
      for (let axis = 0; axis < shape.length; axis++) {
        const [a, b] = await both(() => tf.unstack(tf.tensor(data, shape, dtype), axis));
        expect(a).toEqual(b);
        const first = Math.floor(rng.uniform() * (shape[axis] + 1));
        const sizes = [first, shape[axis] - first];
        const [c, d] = await both(() => tf.split(tf.tensor(data, shape, dtype), sizes, axis));
        expect(c).toEqual(d);
      }
    }
  });

  it('Identity (clone): the same values, still readable once the original is disposed (it shares the buffer)', async () => {
    const shape = [3, 4, 2];
    const data = values(shape, 'float32');
    const [a, b] = await both(() => {
      const x = tf.tensor(data, shape);
      const y = tf.clone(x);
      x.dispose();
      return y;
    });
    expect(a).toEqual(b);
  });

  it('GatherV2: axes 0 and 1, repeated and unordered indices, an empty index list', async () => {
    for (let trial = 0; trial < 20; trial++) {
      const shape = dims(2 + (trial % 2));
      const dtype = trial % 3 === 0 ? 'int32' : 'float32';
      const data = values(shape, dtype);
      for (const axis of [0, 1]) {
        const n = trial % 6 === 0 ? 0 : 1 + Math.floor(rng.uniform() * 7);
        const idx = Int32Array.from({ length: n }, () => Math.floor(rng.uniform() * shape[axis]));
        const [a, b] = await both(() => tf.gather(tf.tensor(data, shape, dtype), tf.tensor1d(idx, 'int32'), axis));
        expect(a).toEqual(b);
      }
    }
  });

  it('UnsortedSegmentSum (the gradient of gather): rows summed into segments, empty segments zero', async () => {
    for (let trial = 0; trial < 20; trial++) {
      const shape = dims(2);
      const data = values(shape, 'float32');
      const segments = 1 + Math.floor(rng.uniform() * 6);
      const ids = Int32Array.from({ length: shape[0] }, () => Math.floor(rng.uniform() * segments));
      const [a, b] = (await both(() => tf.unsortedSegmentSum(tf.tensor(data, shape), tf.tensor1d(ids, 'int32'), segments))) as [
        { data: number[] }[],
        { data: number[] }[],
      ];
      expect(a[0].data.length).toBe(b[0].data.length);
      a[0].data.forEach((v, i) => expect(v).toBeCloseTo(b[0].data[i], 5));
    }
  });
});
