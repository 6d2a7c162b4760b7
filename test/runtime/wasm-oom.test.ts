/**
 * Running out of the wasm heap is one line naming what did not fit and the way out, not a trap.
 * (Its own file: a wasm backend whose heap ran out is not used again in this process.)
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { backendInfo, initBackend } from '../../src/runtime/backend.js';
import { isWasmOutOfMemory, WasmHeapFull, withWasmHeap } from '../../src/runtime/wasm-oom.js';

beforeAll(async () => {
  await initBackend();
});

describe.skipIf(process.env.CAPI_BACKEND === 'cpu')('wasm out of memory', () => {
  it('a real exhaustion of the 4 GiB heap becomes one line with the way out', async () => {
    if (backendInfo().backend !== 'wasm') return;
    const held: tf.Tensor[] = [];
    const fill = () => {
      for (let i = 0; i < 8; i++) held.push(tf.zeros([2 ** 28])); // 1 GiB each: the fourth cannot fit
    };
    let raw: unknown;
    try {
      fill();
    } catch (e) {
      raw = e;
    }
    // Thrown by the guarded allocator before the tensor is written over the heap's start.
    expect(raw).toBeInstanceOf(WasmHeapFull);
    expect(isWasmOutOfMemory(raw)).toBe(true);
    await expect(withWasmHeap('fitting the probes', 'lower --batch-size', () => tf.zeros([2 ** 28]))).rejects.toThrow(
      /^the wasm backend's 4 GiB heap ran out while fitting the probes \([\d.]+ GiB held in tensors\): lower --batch-size$/,
    );
    tf.dispose(held);
  });

  it("a trap's message is recognised too", () => {
    const trap = new WebAssembly.RuntimeError('memory access out of bounds');
    expect(isWasmOutOfMemory(trap)).toBe(true);
    expect(isWasmOutOfMemory(new Error('memory access out of bounds'))).toBe(false);
  });

  it('other errors pass through unchanged', async () => {
    await expect(withWasmHeap('x', 'y', () => Promise.reject(new Error('not memory')))).rejects.toThrow(/^not memory$/);
  });
});
