/**
 * Backend selection, in order: tfjs-node-gpu, tfjs-node (optional peers, used when installed),
 * webgpu (optional dependencies, used when Dawn finds an adapter: src/runtime/webgpu.ts),
 * wasm-native, threaded wasm, single-thread wasm, cpu. The choice is logged, with why the ones
 * before it were not taken, and returned so every output can record it.
 */
import * as os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { readCpuinfo } from './cpuinfo.js';
import { withThreadedWasm } from './wasm-threads.js';
import { enableNativeKernels, loadNativeAddon } from './native.js';
import { registerWasmKernels } from './wasm-kernels.js';
import { guardWasmMalloc } from './wasm-oom.js';
import { type AdapterSummary, probeWebgpu } from './webgpu.js';
import { registerWebgpuKernels } from './webgpu-kernels.js';

export const BACKEND_CHOICES = ['auto', 'node-gpu', 'node', 'webgpu', 'wasm-native', 'wasm', 'cpu'] as const;
export type BackendRequest = (typeof BACKEND_CHOICES)[number];

/** $CAPI_BACKEND when it names a backend (tests and CI set it), else auto. */
function envBackend(): BackendRequest {
  const v = process.env.CAPI_BACKEND as BackendRequest | undefined;
  return v && BACKEND_CHOICES.includes(v) ? v : 'auto';
}

/** The backend flags every command shares (schema fields, src/runtime/schema.ts). */
export const BACKEND_FIELDS = {
  backend: z
    .enum(BACKEND_CHOICES)
    .default(envBackend())
    .describe(
      '$CAPI_BACKEND if set, else auto: the first that loads, in this order; webgpu: TensorFlow.js on WebGPU (Dawn), when it finds an adapter (CAPI_WEBGPU=off refuses it); wasm-native: wasm with OpenBLAS matrix products (capi-native); wasm: plain wasm',
    ),
  threads: z.number().int().min(1).max(64).default(2).describe('wasm threads'),
};

export interface BackendInfo {
  /** tfjs backend name actually in use ('tensorflow', 'webgpu', 'wasm' or 'cpu'). */
  backend: string;
  /** Which package provided it. */
  provider:
    | 'tfjs-node-gpu'
    | 'tfjs-node'
    | 'tfjs-backend-webgpu+dawn'
    | 'capi-native+tfjs-backend-wasm'
    | 'tfjs-backend-wasm'
    | 'tfjs-backend-cpu';
  threads: number;
  /** The kernel set OpenBLAS runs (wasm-native only): a generic one ('Prescott') is ~5x slower. */
  blasCore?: string;
  /** The WebGPU adapter (webgpu only). */
  adapter?: AdapterSummary;
  /** The CPU and its core count, so that wall times recorded with results can be compared across machines. */
  machine?: string;
}

/**
 * `Intel(R) Xeon(R) Processor (family 6 model 207), 2 cores`: what os.cpus() says, with the CPU's
 * family and model number where /proc/cpuinfo gives them (clock speeds are not reliable in VMs).
 * Why the numbers: VMs often name every CPU generation alike, and the same training step ran ~2x
 * slower on one "Intel(R) Xeon(R) Processor" (model 207) than on another (2026-12-05).
 */
export function machineName(cpuinfo = readCpuinfo()): string {
  const cpus = os.cpus();
  const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(\\d+)`, 'm').exec(cpuinfo)?.[1];
  const [family, model] = [field('cpu family'), field('model')];
  const numbers = family && model ? ` (family ${family} model ${model})` : '';
  return `${cpus[0]?.model.trim() ?? 'unknown CPU'}${numbers}, ${cpus.length} cores`;
}

let current: BackendInfo | undefined;
/** Why auto did not pick webgpu or wasm-native (logged with the backend that was picked). */
const notTaken: { webgpu?: string; native?: string } = {};

/**
 * The largest tensor, in bytes, the backend binds as one buffer: the WebGPU adapter's limit
 * (lavapipe's is 128 MiB); undefined on the other backends (no such limit), or before initBackend.
 */
export const maxBindingBytes = (): number | undefined => current?.adapter?.maxBindingBytes;

export function backendInfo(): BackendInfo {
  if (!current) throw new Error('backend not initialised: call initBackend() first');
  return current;
}

async function tryNative(pkg: 'tfjs-node-gpu' | 'tfjs-node'): Promise<BackendInfo | undefined> {
  try {
    await import(`@tensorflow/${pkg}`);
    if (!(await tf.setBackend('tensorflow'))) return undefined;
    await tf.ready();
    return { backend: 'tensorflow', provider: pkg, threads: 0 };
  } catch {
    return undefined;
  }
}

async function tryWasm(threads: number): Promise<BackendInfo | undefined> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const start = async (): Promise<boolean> => {
    wasm.setThreadsCount(threads);
    if (!(await tf.setBackend('wasm'))) return false;
    await tf.ready();
    return true;
  };
  const factory = tf.findBackendFactory('wasm');
  if (threads > 1) {
    try {
      tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
      if (await withThreadedWasm(start)) {
        return { backend: 'wasm', provider: 'tfjs-backend-wasm', threads: wasm.getThreadsCount() };
      }
    } catch {
      // The shim depends on tfjs/emscripten internals: fall back to the single-thread build.
    }
    tf.removeBackend('wasm');
    if (factory) tf.registerBackend('wasm', factory);
  }
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  if (!(await start())) return undefined;
  return { backend: 'wasm', provider: 'tfjs-backend-wasm', threads: 1 };
}

/** The WebGPU backend on the adapter Dawn finds; `forced` (--backend webgpu): an error when there is none. */
async function tryWebgpu(forced: boolean): Promise<BackendInfo | undefined> {
  const unavailable = (why: string) => {
    if (forced) throw new Error(`backend 'webgpu' is not available: ${why}`);
    notTaken.webgpu = `webgpu: ${why}`;
    return undefined;
  };
  const found = await probeWebgpu();
  if (!found.ok) return unavailable(found.why);
  try {
    await import('@tensorflow/tfjs-backend-webgpu');
  } catch {
    return unavailable('the optional package @tensorflow/tfjs-backend-webgpu is not installed');
  }
  if (!(await tf.setBackend('webgpu'))) return unavailable(`tfjs-backend-webgpu did not start on ${found.adapter.description}`);
  await tf.ready();
  registerWebgpuKernels();
  return { backend: 'webgpu', provider: 'tfjs-backend-webgpu+dawn', threads: 0, adapter: found.adapter };
}

/**
 * wasm for memory and most kernels, OpenBLAS for the matrix products (src/runtime/native.ts).
 * One owner of the cores: the wasm side runs one thread, OpenBLAS runs `threads` (two thread
 * pools spinning on the same two cores measured slower than either alone).
 */
async function tryWasmNative(threads: number, forced: boolean): Promise<BackendInfo | undefined> {
  const { addon, why } = loadNativeAddon();
  if (!addon) {
    if (forced) throw new Error(`backend 'wasm-native' is not available: capi-native ${why}`);
    notTaken.native = `capi-native ${why}`;
    return undefined;
  }
  const info = await tryWasm(1);
  if (!info) return undefined;
  enableNativeKernels(threads);
  return { backend: 'wasm', provider: 'capi-native+tfjs-backend-wasm', threads, blasCore: addon.coreName() };
}

/**
 * Selects and initialises a backend. `threads` applies to wasm (default 2, the core count of our
 * machines). Throws with a one-line message when a forced backend is unavailable.
 */
export async function initBackend(
  request: BackendRequest = 'auto',
  threads = 2,
  log: (line: string) => void = (l) => console.error(l),
): Promise<BackendInfo> {
  if (current) return current;
  const env = process.env.CAPI_BACKEND;
  if (env && !(BACKEND_CHOICES as readonly string[]).includes(env))
    throw new Error(`CAPI_BACKEND=${env} is not a backend: set it to one of ${BACKEND_CHOICES.join(', ')}, or unset it`);
  let info: BackendInfo | undefined;
  if (request === 'auto' || request === 'node-gpu') info = await tryNative('tfjs-node-gpu');
  if (!info && (request === 'auto' || request === 'node')) info = await tryNative('tfjs-node');
  if (!info && (request === 'auto' || request === 'webgpu')) info = await tryWebgpu(request === 'webgpu');
  if (!info && (request === 'auto' || request === 'wasm-native')) info = await tryWasmNative(threads, request === 'wasm-native');
  if (!info && (request === 'auto' || request === 'wasm')) info = await tryWasm(threads);
  if (!info && (request === 'auto' || request === 'cpu')) {
    if (await tf.setBackend('cpu')) info = { backend: 'cpu', provider: 'tfjs-backend-cpu', threads: 1 };
  }
  if (!info) {
    throw new Error(`backend '${request}' is not available: install @tensorflow/tfjs-${request} or use --backend wasm|cpu`);
  }
  if (info.backend === 'wasm') {
    registerWasmKernels();
    guardWasmMalloc((tf.backend() as unknown as { wasm: { _malloc: (bytes: number) => number } }).wasm);
  }
  current = { ...info, machine: machineName() };
  info = current;
  const missing = [
    request === 'auto' && info.backend !== 'tensorflow' && info.backend !== 'webgpu' ? notTaken.webgpu : undefined,
    notTaken.native && info.provider === 'tfjs-backend-wasm' ? notTaken.native : undefined,
  ]
    .filter(Boolean)
    .map((m) => `; ${m}`)
    .join('');
  const where = info.adapter
    ? `on ${info.adapter.description}`
    : `${info.threads} thread${info.threads === 1 ? '' : 's'}${info.blasCore ? `, OpenBLAS ${info.blasCore}` : ''}`;
  log(`backend: ${info.backend} (${info.provider}, ${where}${missing})`);
  return info;
}

/** tfjs-backend-wasm's MAXIMUM_MEMORY: its heap never grows past this. */
export const WASM_HEAP_BYTES = 4 * 2 ** 30;
/** Share of that heap the memory checks keep free for what their estimates do not see (XNNPACK's packed weights, allocator slack). */
export const WASM_HEAP_RESERVE = 0.12;

/** Size of the wasm backend's heap in bytes (it only grows), or undefined on other backends. */
export function wasmHeapBytes(): number | undefined {
  const b = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  return b.wasm?.HEAPU8?.buffer.byteLength;
}
