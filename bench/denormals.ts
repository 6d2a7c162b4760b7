/**
 * `npm run bench:denormals [-- --m 1024 --k 784 --n 390]`: a matrix product's time with normal
 * operands and with one operand scaled into the denormal range (|x| < 1.2e-38), as probe
 * gradients get when softmax probabilities underflow. On x86 each denormal operation costs a
 * microcode assist unless the product flushes them (capi-native: FTZ/DAZ); the ratio says
 * whether this machine's path does. A figure a line.
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { commandConfig, isMain, runMain } from '../src/cli/command.js';
import { initBackend } from '../src/runtime/backend.js';

export const BENCH_DENORMALS = {
  usage: 'npm run bench:denormals [-- --m M --k K --n N]',
  summary: "x^T dy (a linear probe's weight gradient) with normal and with denormal dy.",
  schema: z.object({
    m: z.number().int().min(1).default(1024).describe('rows (the probe batch)'),
    k: z.number().int().min(1).default(784).describe('feature dimension'),
    n: z.number().int().min(1).default(390).describe('outputs (grid points x classes)'),
    reps: z.number().int().min(1).default(5).describe('timed repetitions'),
    threads: z.number().int().min(1).default(2).describe('wasm threads'),
  }),
};

/** One product, read back and disposed (not in tf.tidy: its walk of a returned typed array would be timed too). */
function product(x: tf.Tensor, dy: tf.Tensor): void {
  const y = tf.matMul(x, dy, true, false);
  y.dataSync();
  y.dispose();
}

function timeMs(x: tf.Tensor, dy: tf.Tensor, reps: number): number {
  product(x, dy); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) product(x, dy);
  return (performance.now() - t0) / reps;
}

export async function main(argv = process.argv.slice(2)): Promise<void> {
  const parsed = commandConfig(BENCH_DENORMALS, argv);
  if (!parsed) return;
  const { m, k, n, reps, threads } = parsed.config;
  const info = await initBackend('auto', threads);
  console.log(`backend: ${info.backend} (${info.threads} threads)`);
  const x = tf.randomNormal([m, k]);
  const dy = tf.randomNormal([m, n]);
  const tiny = tf.mul(dy, 1e-39);
  const normal = timeMs(x, dy, reps);
  const denormal = timeMs(x, tiny, reps);
  console.log(`x^T dy [${k} x ${m}] x [${m} x ${n}], normal dy ms: ${normal.toFixed(1)}`);
  console.log(`the same, denormal dy ms: ${denormal.toFixed(1)}`);
  console.log(`slowdown from denormals: ${(denormal / normal).toFixed(2)}x`);
  tf.dispose([x, dy, tiny]);
}

if (isMain(import.meta.url)) runMain(main);
