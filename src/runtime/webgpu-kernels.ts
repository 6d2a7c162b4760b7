/**
 * Kernels of our own for the WebGPU backend, written in WGSL as tfjs-backend-webgpu writes its
 * own (a program object run by the backend, which adds the bindings, the shape uniforms and the
 * flat index). tfjs dispatches one shader per op with no fusion, and at our small shapes a GPU step
 * is expected to be bound by the number of dispatches rather than by arithmetic (not yet measured on
 * a GPU: bench/gpu-check.sh); these fuse the two chains with the most:
 *  - the exact GELU, 0.5 x (1 + erf(x / sqrt 2)): 4 dispatches forward and ~8 for the gradient
 *    composed, 1 and 1 fused (fused-gelu.ts);
 *  - AdamW with scalar hyper-parameters (adamw.ts): ~12 dispatches per parameter composed, 3 fused
 *    (each moment, then the parameter). The probe grids' per-probe tensors keep the composed form.
 * erf is Abramowitz and Stegun 7.1.26 (absolute error <= 1.5e-7), the same approximation as
 * tfjs's own Erf kernels on every backend.
 */
import * as tf from '@tensorflow/tfjs';
import { GELU, GELU_GRAD, registerGeluGradient } from './fused-gelu.js';

/** What tfjs-backend-webgpu needs of a program (its WebGPUProgram, less what it fills in itself). */
interface Program {
  variableNames: string[];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  size: boolean;
  uniforms?: string;
  getUserCode(): string;
}

interface WebgpuBackendLike {
  runWebGPUProgram(
    program: Program,
    inputs: tf.TensorInfo[],
    dtype: tf.DataType,
    uniforms?: { type: 'float32' | 'int32'; data: number[] }[],
  ): tf.TensorInfo;
}

const WORKGROUP = 128;

/**
 * An elementwise program over inputs of the output's shape: `body` sets `y` from the inputs,
 * read by name (lower-case) at `index`. The backend splits a dispatch past its per-dimension limit.
 */
function elementwise(key: string, names: string[], shape: number[], body: string, uniforms?: string): Program {
  const reads = names.map((n) => `let ${n.toLowerCase()} = get${n}ByOutputIndex(index);`).join('\n        ');
  return {
    variableNames: names,
    outputShape: shape,
    shaderKey: key,
    dispatchLayout: { x: shape.map((_, i) => i) },
    dispatch: [Math.ceil(tf.util.sizeFromShape(shape) / WORKGROUP), 1, 1],
    workgroupSize: [WORKGROUP, 1, 1],
    size: true,
    uniforms,
    getUserCode: () => `
      ${ERF}
      fn main(index : i32) {
        if (index < uniforms.size) {
          ${reads}
          var y : f32;
          ${body}
          setOutputAtIndex(index, y);
        }
      }`,
  };
}

const ERF = `
      fn erfAs(a : f32) -> f32 {
        let t = 1.0 / (1.0 + 0.3275911 * abs(a));
        let poly = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t;
        return sign(a) * (1.0 - poly * exp(-a * a));
      }`;

/** AdamW's fused kernels (adamw.ts): a moment's update, then the parameter's. */
export const ADAM_MOMENT = 'CapiAdamMoment';
export const ADAM_PARAM = 'CapiAdamParam';

type Uniforms = { type: 'float32'; data: number[] }[];
const f32 = (...data: number[]): Uniforms => data.map((d) => ({ type: 'float32', data: [d] }));

function register(kernelName: string, kernelFunc: tf.KernelFunc): void {
  if (!tf.getKernel(kernelName, 'webgpu')) tf.registerKernel({ kernelName, backendName: 'webgpu', kernelFunc });
}

/** Registers the kernels above for the webgpu backend (idempotent). */
export function registerWebgpuKernels(): void {
  const run = (backend: unknown, program: Program, inputs: tf.TensorInfo[], uniforms?: Uniforms) =>
    (backend as WebgpuBackendLike).runWebGPUProgram(program, inputs, 'float32', uniforms);
  register(GELU, ({ inputs, backend }) => {
    const { x } = inputs as { x: tf.TensorInfo };
    return run(backend, elementwise('capi_gelu', ['X'], x.shape, 'y = 0.5 * x * (1.0 + erfAs(x * 0.70710678118654752));'), [x]);
  });
  // GELU'(x) = Phi(x) + x phi(x), phi the standard normal density.
  register(GELU_GRAD, ({ inputs, backend }) => {
    const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
    const body = `y = dy * (0.5 * (1.0 + erfAs(x * 0.70710678118654752)) + x * 0.39894228040143268 * exp(-0.5 * x * x));`;
    return run(backend, elementwise('capi_gelu_grad', ['X', 'Dy'], x.shape, body), [x, dy]);
  });
  registerGeluGradient();
  // m' = a m + b g (b = 1 - beta, computed in float64 as the composed form's scalar), or of g^2 for the second moment.
  register(ADAM_MOMENT, ({ inputs, backend, attrs }) => {
    const { m, g } = inputs as { m: tf.TensorInfo; g: tf.TensorInfo };
    const { beta, squared } = attrs as unknown as { beta: number; squared: boolean };
    const body = squared ? 'y = uniforms.a * m + (g * g) * uniforms.b;' : 'y = uniforms.a * m + g * uniforms.b;';
    const program = elementwise(squared ? 'capi_adam_v' : 'capi_adam_m', ['M', 'G'], m.shape, body, 'a : f32, b : f32,');
    return run(backend, program, [m, g], f32(beta, 1 - beta));
  });
  // p' = p decay - m / (sqrt(v) / bc2Sqrt + eps) stepSize, in the composed form's order (adamw.ts).
  register(ADAM_PARAM, ({ inputs, backend, attrs }) => {
    const { p, m, v } = inputs as { p: tf.TensorInfo; m: tf.TensorInfo; v: tf.TensorInfo };
    const { decay, stepSize, bc2Sqrt, eps } = attrs as unknown as Record<string, number>;
    const body = 'y = p * uniforms.decay - (m / (sqrt(v) / uniforms.bc2Sqrt + uniforms.eps)) * uniforms.stepSize;';
    const program = elementwise('capi_adam_p', ['P', 'M', 'V'], p.shape, body, 'decay : f32, stepSize : f32, bc2Sqrt : f32, eps : f32,');
    return run(backend, program, [p, m, v], f32(decay, stepSize, bc2Sqrt, eps));
  });
}

/** Whether the current backend is webgpu with the kernels above. */
export function webgpuKernelsActive(): boolean {
  return tf.getBackend() === 'webgpu' && tf.getKernel(GELU, 'webgpu') !== undefined;
}
