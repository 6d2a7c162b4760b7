/**
 * The pretraining monitor: measured on the steps it names (every k and the last) into the
 * metrics lines and described in config.json; its last value is the k-NN of the run's final
 * teacher computed independently from the teacher export; it frees nothing of the live state.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoized, ImageMemo } from '../../src/data/memo.js';
import { limit } from '../../src/eval/feature-source.js';
import { knnMonitor } from '../../src/eval/monitor.js';
import { TASKS } from '../../src/eval/tasks.js';
import { extractFeatures } from '../../src/features/extract.js';
import { capiFeatureModel } from '../../src/features/models.js';
import { loadEncoder } from '../../src/model/io/load.js';
import { knnClassify } from '../../src/probes/knn-classify.js';
import { initBackend } from '../../src/runtime/backend.js';
import { trainTinyRun } from '../pretrain/helpers.js';

const SLICE = path.resolve('data/fmnist-slice');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'capi-monitor-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
beforeAll(async () => {
  await initBackend('wasm', 2, () => {});
});

describe('knnMonitor', () => {
  it('measures the live teacher every k steps and at the end; the last value is the final teacher k-NN', async () => {
    const monitor = knnMonitor({ task: TASKS.fmnist, dataDir: SLICE, every: 2, train: 60, test: 30, batchSize: 16 });
    const out = path.join(tmp, 'run');
    await trainTinyRun(out, { steps: 5 }, { monitor });
    const lines = fs
      .readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.filter((m) => m.monitorKnnTop1 !== undefined).map((m) => m.step + 1)).toEqual([2, 4, 5]);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8')).monitor).toEqual({
      every: 2,
      description: expect.stringContaining('first 60 training to first 30 test images'),
    });

    // Independently: the exported final teacher, its average-pooled features, the same k-NN.
    const enc = await loadEncoder(out);
    const model = capiFeatureModel('final', 'final', enc.params, enc.config);
    const { train, test } = TASKS.fmnist.load({ dataDir: SLICE, dataRoot: '', seed: 0, scenesTrain: 0, scenesTest: 0 });
    const avg = async (d: typeof train) =>
      (
        await extractFeatures(model, memoized(d, new ImageMemo(2 ** 26)), {
          size: 28,
          transform: 'resize',
          batchSize: 16,
          cacheDir: '',
          maxBytes: 2 ** 30,
        })
      ).avg;
    const labels = (d: typeof train) => Int32Array.from({ length: d.size }, (_, i) => d.label(i));
    const tr = limit(train, 60);
    const te = limit(test, 30);
    const expected = 100 * (await knnClassify(await avg(tr), labels(tr), await avg(te), labels(te), enc.config.dim, 10)).accuracy;
    model.dispose();
    expect(lines.at(-1).monitorKnnTop1).toBeCloseTo(expected, 6);

    // A measurement allocates nothing that outlives it and leaves the live weights alone.
    const again = knnMonitor({ task: TASKS.fmnist, dataDir: SLICE, every: 1, train: 20, test: 10, batchSize: 16 });
    const own = await loadEncoder(out);
    const before = tf.memory().numTensors;
    await again.measure(own.params, own.config);
    expect(tf.memory().numTensors).toBe(before);
    expect(Object.values(own.params).every((t) => !t.isDisposed)).toBe(true);
    tf.dispose(Object.values(own.params));
  });
});
