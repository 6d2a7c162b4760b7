/**
 * The wasm backend's heap is 4 GiB; running out of it traps inside wasm ("memory access out of
 * bounds"), which says nothing of what did not fit. Work that can run out is wrapped so that the
 * trap becomes one line naming what was being done and the way out.
 */
import * as tf from '@tensorflow/tfjs';

/** A tensor's buffer did not fit in the wasm heap (thrown by the guarded allocator). */
export class WasmHeapFull extends Error {
  constructor(bytes: number) {
    super(`the wasm heap could not allocate ${(bytes / 2 ** 30).toFixed(2)} GiB`);
    this.name = 'WasmHeapFull';
  }
}

/** Whether `e` is the wasm heap running out (our allocator guard, a trap, or emscripten's allocation failure). */
export function isWasmOutOfMemory(e: unknown): boolean {
  if (e instanceof WasmHeapFull) return true;
  return (
    e instanceof Error &&
    (e.constructor.name === 'RuntimeError' || /abort/i.test(e.message)) &&
    /memory access out of bounds|out of memory|Cannot enlarge memory|OOM/i.test(e.message)
  );
}

/**
 * tfjs-backend-wasm takes a tensor's buffer from the module's malloc without checking it: when the
 * heap is full malloc returns 0 and the tensor is written over the heap's first bytes (the module's
 * own data and stacks). What follows is a trap at best; on the threaded build it was seen to spin
 * forever. Guarding malloc turns that into an error thrown before anything is written.
 */
export function guardWasmMalloc(module: { _malloc: (bytes: number) => number }): void {
  if (Object.getOwnPropertyDescriptor(module, '_malloc')?.get) return;
  // Emscripten's export is a stub that replaces itself with the raw malloc on its first call:
  // the guard is a getter, and such an assignment changes what it calls, not the guard.
  let malloc = module._malloc;
  const guarded = (bytes: number): number => {
    const offset = malloc(bytes);
    if (offset === 0 && bytes > 0) throw new WasmHeapFull(bytes);
    return offset;
  };
  Object.defineProperty(module, '_malloc', {
    configurable: true,
    get: () => guarded,
    set: (f: (bytes: number) => number) => {
      malloc = f;
    },
  });
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
