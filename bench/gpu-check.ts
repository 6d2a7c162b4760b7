/**
 * The GPU check's program (bench/gpu-check.sh bundles it with Node, Dawn and the Vulkan loader for
 * a GPU machine without Node or network): on the WebGPU backend, the GPU-parity cases
 * (test/runtime/webgpu-parity-cases.ts: each kernel, layer, gradient and AdamW against the cpu
 * backend; the vitest suite also checks the reference fixture and whole runs), a CAPI train step
 * (fmnist-tiny at batch 256; ViT-S/14 at 224, batch 32) and ViT-L/14 feature extraction at 224
 * (batch 32), each
 * beside the same step or forward in PyTorch on the GPU (bench/torch_step.py, float32), with the
 * ratios. Every figure it prints comes from the run that prints it.
 */
import { initBackend } from '../src/runtime/backend.js';
import { kernelParity, PARITY_LIMIT } from '../test/runtime/webgpu-parity-cases.js';
import { main as benchPretrain } from './pretrain.js';
import { main as benchVitl } from './vitl.js';

const python = process.env.GPU_CHECK_PYTHON ?? 'python3';
const torch = ['--compare', '--torch-device', 'cuda', '--python', python];
// GPU_CHECK_QUICK=1: the smallest shapes, to try the bundle on a CPU (lavapipe); its figures mean nothing.
const quick = process.env.GPU_CHECK_QUICK === '1';
const n = (full: number, small: number) => String(quick ? small : full);

console.log('== GPU parity: the kernels, layers, gradients and AdamW of the train step and forward, against the cpu backend ==');
const { adapter } = await initBackend('webgpu');
console.log(`adapter: ${adapter?.description}; largest binding ${((adapter?.maxBindingBytes ?? 0) / 2 ** 20).toFixed(0)} MiB`);
let failed = 0;
for (const { name, error } of await kernelParity()) {
  const ok = error < PARITY_LIMIT;
  if (!ok) failed++;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}: relative error ${error.toExponential(2)} (limit ${PARITY_LIMIT.toExponential(0)})`);
}
console.log(failed ? `GPU parity: ${failed} FAILED` : 'GPU parity: all passed');
console.log(`== CAPI train step, fmnist-tiny, batch ${n(256, 16)} ==`);
await benchPretrain(['--backend', 'webgpu', '--preset', 'fmnist-tiny', '--batch-size', n(256, 16), '--bench-steps', n(20, 1), ...torch]);
console.log(`== CAPI train step, ViT-S/14 at 224, batch ${n(32, 2)} ==`);
await benchPretrain(['--backend', 'webgpu', '--preset', 'vit-s14', '--batch-size', n(32, 2), '--bench-steps', n(5, 1), ...torch]);
console.log(`== ViT-L/14 feature extraction at 224, batch ${n(32, 1)} ==`);
await benchVitl(['--backend', 'webgpu', '--batch', n(32, 1), '--batches', n(5, 1), ...torch]);
