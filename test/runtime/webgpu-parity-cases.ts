/**
 * The GPU-parity cases: the kernels and layers the train step and the frozen forward use, their
 * gradients and the optimiser, each run on the cpu backend (tfjs's reference kernels, which the
 * wasm kernels equal: wasm-kernels.test.ts) and on webgpu from the same inputs. Shared by the
 * vitest suite (webgpu-parity.test.ts, CI on lavapipe) and the prepared GPU check
 * (bench/gpu-check.ts, on a GPU machine without vitest).
 */
import * as tf from '@tensorflow/tfjs';
import { applyRope, gelu, l2Normalize, linear, rmsNorm, scaledDotProductAttention } from '../../src/model/layers.js';
import { adamwStep, initAdamW } from '../../src/runtime/adamw.js';
import { Rng } from '../../src/runtime/rng.js';

export type ParityCase = [name: string, shapes: number[][], f: (xs: tf.Tensor[]) => tf.Tensor];

/** The largest relative error allowed between the backends (the bound for kernels). */
export const PARITY_LIMIT = 1e-5;

/** Random normal values, the same on every backend. */
export function randn(shape: number[], seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal());
}

/** Max |a - b| / (max |b| + 1e-6): the error relative to the output's scale. */
export function relError(a: Float32Array | Int32Array, b: Float32Array | Int32Array): number {
  let scale = 0;
  let diff = 0;
  for (let i = 0; i < b.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]));
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
  }
  return diff / (scale + 1e-6);
}

/**
 * `f` on fresh inputs on one backend, read asynchronously. All cpu runs come first: layers cache
 * constant tensors (masks, permutations), and a tensor cached on webgpu cannot be read back
 * synchronously by the cpu backend, while one cached on the cpu moves to webgpu.
 */
export async function runOn(backend: string, shapes: number[][], f: (xs: tf.Tensor[]) => tf.Tensor): Promise<Float32Array> {
  await tf.setBackend(backend);
  const xs = shapes.map((s, i) => tf.tensor(randn(s, 7 + i), s));
  const y = tf.tidy(() => f(xs));
  const out = (await y.data()) as Float32Array;
  tf.dispose([...xs, y]);
  return out;
}

// The gradients with respect to every input, flattened into one vector, of a fixed projection of
// f's output (a loss like sum(f^2) can be flat: RMSNorm's is).
const grads = (f: (xs: tf.Tensor[]) => tf.Tensor) => (xs: tf.Tensor[]) =>
  tf.concat(
    tf
      .grads((...ins: tf.Tensor[]) => {
        const y = f(ins);
        return y.mul(tf.sin(tf.range(0, y.size).reshape(y.shape))).sum();
      })(xs)
      .map((g) => g.flatten()),
  );
const grad = (f: (x: tf.Tensor) => tf.Tensor) => grads(([x]) => f(x));
const rope = ([x, angles]: tf.Tensor[]) =>
  tf.concat([applyRope(x, tf.cos(angles), tf.sin(angles), 'reference'), applyRope(x, tf.cos(angles), tf.sin(angles), 'axial')]);
// Three AdamW steps from p0 with gradients g, 2 g, 3 g (the fused update on webgpu, the composed one on the cpu).
const adamw = ([p0, g]: tf.Tensor[]) => {
  const params = { p: tf.variable(p0) };
  const state = initAdamW(params);
  for (let i = 1; i <= 3; i++)
    adamwStep(params, { p: g.mul(i) }, state, { beta1: 0.9, beta2: 0.95, eps: 1e-8 }, () => ({ lr: 0.01, weightDecay: 0.05 }));
  const out = params.p.clone();
  tf.dispose([params.p, ...Object.values(state.m), ...Object.values(state.v)]);
  return out;
};
/** name, input shapes, the computation: each run on both backends from the same random inputs. */
export const PARITY_CASES: ParityCase[] = [
  [
    'matMul',
    [
      [67, 130],
      [130, 45],
    ],
    ([a, b]) => tf.matMul(a, b),
  ],
  [
    'matMul, both transposed',
    [
      [130, 67],
      [45, 130],
    ],
    ([a, b]) => tf.matMul(a, b, true, true),
  ],
  [
    'batched matMul, broadcast',
    [
      [3, 5, 33, 20],
      [5, 20, 17],
    ],
    ([a, b]) => tf.matMul(a, b),
  ],
  ['linear with bias (layers.ts)', [[6, 49, 128], [96, 128], [96]], ([x, w, b]) => linear(x, w, b)],
  ['gradients of linear with bias', [[6, 49, 128], [96, 128], [96]], grads(([x, w, b]) => linear(x, w, b))],
  [
    'RoPE, both pairings (layers.ts)',
    [
      [2, 3, 20, 32],
      [2, 1, 20, 32],
    ],
    rope,
  ],
  [
    'gradients of RoPE',
    [
      [2, 3, 20, 32],
      [2, 1, 20, 32],
    ],
    grads(rope),
  ],
  [
    'AdamW, 3 steps (runtime/adamw.ts)',
    [
      [96, 128],
      [96, 128],
    ],
    adamw,
  ],
  ['softmax', [[4, 9, 257]], ([x]) => tf.softmax(x)],
  ['logSoftmax', [[4, 9, 257]], ([x]) => tf.logSoftmax(x)],
  ['gelu (layers.ts)', [[6, 49, 128]], ([x]) => gelu(x)],
  ['rmsNorm (layers.ts)', [[6, 49, 128], [128]], ([x, w]) => rmsNorm(x, w, 1e-6)],
  ['l2Normalize (layers.ts)', [[300, 64]], ([x]) => l2Normalize(x, 1e-6)],
  [
    'attention (layers.ts)',
    [
      [2, 2, 53, 32],
      [2, 2, 53, 32],
      [2, 2, 53, 32],
    ],
    ([q, k, v]) => scaledDotProductAttention(q, k, v),
  ],
  ['sum over a middle axis', [[8, 49, 256]], ([x]) => x.sum(1)],
  ['max, exp, log', [[8, 49, 256]], ([x]) => x.max(-1).add(x.exp().mean(-1).log())],
  ['gather on both axes', [[50, 33]], ([x]) => tf.gather(tf.gather(x, [3, 1, 49, 0], 0), [32, 5], 1)],
  ['gradient of gelu', [[6, 49, 128]], grad(gelu)],
  ['gradient of rmsNorm', [[6, 49, 128]], grad((x) => rmsNorm(x, undefined, 1e-6))],
  [
    'gradient of softmax cross-entropy',
    [[64, 256]],
    grad((x) =>
      tf
        .logSoftmax(x)
        .mul(tf.softmax(x.mul(0.5)))
        .sum(-1),
    ),
  ],
  ['gradient through attention', [[2, 2, 53, 32]], grad((q) => scaledDotProductAttention(q, q.mul(0.5), q))],
];

/**
 * Every case on the cpu backend first, then on webgpu (all cpu runs come first: see runOn), with
 * the relative error of each.
 */
export async function kernelParity(): Promise<{ name: string; error: number }[]> {
  const onCpu: Float32Array[] = [];
  for (const [, shapes, f] of PARITY_CASES) onCpu.push(await runOn('cpu', shapes, f));
  const out: { name: string; error: number }[] = [];
  for (const [i, [name, shapes, f]] of PARITY_CASES.entries()) {
    const gpu = await runOn('webgpu', shapes, f);
    out.push({ name, error: gpu.length === onCpu[i].length ? relError(gpu, onCpu[i]) : Number.POSITIVE_INFINITY });
  }
  return out;
}
