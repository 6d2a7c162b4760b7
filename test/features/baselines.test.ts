/** The `pixels` and `init` baselines against independently computed features on tiny inputs. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { capiFeatureModel, initCapiFeatureModel, pixelImageFeatureModel } from '../../src/features/models.js';
import { loadEncoder } from '../../src/model/io/load.js';
import { runPretraining } from '../../src/pretrain/loop.js';
import { disposeState, initState } from '../../src/pretrain/step.js';
import { backendInfo } from '../../src/runtime/backend.js';
import { Rng } from '../../src/runtime/rng.js';
import { tinyConfig } from '../pretrain/helpers.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'capi-baselines-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('baselines', () => {
  it('pixels: global = the flattened normalised image, patches = pixel patch + position', async () => {
    const rng = new Rng(5);
    const s = 8;
    const p = 4;
    const img = Float32Array.from({ length: 2 * 3 * s * s }, () => rng.normal());
    const m = pixelImageFeatureModel(p, s);
    const out = await m.forward(img, 2, s);
    expect(out.global).toEqual(img);
    expect(m.globalDim).toBe(3 * s * s);
    // Patch 3 of image 1 (row 1, col 1 of the 2 x 2 grid): its pixels in (c, i, j) order, then (1/2, 1/2).
    const d = 3 * p * p;
    const row = out.patch.subarray((1 * 4 + 3) * (d + 2), (1 * 4 + 4) * (d + 2));
    const want: number[] = [];
    for (let c = 0; c < 3; c++)
      for (let i = 0; i < p; i++) for (let j = 0; j < p; j++) want.push(img[((1 * 3 + c) * s + (p + i)) * s + (p + j)]);
    expect(Array.from(row.subarray(0, d))).toEqual(want);
    expect(Array.from(row.subarray(d))).toEqual([0.5, 0.5]);
  });

  it("init: a run's step-0 weights, the features of its state before the first step", async () => {
    const cfg = tinyConfig({ dataDir: path.resolve('data/fmnist-slice'), steps: 2, seed: 7 });
    const run = path.join(tmp, 'run');
    disposeState((await runPretraining(cfg, { out: run, resume: false, stopAfter: 0, backend: backendInfo(), log: () => {} })).state);
    const enc = await loadEncoder(run);
    expect(enc.runSeed).toBe(7);
    const init = initCapiFeatureModel(enc.config, enc.runSeed!);
    const state = initState(cfg); // step 0: the teacher is an exact copy of the student's init
    const teacher = Object.fromEntries(Object.entries(state.teacher).map(([k, v]) => [k, v as tf.Tensor]));
    const direct = capiFeatureModel('step0', 'step0', teacher, cfg.model);
    const rng = new Rng(1);
    const img = Float32Array.from({ length: 2 * 3 * 28 * 28 }, () => rng.normal());
    const a = await init.forward(img, 2, 28);
    const b = await direct.forward(img, 2, 28);
    expect(a.patch).toEqual(b.patch);
    expect(a.global).toEqual(b.global);
    // ... and not the trained teacher's.
    const trained = await capiFeatureModel('trained', enc.hash, enc.params, enc.config).forward(img, 2, 28);
    expect(trained.patch).not.toEqual(a.patch);
    init.dispose();
    disposeState(state);
    tf.dispose(Object.values(enc.params));
  });
});
