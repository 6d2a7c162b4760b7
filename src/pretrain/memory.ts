/**
 * Will a train step fit the backend? On wasm: its heap. On WebGPU: each tensor is one buffer, at
 * most the adapter's binding size (checkWebgpuStepBindings).
 *
 * The wasm heap: tfjs-backend-wasm is built with a 4 GiB maximum; past it
 * the threaded build can hang in a dead worker's barrier instead of failing, so the run measures
 * before its first step: the peak tensor bytes (tf.profile) of throwaway steps at two small
 * batches, extrapolated linearly in the batch (activations scale with the images, the weights
 * and optimiser state do not).
 */
import * as tf from '@tensorflow/tfjs';
import { backboneShapes } from '../model/capi.js';
import { largestActivationBytes } from '../model/config.js';
import { WASM_HEAP_BYTES, WASM_HEAP_RESERVE } from '../runtime/backend.js';
import type { PretrainConfig } from './config.js';
import { disposeState, initState, trainStep } from './step.js';

export interface StepMemory {
  /** Weights, EMA teacher, optimiser moments. */
  stateBytes: number;
  perImageBytes: number;
  fixedBytes: number;
}

export const stepBytes = (m: StepMemory, batch: number) => m.stateBytes + m.fixedBytes + m.perImageBytes * batch;

/** Parameters x (student + teacher + two moments), a lower bound known without building anything. */
function stateLowerBound(cfg: PretrainConfig): number {
  let n = 0;
  for (const [, shape] of backboneShapes(cfg.model)) n += shape.reduce((a, b) => a * b, 1);
  return 4 * 4 * n;
}

async function peakOfStep(cfg: PretrainConfig, batch: number): Promise<{ peak: number; state: number }> {
  const c: PretrainConfig = { ...cfg, train: { ...cfg.train, batchSize: batch } };
  const before = tf.memory().numBytes;
  const state = initState(c);
  const stateBytes = tf.memory().numBytes - before;
  const n = (cfg.model.imageSize / cfg.model.patchSize) ** 2;
  const patches = new Float32Array(batch * n * cfg.model.inChans * cfg.model.patchSize ** 2).fill(0.5);
  try {
    const p = await tf.profile(async () => {
      await trainStep(state, { size: batch, patches }, c, 100);
    });
    return { peak: p.peakBytes - before, state: stateBytes };
  } finally {
    disposeState(state);
  }
}

export async function measureStepMemory(cfg: PretrainConfig, batches: [number, number] = [4, 8]): Promise<StepMemory> {
  // One after the other: two states at once would distort each other's peak.
  const a = await peakOfStep(cfg, batches[0]);
  const b = await peakOfStep(cfg, batches[1]);
  const perImageBytes = Math.max(0, (b.peak - a.peak) / (batches[1] - batches[0]));
  return { stateBytes: a.state, perImageBytes, fixedBytes: Math.max(0, a.peak - a.state - perImageBytes * batches[0]) };
}

/** Refuses, in one line, a batch whose step would not fit the wasm heap. */
export async function checkWasmStepMemory(cfg: PretrainConfig): Promise<StepMemory | undefined> {
  const budget = WASM_HEAP_BYTES * (1 - WASM_HEAP_RESERVE);
  const gib = (x: number) => (x / 2 ** 30).toFixed(1);
  const lower = stateLowerBound(cfg);
  if (lower > budget) {
    throw new Error(
      `the model's weights and optimiser state alone need ${gib(lower)} GiB, over the wasm backend's 4 GiB heap: use a smaller model (--dim, --depth) or a native backend`,
    );
  }
  const m = await measureStepMemory(cfg);
  const need = stepBytes(m, cfg.train.batchSize);
  if (need > budget) {
    const maxBatch = Math.floor((budget - m.stateBytes - m.fixedBytes) / Math.max(1, m.perImageBytes));
    throw new Error(
      `a step at batch ${cfg.train.batchSize} needs about ${gib(need)} GiB of the wasm backend's 4 GiB heap ` +
        `(${(m.perImageBytes / 2 ** 20).toFixed(1)} MiB per image, measured): lower --batch-size to at most ${Math.max(0, maxBatch)}`,
    );
  }
  return m;
}

/**
 * Refuses, in one line, a batch whose largest tensor would not fit one WebGPU buffer binding
 * (`maxBindingBytes`): the teacher's forward sees every token of every image.
 */
export function checkWebgpuStepBindings(cfg: PretrainConfig, maxBindingBytes: number): void {
  const tokens = cfg.model.registers + (cfg.model.imageSize / cfg.model.patchSize) ** 2;
  const need = largestActivationBytes(cfg.model, tokens, cfg.train.batchSize);
  if (need <= maxBindingBytes) return;
  const perImage = largestActivationBytes(cfg.model, tokens, 1);
  const mib = (x: number) => (x / 2 ** 20).toFixed(0);
  throw new Error(
    `a step at batch ${cfg.train.batchSize} makes a ${mib(need)} MiB tensor (attention scores or MLP activations, estimated), over the WebGPU adapter's ${mib(maxBindingBytes)} MiB binding limit: lower --batch-size to at most ${Math.floor(maxBindingBytes / perImage)}, or use another backend`,
  );
}
