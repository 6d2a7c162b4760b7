/**
 * `npm run bench:vitl [-- --batch 1 --batches 1 --pth FILE]`: ViT-L/14 feature extraction at 224 from a
 * reference-layout .pth (the released CAPI architecture: patch 14, width 1024, depth 24, 16
 * registers, 12-block predictor). No official weights can be downloaded here, so the file is
 * written with random weights in the reference layout, then loaded through the same path as
 * `--checkpoint model.pth`. Prints load time and images/s.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { commandConfig, isMain, runMain } from '../src/cli/command.js';
import { capiFeatureModel } from '../src/features/models.js';
import { backboneShapes } from '../src/model/capi.js';
import { MODEL_PRESETS } from '../src/model/config.js';
import { loadEncoder } from '../src/model/io/load.js';
import { writePth } from '../src/model/io/pth-writer.js';
import { ropeFrequencies } from '../src/model/layers.js';
import { BACKEND_FIELDS, initBackend, wasmHeapBytes } from '../src/runtime/backend.js';
import { Rng } from '../src/runtime/rng.js';
import { torchImagesPerSec } from './torch.js';

export const BENCH_VITL = {
  usage: 'npm run bench:vitl -- [--batch B --batches N --pth FILE]',
  summary: 'ViT-L/14 feature extraction at 224 from a reference-layout .pth (random weights): images/s and memory (the wasm heap on wasm).',
  schema: z.object({
    batch: z.number().int().min(1).default(1).describe('images per forward'),
    batches: z.number().int().min(1).default(1).describe('timed forwards'),
    pth: z.string().default('').describe("write the random-weight .pth here (or reuse it) and keep it; '': a temp file"),
    compare: z
      .boolean()
      .default(false)
      .describe('also time the frozen ViT-L/14 encoder forward in PyTorch (bench/torch_step.py) and print the ratio'),
    python: z.string().default('/usr/bin/python3').describe("the Python with torch (Debian's python3-torch)"),
    torchDevice: z.string().default('cpu').describe("PyTorch's device for --compare: cpu (threads as --threads) or cuda"),
    ...BACKEND_FIELDS,
  }),
};

export async function main(argv = process.argv.slice(2)): Promise<void> {
  const parsed = commandConfig(BENCH_VITL, argv);
  if (!parsed) return;
  const { batch, batches, pth: keep, threads } = parsed.config;
  const info = await initBackend(parsed.config.backend, threads);
  console.log(`backend: ${info.backend} (${info.threads} threads)`);
  const cfg = MODEL_PRESETS['vit-l14'];
  const file = keep || path.join(os.tmpdir(), `capi-vitl14-random-${process.pid}.pth`);
  let t0 = performance.now();
  const rng = new Rng(0);
  const reuse = keep !== '' && fs.existsSync(file);
  if (!reuse) {
    const sd = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [name, shape] of backboneShapes(cfg)) {
      const size = shape.reduce((a, b) => a * b, 1);
      let data: Float32Array;
      if (name.endsWith('rope.freqs')) data = ropeFrequencies(shape[1]);
      else if (name.endsWith('norm.weight')) data = new Float32Array(size).fill(1);
      else {
        const a = Math.sqrt(6 / (shape[0] + size / shape[0]));
        data = Float32Array.from({ length: size }, () => rng.uniformIn(-a, a));
      }
      sd.set(`backbone.${name}`, { shape, data });
    }
    writePth(file, sd);
    console.log(
      `wrote random reference-layout ViT-L/14 (${(fs.statSync(file).size / 2 ** 30).toFixed(2)} GiB) seconds: ${((performance.now() - t0) / 1000).toFixed(1)}`,
    );
  }
  try {
    t0 = performance.now();
    const enc = await loadEncoder(file);
    console.log(`loaded (encoder + predictor block 1) seconds: ${((performance.now() - t0) / 1000).toFixed(1)}`);
    const model = capiFeatureModel('vit-l14', enc.hash, enc.params, enc.config);
    const pixels = Float32Array.from({ length: batch * 3 * 224 * 224 }, () => rng.normal());
    const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(2)} GiB`;
    const heap = () => {
      const wasm = wasmHeapBytes();
      return `${wasm === undefined ? '' : `wasm heap ${gib(wasm)}, `}tfjs tensors ${gib(tf.memory().numBytes)}`;
    };
    console.log(`after load: ${heap()}`);
    await model.forward(pixels, 1, 224); // warm-up at batch 1
    console.log(`after a batch-1 forward: ${heap()}`);
    t0 = performance.now();
    let shape = '';
    for (let i = 0; i < batches; i++) {
      const out = await model.forward(pixels, batch, 224);
      shape = `${out.patch.length / (batch * 1024)} x 1024 patches, ${out.global.length / batch} global`;
    }
    const sec = (performance.now() - t0) / 1000;
    console.log(`after batch ${batch}: ${heap()}`);
    console.log(`features per image: ${shape}`);
    const ours = (batch * batches) / sec;
    console.log(`ViT-L/14 feature extraction at 224, batch ${batch} images/s: ${ours.toFixed(3)}`);
    model.dispose();
    if (parsed.config.compare) {
      const shape = { ...cfg, batchSize: batch, numPredictions: 1, forwardOnly: true, benchSteps: batches };
      const torch = torchImagesPerSec(shape, threads, parsed.config.python, parsed.config.torchDevice);
      if (torch !== undefined) {
        console.log(`PyTorch ViT-L/14 encoder forward at 224, batch ${batch} images/s: ${torch.toFixed(3)}`);
        console.log(`ratio to PyTorch: ${(ours / torch).toFixed(3)}`);
      }
    }
  } finally {
    if (!keep) fs.rmSync(file, { force: true });
  }
}

if (isMain(import.meta.url)) runMain(main);
