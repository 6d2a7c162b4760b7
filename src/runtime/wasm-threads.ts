/**
 * Threaded wasm backend in Node (see shared notes "tfjs-on-node.md").
 *
 * tfjs disables wasm threads in Node. Three things block them, and this shim fixes each only
 * for the duration of backend start-up:
 *  1. emscripten hands its pthread workers a `blob:` URL, which `worker_threads.Worker` cannot
 *     load: we substitute a Worker subclass that starts a temp file holding the worker source and
 *     rewrites the `load` message's script to the threaded-simd JS file on disk;
 *  2. the C++ side sizes its pool as `os.cpus().length / 2`: we report twice the cores;
 *  3. the pool workers keep Node alive: we `unref()` them once the backend is ready.
 */
import { createRequire } from 'node:module';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const require = createRequire(import.meta.url);

type WorkerCtor = typeof import('node:worker_threads').Worker;

/** Runs `init` (which must set the wasm backend up) with the threading patches in place. */
export async function withThreadedWasm<T>(init: () => Promise<T>): Promise<T> {
  const wasmMain = require.resolve('@tensorflow/tfjs-backend-wasm');
  const wasmOut = path.join(path.dirname(wasmMain), '..', 'wasm-out');
  const threadedJs = path.join(wasmOut, 'tfjs-backend-wasm-threaded-simd.js');
  const workerSource: string = require(path.join(wasmOut, 'tfjs-backend-wasm-threaded-simd.worker.js')).wasmWorkerContents;
  const workerFile = path.join(os.tmpdir(), `capi-ts-wasm-worker-${process.pid}.cjs`);
  // tfjs escapes newlines before turning the source into a Blob; do the same for the file.
  fs.writeFileSync(workerFile, workerSource.replace(/\n/g, '\\n'));

  const workerThreads = require('node:worker_threads') as { Worker: WorkerCtor };
  const OriginalWorker = workerThreads.Worker;
  const started: InstanceType<WorkerCtor>[] = [];
  class FileWorker extends OriginalWorker {
    constructor(_blobUrl: string | URL, options?: import('node:worker_threads').WorkerOptions) {
      super(workerFile, options);
      started.push(this);
    }
    override postMessage(message: unknown, transfer?: readonly import('node:worker_threads').Transferable[]): void {
      const m = message as { cmd?: string; urlOrBlob?: unknown };
      if (m && m.cmd === 'load') m.urlOrBlob = threadedJs;
      super.postMessage(message, transfer as never);
    }
  }
  const originalCpus = os.cpus;
  const cpusModule = require('node:os') as { cpus: typeof os.cpus };
  workerThreads.Worker = FileWorker as unknown as WorkerCtor;
  cpusModule.cpus = () => {
    const cpus = originalCpus();
    return [...cpus, ...cpus];
  };
  try {
    const result = await init();
    for (const w of started) w.unref();
    return result;
  } finally {
    workerThreads.Worker = OriginalWorker;
    cpusModule.cpus = originalCpus;
    fs.rmSync(workerFile, { force: true });
  }
}
