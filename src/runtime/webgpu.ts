/**
 * The GPU path: TensorFlow.js's WebGPU backend on Dawn's Node bindings (npm `webgpu`, which ships
 * its prebuilt `dawn.node`: nothing is downloaded at install). Both packages are optional
 * dependencies; Dawn needs a Vulkan driver at run time (a GPU vendor's, or Mesa's lavapipe on a
 * CPU: scripts/get-lavapipe.sh). Auto takes it when Dawn finds an adapter (`CAPI_WEBGPU=off`
 * refuses it). Everything on the train and evaluation paths reads tensors asynchronously
 * (`await t.data()`): tfjs-backend-webgpu reads a GPU tensor synchronously through
 * OffscreenCanvas, which Node lacks, so a `dataSync()` there throws.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Whether libvulkan.so.1 is where the dynamic loader looks (LD_LIBRARY_PATH, then the system's library folders). */
function vulkanLoaderPresent(): boolean {
  const dirs = [
    ...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean),
    '/usr/lib/x86_64-linux-gnu',
    '/usr/lib/aarch64-linux-gnu',
    '/usr/lib64',
    '/usr/lib',
    '/lib/x86_64-linux-gnu',
    '/lib64',
  ];
  return dirs.some((d) => fs.existsSync(path.join(d, 'libvulkan.so.1')));
}

/** What a WebGPU adapter says of itself (GPUAdapterInfo). */
export interface AdapterSummary {
  description: string;
  /** A CPU implementation (lavapipe): correct, slower than the CPU paths. */
  software: boolean;
  /** The largest tensor a kernel can bind, in bytes (maxStorageBufferBindingSize): lavapipe's is 128 MiB. */
  maxBindingBytes: number;
}

export type WebgpuProbe = { ok: true; adapter: AdapterSummary } | { ok: false; why: string };

interface DawnAdapter {
  info?: { vendor?: string; architecture?: string; device?: string; description?: string; isFallbackAdapter?: boolean };
  isFallbackAdapter?: boolean;
  limits: { maxStorageBufferBindingSize: number };
}

/**
 * Finds a WebGPU adapter through Dawn and makes it the one tfjs-backend-webgpu will use (it reads
 * `navigator.gpu`, which Node does not define, when its module is imported). `CAPI_WEBGPU=off`
 * skips it.
 */
export async function probeWebgpu(): Promise<WebgpuProbe> {
  if (process.env.CAPI_WEBGPU === 'off') return { ok: false, why: 'CAPI_WEBGPU=off' };
  // On Linux Dawn reaches the GPU through the Vulkan loader; without one it only prints warnings.
  if (process.platform === 'linux' && !vulkanLoaderPresent())
    return { ok: false, why: 'no Vulkan loader (libvulkan.so.1: Debian package libvulkan1, and a GPU vendor’s Vulkan driver)' };
  let dawn: { create: (flags: string[]) => { requestAdapter: () => Promise<DawnAdapter | null> }; globals: object };
  try {
    dawn = await import('webgpu');
  } catch {
    return { ok: false, why: 'the optional package webgpu is not installed' };
  }
  let adapter: DawnAdapter | null;
  const gpu = dawn.create([]);
  try {
    adapter = await gpu.requestAdapter();
  } catch (e) {
    return { ok: false, why: `Dawn failed to start (${(e as Error).message.split('\n')[0]})` };
  }
  if (!adapter)
    return { ok: false, why: 'no WebGPU adapter (Dawn needs a Vulkan driver: a GPU vendor’s, or lavapipe via scripts/get-lavapipe.sh)' };
  Object.assign(globalThis, dawn.globals);
  Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  const info = adapter.info ?? {};
  const software = Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter) || info.architecture === 'software';
  const description = info.description || [info.vendor, info.device].filter(Boolean).join(' ') || 'unnamed adapter';
  return { ok: true, adapter: { description, software, maxBindingBytes: adapter.limits.maxStorageBufferBindingSize } };
}
