/** End to end on the committed Fashion-MNIST slice: the loss falls, resume replays exactly. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../../src/pretrain/checkpoint.js';
import { runPretraining } from '../../src/pretrain/loop.js';
import { disposeState } from '../../src/pretrain/step.js';
import { backendInfo } from '../../src/runtime/backend.js';
import { tinyConfig } from './helpers.js';

const SLICE_DIR = path.resolve('data/fmnist-slice');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'capi-run-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const quiet = { log: () => {} };
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

describe('pretraining run on the real Fashion-MNIST slice', () => {
  it('the CAPI loss falls clearly over 100 steps', async () => {
    const cfg = tinyConfig({ dataDir: SLICE_DIR, batchSize: 32, steps: 100, checkpointEvery: 1000 });
    const out = path.join(tmp, 'falls');
    const r = await runPretraining(cfg, { out, resume: false, stopAfter: 0, backend: backendInfo(), ...quiet });
    const losses = r.records.map((x) => x.capiLoss);
    expect(losses.length).toBe(100);
    const first = mean(losses.slice(0, 10));
    const last = mean(losses.slice(-10));
    expect(last).toBeLessThan(first - 0.2);
    // Checkpoint and teacher export are written at the end and load back.
    const loaded = loadCheckpoint(path.join(out, 'checkpoint.safetensors'));
    expect(loaded.state.step).toBe(100);
    expect(loaded.config).toEqual(cfg);
    expect(fs.existsSync(path.join(out, 'teacher', 'model.json'))).toBe(true);
    expect(fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').length).toBe(100);
    disposeState(loaded.state);
    disposeState(r.state);
  });

  it('20 steps + resume for 20 give the same loss trace as 40 steps in one go', async () => {
    const cfg = tinyConfig({ dataDir: SLICE_DIR, batchSize: 16, steps: 40, checkpointEvery: 7 });
    const straight = await runPretraining(cfg, {
      out: path.join(tmp, 'straight'),
      resume: false,
      stopAfter: 0,
      backend: backendInfo(),
      ...quiet,
    });
    const split = path.join(tmp, 'split');
    const first = await runPretraining(cfg, { out: split, resume: false, stopAfter: 20, backend: backendInfo(), ...quiet });
    expect(first.stoppedEarly).toBe(true);
    disposeState(first.state);
    const second = await runPretraining(cfg, { out: split, resume: true, stopAfter: 0, backend: backendInfo(), ...quiet });
    expect(second.records[0].step).toBe(20);
    const resumed = [...first.records, ...second.records].map((x) => [x.capiLoss, x.clusteringLoss, x.targetEntropy]);
    expect(resumed).toEqual(straight.records.map((x) => [x.capiLoss, x.clusteringLoss, x.targetEntropy]));
    const recs = fs
      .readFileSync(path.join(split, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { step: number; elapsedSec: number });
    expect(recs.map((r) => r.step)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    // The clock continues across the resume: training time never runs backwards.
    expect(second.records[0].elapsedSec).toBeGreaterThan(first.records.at(-1)!.elapsedSec);
    for (let i = 1; i < recs.length; i++) expect(recs[i].elapsedSec).toBeGreaterThanOrEqual(recs[i - 1].elapsedSec);
    disposeState(straight.state);
    disposeState(second.state);
  });
});
