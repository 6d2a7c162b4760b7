// Every test file runs on the wasm backend (2 threads), the backend our users get by default.
import { beforeAll } from 'vitest';
import { initBackend } from '../src/runtime/backend.js';

beforeAll(async () => {
  await initBackend(process.env.CAPI_BACKEND === 'cpu' ? 'cpu' : 'wasm', 2, () => {});
});
