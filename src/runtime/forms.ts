/**
 * Which forms of the layers the current backend runs fastest (model/layers.ts, model/heads.ts).
 * Stock wasm is fast only on plain 2-D products (XNNPACK): there the layers transpose explicitly
 * and stack attention pairs block-diagonally. OpenBLAS (wasm-native) and a GPU's shaders (webgpu)
 * take batched and transposed products at full speed, so there the plain batched forms serve,
 * with fewer ops; both also have the fused exact GELU (fused-gelu.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { nativeMatmulActive } from './native.js';
import { webgpuKernelsActive } from './webgpu-kernels.js';

const nativeOnWasm = () => nativeMatmulActive() && tf.getBackend() === 'wasm';

/** Batched and transposed matrix products are as fast as plain 2-D ones. */
export const batchedProductsFast = (): boolean => nativeOnWasm() || tf.getBackend() === 'webgpu';

/** A linear layer's bias goes into the product's shader (tf.fused.matMul): one dispatch less on webgpu. */
export const biasInProduct = (): boolean => tf.getBackend() === 'webgpu';

/** The backend has the fused exact GELU kernels. */
export const fusedGeluActive = (): boolean => nativeOnWasm() || webgpuKernelsActive();
