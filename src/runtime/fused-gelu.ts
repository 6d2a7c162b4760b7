/**
 * The fused exact GELU as a kernel of our own: one pass forward, one for its gradient, where a
 * backend has them (wasm with the native kernels: native.ts; webgpu: webgpu-kernels.ts). Both
 * backends register their kernels under these names; the gradient is registered once for all.
 */
import * as tf from '@tensorflow/tfjs';

export const GELU = 'CapiGelu';
export const GELU_GRAD = 'CapiGeluGrad';

let gradientRegistered = false;

/** dx = dy GELU'(x) by the backend's GELU_GRAD kernel (idempotent). */
export function registerGeluGradient(): void {
  if (gradientRegistered) return;
  tf.registerGradient({
    kernelName: GELU,
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => ({ x: () => tf.engine().runKernel(GELU_GRAD, { x: saved[0], dy: dy as tf.Tensor }) as tf.Tensor }),
  });
  gradientRegistered = true;
}

/** Exact GELU of float32 x by the current backend's fused kernel (the caller checks that it has one). */
export function fusedGelu(x: tf.Tensor): tf.Tensor {
  if (x.dtype !== 'float32') throw new Error('fusedGelu: float32 only');
  return tf.engine().runKernel(GELU, { x }) as tf.Tensor;
}
