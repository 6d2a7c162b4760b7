/**
 * The GPU-parity suite: on the WebGPU backend (CI: Dawn on Mesa's lavapipe, scripts/get-lavapipe.sh,
 * with CAPI_BACKEND=webgpu), the kernels and layers the train step and the frozen forward use
 * equal tfjs's reference cpu kernels (which the wasm kernels equal: wasm-kernels.test.ts), their
 * gradients too, the frozen forward of the reference fixture equals the reference's outputs, and
 * a short pretraining run gives the wasm backend's losses.
 * GPU tensors are read asynchronously only (a synchronous read throws on this backend).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Params } from '../../src/model/capi.js';
import { evalForward } from '../../src/model/capi.js';
import { allPositions, tokenCoords } from '../../src/model/coords.js';
import { patchify } from '../../src/model/patches.js';
import { resolvePretrainConfig } from '../../src/pretrain/config.js';
import { disposeState, initState, trainStep } from '../../src/pretrain/step.js';
import { backendInfo } from '../../src/runtime/backend.js';
import { HAVE_FIXTURE, maxAbsDiff, readF32 } from '../fixture.js';
import { loadReferenceParams, TINY_REF_CONFIG as cfg } from '../model/reference-model.js';
import { PARITY_CASES, PARITY_LIMIT, randn, relError, runOn } from './webgpu-parity-cases.js';

const ON_WEBGPU = process.env.CAPI_BACKEND === 'webgpu';

describe.skipIf(!ON_WEBGPU)('WebGPU parity', () => {
  const onCpu = new Map<string, Float32Array>();
  beforeAll(async () => {
    expect(backendInfo().backend).toBe('webgpu');
    for (const [name, shapes, f] of PARITY_CASES) onCpu.set(name, await runOn('cpu', shapes, f));
    await tf.setBackend('webgpu');
  });

  for (const [name, shapes, f] of PARITY_CASES) {
    it(`${name} equals the cpu kernels within 1e-5 relative`, async () => {
      const gpu = await runOn('webgpu', shapes, f);
      const cpu = onCpu.get(name)!;
      expect(gpu.length).toBe(cpu.length);
      expect(relError(gpu, cpu)).toBeLessThan(PARITY_LIMIT);
    });
  }

  it.skipIf(!HAVE_FIXTURE)(
    "the reference fixture's frozen forward within 1e-4 of the reference's outputs, leaving no tensor behind",
    async () => {
      await tf.setBackend('webgpu');
      const p: Params = loadReferenceParams();
      const [B, N, R, G] = [2, 16, 8, 4];
      const forward = () =>
        tf.tidy(() => {
          const x = tf.tensor(patchify(readF32('images'), B, 3, 16, 16, 4), [B, N, 48]);
          const coords = tf.tensor(tokenCoords(G, G, R, allPositions(B, N), true), [B, R + N, 2]);
          const out = evalForward(p, cfg, x, coords, G, G);
          return [out.global, out.registers, out.featureMap];
        });
      tf.dispose(forward()); // a first forward may cache constants (RoPE tables, masks)
      const before = tf.memory().numTensors;
      const outs = forward();
      for (const [i, name] of ['eval_global_repr', 'eval_registers', 'eval_feature_map'].entries()) {
        const err = maxAbsDiff((await outs[i].data()) as Float32Array, readF32(name));
        expect(err, `${name}: max abs error ${err}`).toBeLessThan(1e-4);
      }
      tf.dispose(outs);
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose(Object.values(p));
    },
  );
});

describe.skipIf(!ON_WEBGPU)('pretraining on WebGPU', () => {
  it('3 steps write a checkpoint and a teacher export, with the losses and diagnostics of the wasm backend within 1e-5 relative', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'capi-webgpu-run-'));
    try {
      const run = (backend: string) => {
        const out = path.join(tmp, backend);
        const r = spawnSync(
          process.execPath,
          ['--import', 'tsx', 'src/cli/pretrain.ts', '--preset', 'fmnist-tiny', '--data-dir', 'data/fmnist-slice'].concat([
            '--steps',
            '3',
            '--batch-size',
            '16',
            '--backend',
            backend,
            '--out',
            out,
          ]),
          { encoding: 'utf8', env: { ...process.env, CAPI_BACKEND: '' } },
        );
        expect(r.status, r.stderr).toBe(0);
        expect(fs.existsSync(path.join(out, 'checkpoint.safetensors'))).toBe(true);
        expect(fs.existsSync(path.join(out, 'teacher', 'model.json'))).toBe(true);
        return fs
          .readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as Record<string, number>);
      };
      const gpu = run('webgpu');
      const wasm = run('wasm');
      expect(gpu.map((r) => r.step)).toEqual([0, 1, 2]);
      for (const key of ['capiLoss', 'clusteringLoss', 'targetEntropy', 'prototypeCosineToInit']) {
        const rel = Math.max(...gpu.map((r, i) => Math.abs(r[key] - wasm[i][key]) / Math.abs(wasm[i][key])));
        expect(rel, key).toBeLessThan(1e-5);
      }
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }, 120_000);

  it("a train step takes this backend's forms: the fused GELU and AdamW kernels, batched attention, no tensor left behind", async () => {
    await tf.setBackend('webgpu');
    const cfg = resolvePretrainConfig('fmnist-tiny', { batchSize: 4 });
    const state = initState(cfg);
    const n = (cfg.model.imageSize / cfg.model.patchSize) ** 2;
    const batch = { size: 4, patches: randn([4 * n * 3 * cfg.model.patchSize ** 2], 3) };
    await trainStep(state, batch, cfg, 10); // the first step caches constants (RoPE tables, masks)
    const before = tf.memory().numTensors;
    const profile = await tf.profile(async () => {
      await trainStep(state, batch, cfg, 10);
    });
    expect(tf.memory().numTensors).toBe(before);
    const kernels = new Set(profile.kernels.map((k) => k.name));
    for (const fused of ['CapiGelu', 'CapiGeluGrad', 'CapiAdamMoment', 'CapiAdamParam']) expect(kernels, fused).toContain(fused);
    expect(kernels, 'the block-diagonal attention of stock wasm unstacks its groups').not.toContain('Unpack');
    disposeState(state);
  });
});

describe.skipIf(!ON_WEBGPU)('evaluation on WebGPU', () => {
  /**
   * The whole evaluation (frozen forward, probe grids, k-NN, L-BFGS logistic regression) on the
   * GPU backend: it completes (a synchronous read of a GPU tensor would throw) and gives the wasm
   * backend's numbers. The features agree to float rounding, so k-NN and the dense classifiers
   * match; the probes' SGD may move a test image or two across the boundary (1.7 points at 60).
   */
  it("classification (linear, k-NN) and segmentation (k-NN, logistic regression) give the wasm backend's metrics", () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'capi-webgpu-eval-'));
    const node = (args: string[], backend: string) => {
      const r = spawnSync(process.execPath, ['--import', 'tsx', ...args, '--backend', backend], {
        encoding: 'utf8',
        env: { ...process.env, CAPI_BACKEND: '' },
      });
      expect(r.status, r.stderr).toBe(0);
      return r.stderr;
    };
    try {
      const run = path.join(tmp, 'run');
      node(
        [
          'src/cli/pretrain.ts',
          '--preset',
          'fmnist-tiny',
          '--data-dir',
          'data/fmnist-slice',
          '--steps',
          '3',
          '--batch-size',
          '16',
          '--out',
          run,
        ],
        'wasm',
      );
      const metrics = (backend: string, task: string, flags: string[]) => {
        const out = path.join(tmp, backend);
        const common = ['--checkpoint', run, '--data-dir', 'data/fmnist-slice', '--out', out, '--no-baselines', '--pca-images', '0'];
        expect(node(['src/cli/eval.ts', '--task', task, ...common, ...flags], backend)).toContain(`backend: ${backend}`);
        return JSON.parse(fs.readFileSync(path.join(out, task, 'run.json'), 'utf8')).metrics as Record<string, number>;
      };
      const classification = ['--probes', 'linear,knn', '--limit-train', '200', '--limit-test', '60', '--epochs', '2'];
      const segmentation = ['--probes', 'knn,logreg', '--scenes-train', '12', '--scenes-test', '4', '--logreg-max-iter', '20'];
      for (const [task, flags, tolerance] of [
        ['fmnist', classification, 100 / 60 + 1e-9],
        ['fmnist-scenes', segmentation, 1e-3],
      ] as const) {
        const gpu = metrics('webgpu', task, [...flags]);
        const wasm = metrics('wasm', task, [...flags]);
        expect(Object.keys(gpu).sort()).toEqual(Object.keys(wasm).sort());
        for (const [k, v] of Object.entries(wasm)) {
          const slack = k.startsWith('knn') ? 1e-9 : tolerance; // k-NN of the same features: the same neighbours
          expect(Math.abs(gpu[k] - v), `${task} ${k}: webgpu ${gpu[k]} vs wasm ${v}`).toBeLessThanOrEqual(slack);
        }
      }
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }, 600_000);
});

describe.skipIf(!ON_WEBGPU)('choosing the WebGPU backend', () => {
  /** The backend line a process prints, choosing with `request` under `env`. */
  const chosen = (request: string, env: Record<string, string> = {}) => {
    const code = `import('./src/runtime/backend.ts').then((m) => m.initBackend('${request}')).catch((e) => console.error('error: ' + e.message))`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', code], {
      encoding: 'utf8',
      env: { ...process.env, CAPI_BACKEND: '', ...env },
    });
    return r.stderr.split('\n').find((l) => l.startsWith('backend: ') || l.startsWith('error: '));
  };

  it('auto takes it when Dawn finds an adapter; with CAPI_WEBGPU=off auto says why it did not, and a forced one is refused', () => {
    expect(chosen('auto')).toMatch(/^backend: webgpu \(tfjs-backend-webgpu\+dawn, on llvmpipe/);
    expect(chosen('webgpu')).toMatch(/^backend: webgpu \(tfjs-backend-webgpu\+dawn, on llvmpipe/);
    expect(chosen('auto', { CAPI_WEBGPU: 'off' })).toMatch(
      /^backend: wasm \(capi-native\+tfjs-backend-wasm, .*; webgpu: CAPI_WEBGPU=off\)$/,
    );
    expect(chosen('webgpu', { CAPI_WEBGPU: 'off' })).toBe("error: backend 'webgpu' is not available: CAPI_WEBGPU=off");
  });
});
