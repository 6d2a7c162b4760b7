/**
 * `npm run bench:pretrain [-- --preset P --field value ...]`: train-step throughput on the chosen
 * backend, one figure per line: images/s, nominal GFLOP per image (method spec 12), achieved
 * GFLOP/s, and the ratio to a plain 1024^3 matmul measured in the same run. Without arguments it
 * measures fmnist-tiny and the reference comparison shape. Batches are synthetic (the data
 * pipeline is not timed); the first steps are warm-up.
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { commandConfig, isMain, runMain } from '../src/cli/command.js';
import { CONFIG_OVERRIDE_FIELDS, FMNIST_TINY_DEFAULTS, PRESET_NAMES, resolvePretrainConfig } from '../src/pretrain/config.js';
import { trainFlopsPerImage } from '../src/pretrain/flops.js';
import { checkWasmStepMemory } from '../src/pretrain/memory.js';
import { disposeState, initState, stepMaskCounts, trainStep } from '../src/pretrain/step.js';
import { BACKEND_FIELDS, initBackend } from '../src/runtime/backend.js';
import { Rng } from '../src/runtime/rng.js';
import { torchImagesPerSec } from './torch.js';

/** The shape we also measure in other frameworks on this machine (issue: pretraining bench). */
const COMPARISON: Record<string, number> = {
  dim: 192,
  depth: 6,
  heads: 3,
  predDim: 192,
  predDepth: 3,
  predHeads: 3,
  registers: 4,
  numClusters: 1024,
  batchSize: 128,
  numPredictions: 8,
  dropPath: 0,
};

async function matmulGflops(): Promise<number> {
  const a = tf.randomNormal([1024, 1024]);
  const b = tf.randomNormal([1024, 1024]);
  // Read back asynchronously (a GPU backend has no synchronous read); never return a TypedArray from tf.tidy.
  const run = async () => {
    const c = tf.matMul(a, b);
    await c.data();
    c.dispose();
  };
  await run();
  const reps = 8;
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) await run();
  const sec = (performance.now() - t0) / 1000 / reps;
  tf.dispose([a, b]);
  return (2 * 1024 ** 3) / sec / 1e9;
}

async function benchConfig(
  label: string,
  preset: string,
  overrides: Record<string, unknown>,
  steps: number,
  peak: number,
  compare?: { threads: number; python: string; device: string },
): Promise<void> {
  const cfg = resolvePretrainConfig(preset, overrides);
  // The run's own pre-flight check: a step past the wasm heap hangs the threaded build.
  if (tf.getBackend() === 'wasm') await checkWasmStepMemory(cfg);
  const state = initState(cfg);
  const b = cfg.train.batchSize;
  const n = (cfg.model.imageSize / cfg.model.patchSize) ** 2;
  const rng = new Rng(0);
  const patches = Float32Array.from({ length: b * n * 3 * cfg.model.patchSize ** 2 }, () => rng.normal());
  const warmup = 2;
  let sec = 0;
  for (let i = 0; i < warmup + steps; i++) {
    const t0 = performance.now();
    await trainStep(state, { size: b, patches }, cfg, 1000);
    if (i >= warmup) sec += (performance.now() - t0) / 1000;
  }
  // Op count, one line: a GPU backend dispatches one shader per op, so its small steps are expected to be bound by this.
  const profile = await tf.profile(async () => {
    await trainStep(state, { size: b, patches }, cfg, 1000);
  });
  disposeState(state);
  const ips = (b * steps) / sec;
  const gflopPerImage = trainFlopsPerImage(cfg.model, stepMaskCounts(cfg)) / 1e9;
  const achieved = ips * gflopPerImage;
  console.log(`${label} images/s: ${ips.toFixed(1)}`);
  console.log(`${label} model GFLOP/image: ${gflopPerImage.toFixed(3)}`);
  console.log(`${label} achieved GFLOP/s: ${achieved.toFixed(2)}`);
  console.log(`${label} ratio to matmul peak: ${(achieved / peak).toFixed(3)}`);
  console.log(`${label} kernel calls/step: ${profile.kernels.length}`);
  if (compare) {
    const shape = {
      ...cfg.model,
      batchSize: b,
      numPredictions: stepMaskCounts(cfg).nPredict,
      maskRatio: cfg.train.maskRatio,
      benchSteps: steps,
    };
    const torch = torchImagesPerSec(shape, compare.threads, compare.python, compare.device);
    if (torch !== undefined) {
      console.log(`${label} PyTorch images/s: ${torch.toFixed(1)}`);
      console.log(`${label} ratio to PyTorch: ${(ips / torch).toFixed(3)}`);
    }
  }
}

const RUN_FIELDS = {
  preset: z
    .enum(PRESET_NAMES as [string, ...string[]])
    .default('fmnist-tiny')
    .describe('the shape to time (with the overrides below)'),
  benchSteps: z.number().int().min(1).default(5).describe('timed steps (after 2 warm-up steps)'),
  compare: z.boolean().default(false).describe('also time the same step in PyTorch (bench/torch_step.py) and print the ratio'),
  python: z.string().default('/usr/bin/python3').describe("the Python with torch (Debian's python3-torch)"),
  torchDevice: z.string().default('cpu').describe("PyTorch's device for --compare: cpu (threads as --threads) or cuda"),
  ...BACKEND_FIELDS,
};

export const BENCH_PRETRAIN = {
  usage: 'npm run bench:pretrain -- [--preset P] [--<field> value ...]',
  summary: 'Train-step throughput. Without shape options: fmnist-tiny and the comparison shape; with any, that shape.',
  schema: z.object({ ...RUN_FIELDS, ...CONFIG_OVERRIDE_FIELDS }),
  shownDefaults: FMNIST_TINY_DEFAULTS(),
};

export async function main(argv = process.argv.slice(2)): Promise<void> {
  const parsed = commandConfig(BENCH_PRETRAIN, argv);
  if (!parsed) return;
  const { backend, threads, benchSteps: steps, python, torchDevice } = parsed.config;
  const compare = parsed.config.compare ? { threads, python, device: torchDevice } : undefined;
  const values = Object.fromEntries(
    Object.entries(parsed.values).filter(([k]) => !['backend', 'threads', 'benchSteps', 'compare', 'python', 'torchDevice'].includes(k)),
  );
  const info = await initBackend(backend, threads);
  const peak = await matmulGflops();
  console.log(`backend: ${info.backend} (${info.threads} threads)`);
  console.log(`matmul 1024^3 GFLOP/s: ${peak.toFixed(1)}`);
  if (Object.keys(values).length > 0) {
    const { preset, ...overrides } = { preset: 'fmnist-tiny', ...values } as Record<string, unknown> & { preset: string };
    await benchConfig(Object.keys(overrides).length ? `${preset} + overrides` : preset, preset, overrides, steps, peak, compare);
    return;
  }
  await benchConfig('fmnist-tiny', 'fmnist-tiny', {}, steps, peak, compare);
  await benchConfig('comparison', 'fmnist-tiny', COMPARISON, steps, peak, compare);
}

if (isMain(import.meta.url)) runMain(main);
