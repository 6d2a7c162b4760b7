// Every test file runs on the CPU backend our users get by default (auto: wasm-native where
// capi-native is built, else wasm; 2 threads), or on CAPI_BACKEND (CI runs the suite on wasm-native
// and on wasm). Commands the tests spawn inherit CAPI_BACKEND as their default --backend.
// On a machine with a WebGPU adapter auto would take webgpu, where the suite's own checks cannot read
// tensors synchronously: without CAPI_BACKEND it keeps to the CPU paths (CAPI_WEBGPU=off, inherited
// too); the GPU path has its own suite (webgpu-parity.test.ts, with CAPI_BACKEND=webgpu).
import { beforeAll } from 'vitest';
import type { BackendRequest } from '../src/runtime/backend.js';
import { initBackend } from '../src/runtime/backend.js';

if (!process.env.CAPI_BACKEND) process.env.CAPI_WEBGPU ??= 'off';

beforeAll(async () => {
  await initBackend((process.env.CAPI_BACKEND as BackendRequest | undefined) || 'auto', 2, () => {});
});
