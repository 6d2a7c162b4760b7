/**
 * The wasm backend's heap is 4 GiB; running out of it traps inside wasm ("memory access out of
 * bounds"), which says nothing of what did not fit. Work that can run out is wrapped so that the
 * trap becomes one line naming what was being done and the way out.
 */
import * as tf from '@tensorflow/tfjs';

/** Whether `e` is the wasm heap running out (a trap, or emscripten's allocation failure). */
export function isWasmOutOfMemory(e: unknown): boolean {
  return (
    e instanceof Error &&
    (e.constructor.name === 'RuntimeError' || /abort/i.test(e.message)) &&
    /memory access out of bounds|out of memory|Cannot enlarge memory|OOM/i.test(e.message)
  );
}

/** Runs `f`; a wasm out-of-memory in it is rethrown as one line: what ran out, while doing `what`, and `wayOut`. */
export async function withWasmHeap<T>(what: string, wayOut: string, f: () => Promise<T> | T): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (!isWasmOutOfMemory(e)) throw e;
    const inUse = (tf.memory().numBytes / 2 ** 30).toFixed(2);
    throw new Error(`the wasm backend's 4 GiB heap ran out while ${what} (${inUse} GiB held in tensors): ${wayOut}`);
  }
}
