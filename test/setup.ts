// Every test file runs on the backend our users get by default (auto: wasm-native where capi-native
// is built, else wasm; 2 threads), or on CAPI_BACKEND (CI runs the suite on wasm-native and on wasm).
// Commands the tests spawn inherit CAPI_BACKEND as their default --backend.
import { beforeAll } from 'vitest';
import type { BackendRequest } from '../src/runtime/backend.js';
import { initBackend } from '../src/runtime/backend.js';

beforeAll(async () => {
  await initBackend((process.env.CAPI_BACKEND as BackendRequest | undefined) || 'auto', 2, () => {});
});
