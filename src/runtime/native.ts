/**
 * The native CPU path (capi-native, native/): float32 matrix products by OpenBLAS, vectorised
 * erf / exp / sin / cos and a fused exact GELU (forward and gradient), computed in place on the wasm backend's heap and registered as the wasm
 * backend's kernels. The rest of the backend (memory, every other kernel) stays wasm, so nothing
 * is copied in or out.
 * Optional: without the built addon (no libopenblas-dev at install, or CAPI_NATIVE=off) capi-ts
 * runs on plain wasm.
 */
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import type { CpuKernels } from './cpu-kernels.js';
import { readCpuinfo } from './cpuinfo.js';
import { GELU, GELU_GRAD, registerGeluGradient } from './fused-gelu.js';

/** The addon: the wasm backend's kernels, and the dense protocol's (CpuKernels, with topkMerge's colAdd always given). */
interface NativeAddon extends Pick<CpuKernels, 'softmaxXent' | 'colMoments' | 'affineRows' | 'rowSqNorms'> {
  sgemm(
    a: Float32Array,
    b: Float32Array,
    c: Float32Array,
    batch: number,
    m: number,
    n: number,
    k: number,
    transA: boolean,
    transB: boolean,
    strideA: number,
    strideB: number,
  ): void;
  /** y = f(x) elementwise; op: UNARY_OPS index. */
  unary(op: number, x: Float32Array, y: Float32Array): void;
  /** y = exact GELU(x); dx = dy GELU'(x). */
  gelu(x: Float32Array, y: Float32Array): void;
  geluGrad(x: Float32Array, dy: Float32Array, dx: Float32Array): void;
  setThreads(n: number): void;
  getThreads(): number;
  /** The kernel set OpenBLAS chose when it loaded ('SkylakeX', 'Haswell', 'Prescott', ...). */
  coreName(): string;
  /** The dense protocol's kernels on plain arrays (src/runtime/cpu-kernels.ts says what each does). */
  topkMerge(
    scores: Float32Array,
    m: number,
    n: number,
    colAdd: Float32Array,
    base: number,
    k: number,
    vals: Float32Array,
    idx: Int32Array,
  ): void;
}

/**
 * The OpenBLAS core type that this CPU's vector extensions (the `flags` of /proc/cpuinfo) run
 * best, for $OPENBLAS_CORETYPE: 'SkylakeX' with AVX-512, 'Haswell' with AVX2 and FMA, else
 * undefined (OpenBLAS's own detection decides).
 * Why: OpenBLAS detects the CPU by family and model number, and on a model newer than it knows it
 * falls back to its generic SSE3 kernels. Debian 12's 0.3.21 does so on Intel model 207 (Emerald
 * Rapids): 'Prescott', sgemm 22.8 GFLOP/s instead of 109.3 with 'SkylakeX', the train step 2.1x
 * slower (`npm run bench:pretrain` on this machine, 2026-12-05). The choice goes by extensions
 * alone: on that machine SkylakeX and Cooperlake (what OpenBLAS names its AVX-512 BF16 core)
 * measured alike within the noise (one-thread sgemm 56-67 and 77-93 GFLOP/s, the study running).
 */
export function openblasCoreType(cpuinfo: string): string | undefined {
  const flags = new Set(/^flags\s*:(.*)$/m.exec(cpuinfo)?.[1].trim().split(/\s+/) ?? []);
  if (['avx512f', 'avx512cd', 'avx512bw', 'avx512dq', 'avx512vl'].every((f) => flags.has(f))) return 'SkylakeX';
  if (['avx2', 'fma'].every((f) => flags.has(f))) return 'Haswell';
  return undefined;
}

/** Sets $OPENBLAS_CORETYPE from the CPU's flags unless the user set it (read once, when OpenBLAS loads). */
function chooseOpenblasCore(): void {
  if (process.env.OPENBLAS_CORETYPE) return;
  const core = openblasCoreType(readCpuinfo());
  // Child processes (Slurm jobs, workers) inherit it.
  if (core) process.env.OPENBLAS_CORETYPE = core;
}

let addon: NativeAddon | undefined | null = null;

/** The addon, or undefined (with the reason) where it is not built or turned off. */
export function loadNativeAddon(): { addon?: NativeAddon; why?: string } {
  if (process.env.CAPI_NATIVE === 'off') return { why: 'off: CAPI_NATIVE=off' };
  if (addon === null) {
    chooseOpenblasCore();
    try {
      addon = createRequire(import.meta.url)('capi-native') as NativeAddon;
    } catch (e) {
      addon = undefined;
      return { why: `not built (${(e as Error).message.split('\n')[0]}): apt-get install libopenblas-dev, then npm ci` };
    }
  }
  return addon ? { addon } : { why: 'not built: apt-get install libopenblas-dev, then npm ci' };
}

interface WasmBackendLike {
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
}

/** Elementwise kernels with a native (vectorised libmvec) version, by the addon's op number. */
const UNARY_OPS = ['Erf', 'Exp', 'Sin', 'Cos'] as const;

const NATIVE_KERNELS = ['BatchMatMul', ...UNARY_OPS];
const stock = new Map<string, tf.KernelConfig>();
let active = false;

/** Whether the wasm backend's BatchMatMul is the native one (layers then use plain batched forms). */
export const nativeMatmulActive = (): boolean => active;

/** out[..., m, n] = op(a)[..., m, k] op(b)[..., k, n], batch dims broadcast as in tf.matMul. */
function nativeBatchMatMul(native: NativeAddon): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const { a, b } = inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
    if (a.dtype !== 'float32' || b.dtype !== 'float32') throw new Error('BatchMatMul: float32 inputs only');
    const ra = a.shape.length;
    const rb = b.shape.length;
    const m = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
    const k = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
    const kb = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
    const n = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
    if (k !== kb)
      throw new Error(`Error in matMul: inner shapes (${k}) and (${kb}) of Tensors with shapes ${a.shape} and ${b.shape} must match.`);
    const outer = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
    const batchA = tf.util.sizeFromShape(a.shape.slice(0, -2));
    const batchB = tf.util.sizeFromShape(b.shape.slice(0, -2));
    const batch = Math.max(batchA, batchB);
    if (batchA !== batch && batchA !== 1)
      throw new Error(`BatchMatMul: batch dims of ${a.shape} and ${b.shape} do not broadcast by one matrix`);
    if (batchB !== batch && batchB !== 1)
      throw new Error(`BatchMatMul: batch dims of ${a.shape} and ${b.shape} do not broadcast by one matrix`);
    const wasm = backend as unknown as WasmBackendLike;
    const out = wasm.makeOutput([...outer, m, n], 'float32');
    if (batch * m * n === 0) return out;
    // Views of the heap, made per call: the heap can grow (and, single-threaded, move) between calls.
    native.sgemm(
      wasm.typedArrayFromHeap(a),
      wasm.typedArrayFromHeap(b),
      wasm.typedArrayFromHeap(out),
      batch,
      m,
      n,
      k,
      transposeA,
      transposeB,
      batchA === 1 ? 0 : m * k,
      batchB === 1 ? 0 : k * n,
    );
    return out;
  };
}

/** y = f(x) for float32 x; other dtypes go to the stock kernel. */
function nativeUnary(native: NativeAddon, op: number, fallback: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (x.dtype !== 'float32') return fallback.kernelFunc(args);
    const wasm = args.backend as unknown as WasmBackendLike;
    const out = wasm.makeOutput(x.shape, 'float32');
    if (tf.util.sizeFromShape(x.shape) > 0) native.unary(op, wasm.typedArrayFromHeap(x), wasm.typedArrayFromHeap(out));
    return out;
  };
}

/** Kernels of our own (no stock counterpart): the fused exact GELU and its gradient (fused-gelu.ts). */
function nativeGeluKernels(native: NativeAddon): void {
  const heapOf = (backend: unknown) => backend as WasmBackendLike;
  tf.registerKernel({
    kernelName: GELU,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend }) => {
      const { x } = inputs as { x: tf.TensorInfo };
      const wasm = heapOf(backend);
      const out = wasm.makeOutput(x.shape, 'float32');
      if (tf.util.sizeFromShape(x.shape) > 0) native.gelu(wasm.typedArrayFromHeap(x), wasm.typedArrayFromHeap(out));
      return out;
    },
  });
  tf.registerKernel({
    kernelName: GELU_GRAD,
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend }) => {
      const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
      const wasm = heapOf(backend);
      const out = wasm.makeOutput(x.shape, 'float32');
      if (tf.util.sizeFromShape(x.shape) > 0)
        native.geluGrad(wasm.typedArrayFromHeap(x), wasm.typedArrayFromHeap(dy), wasm.typedArrayFromHeap(out));
      return out;
    },
  });
  registerGeluGradient();
}

function register(kernelName: string, kernelFunc: tf.KernelFunc): void {
  const current = tf.getKernel(kernelName, 'wasm');
  if (!stock.has(kernelName) && current) stock.set(kernelName, current);
  tf.unregisterKernel(kernelName, 'wasm');
  tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc });
}

/**
 * Registers the native kernels for wasm (BatchMatMul on `threads` OpenBLAS threads, the unary
 * ones on one); false if the addon is missing.
 */
export function enableNativeKernels(threads: number): boolean {
  const { addon: native } = loadNativeAddon();
  if (!native) return false;
  native.setThreads(threads);
  register('BatchMatMul', nativeBatchMatMul(native));
  UNARY_OPS.forEach((name, op) => {
    const fallback = stock.get(name) ?? tf.getKernel(name, 'wasm');
    if (fallback) register(name, nativeUnary(native, op, fallback));
  });
  if (!tf.getKernel(GELU, 'wasm')) nativeGeluKernels(native);
  active = true;
  return true;
}

/** Puts the stock wasm kernels back (tests compare the two). */
export function disableNativeKernels(): void {
  if (!active) return;
  for (const name of NATIVE_KERNELS) {
    const config = stock.get(name);
    if (!config) continue;
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel(config);
  }
  active = false;
}
