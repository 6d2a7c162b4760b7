/** The supervised ceiling: loss falls on the labeled slice, only the encoder moves, the export loads for eval, nothing leaks; a stopped run resumes exactly. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { loadEncoder } from '../../src/model/io/load.js';
import { initState, disposeState } from '../../src/pretrain/step.js';
import { RunFolder } from '../../src/pretrain/run-folder.js';
import { runSupervised } from '../../src/pretrain/supervised.js';
import { backendInfo } from '../../src/runtime/backend.js';
import { tinyConfig } from './helpers.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'capi-supervised-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('supervised ceiling', () => {
  it('trains the encoder with labels (loss falls), leaves the decoder at init, and exports what eval reads', async () => {
    const cfg = tinyConfig({ dataDir: path.resolve('data/fmnist-slice'), batchSize: 32, steps: 40, lr: 3e-3 });
    const out = path.join(tmp, 'run');
    await runSupervised(
      { ...cfg, train: { ...cfg.train, steps: 2 } },
      { out: path.join(tmp, 'warm'), backend: backendInfo(), log: () => {} },
    );
    const before = tf.memory().numTensors; // after the layers' one-time caches (RoPE, masks) exist
    await runSupervised(cfg, { out, backend: backendInfo(), log: () => {} });
    expect(tf.memory().numTensors).toBe(before);
    expect(new RunFolder(out).supervisedDone()).toBe(true);
    const m = fs
      .readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { loss: number; batchAccuracy: number });
    expect(m.length).toBe(40);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(m.slice(-10).map((x) => x.loss))).toBeLessThan(mean(m.slice(0, 5).map((x) => x.loss)) - 0.3);
    expect(mean(m.slice(-10).map((x) => x.batchAccuracy))).toBeGreaterThan(0.3); // 10 classes: chance 0.1

    const enc = await loadEncoder(out, {});
    const init = initState(cfg);
    const diff = (name: string) => tf.tidy(() => tf.max(tf.abs(tf.sub(enc.params[name], init.teacher[name]))).dataSync()[0]);
    expect(diff('encoder.blocks.0.residual1.fn.q_proj.weight')).toBeGreaterThan(1e-3);
    expect(diff('patch_embed.weight')).toBeGreaterThan(1e-4);
    expect(diff('decoder.blocks.0.residual1.fn.q_proj.weight')).toBe(0);
    disposeState(init);
  });

  it('stopped midway and run again in its folder, it ends with the weights and losses of an uninterrupted run', async () => {
    const cfg = tinyConfig({ dataDir: path.resolve('data/fmnist-slice'), batchSize: 16, steps: 5, checkpointEvery: 2 });
    const straight = path.join(tmp, 'straight');
    const resumed = path.join(tmp, 'resumed');
    const opts = (out: string) => ({ out, backend: backendInfo(), log: () => {} });
    expect((await runSupervised(cfg, opts(straight))).finished).toBe(true);
    expect((await runSupervised(cfg, { ...opts(resumed), stopAfter: 3 })).finished).toBe(false);
    expect(new RunFolder(resumed).supervisedDone()).toBe(false);
    expect(fs.existsSync(new RunFolder(resumed).supervisedCheckpoint)).toBe(true);
    const stepsRun: number[] = [];
    expect((await runSupervised(cfg, { ...opts(resumed), onStep: (m) => stepsRun.push(m.step) })).finished).toBe(true);
    expect(stepsRun).toEqual([3, 4]); // it continued from the checkpoint, not from step 0
    expect(fs.existsSync(new RunFolder(resumed).supervisedCheckpoint)).toBe(false);
    const trace = (dir: string) =>
      fs
        .readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { step: number; loss: number; batchAccuracy: number; lr: number; elapsedSec: number });
    // The metrics trace of the uninterrupted run (one line a step), on one clock that continues across the stop.
    const metrics = (dir: string) => trace(dir).map(({ step, loss, batchAccuracy, lr }) => [step, loss, batchAccuracy, lr]);
    expect(metrics(resumed)).toEqual(metrics(straight));
    const clock = trace(resumed).map((r) => r.elapsedSec);
    for (let i = 1; i < clock.length; i++) expect(clock[i]).toBeGreaterThanOrEqual(clock[i - 1]);
    const seconds = (dir: string) =>
      (JSON.parse(fs.readFileSync(path.join(dir, 'supervised.json'), 'utf8')) as { seconds: number }).seconds;
    expect(seconds(resumed)).toBe(clock.at(-1));
    const a = await loadEncoder(straight, {});
    const b = await loadEncoder(resumed, {});
    for (const name of ['patch_embed.weight', 'encoder.blocks.0.residual1.fn.q_proj.weight']) {
      expect(Array.from(b.params[name].dataSync())).toEqual(Array.from(a.params[name].dataSync()));
    }
  });
});
