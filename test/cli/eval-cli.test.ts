/**
 * End to end: a tiny checkpoint, `eval` on small slices of fmnist and fmnist-scenes with every
 * probe (checkpoint + both baselines), then `tables`: well-formed CSV and Markdown, every column.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadEncoder } from '../../src/model/io/load.js';
import { trainTinyRun } from '../pretrain/helpers.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'capi-eval-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const SLICE = path.resolve('data/fmnist-slice');

function cli(script: string, ...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', script, ...args], { encoding: 'utf8', timeout: 600_000 });
  if (r.status !== 0) throw new Error(`${script} failed (${r.status}): ${r.stderr.slice(-2000)}`);
  return r;
}

describe('eval + tables end to end', () => {
  it('evaluates a tiny checkpoint and its baselines on fmnist and fmnist-scenes, then builds the tables', async () => {
    const run = path.join(tmp, 'tiny');
    await trainTinyRun(run, { steps: 3 });
    const results = path.join(tmp, 'results');
    const common = [
      '--checkpoint',
      run,
      '--dataDir',
      SLICE,
      '--out',
      results,
      '--cache-dir',
      path.join(tmp, 'cache'),
      '--epochs',
      '2',
      '--backend',
      'wasm',
    ];
    // fmnist on a subset of 200 training and 60 test images.
    const evalFmnist = (...extra: string[]) =>
      cli('src/cli/eval.ts', '--task', 'fmnist', ...common, '--limit-train', '200', '--limit-test', '60', ...extra);
    evalFmnist('--pca-images', '2');
    cli(
      'src/cli/eval.ts',
      '--task',
      'fmnist-scenes',
      ...common,
      '--scenes-train',
      '30',
      '--scenes-test',
      '10',
      '--logreg-max-iter',
      '30',
      '--pca-images',
      '1',
    );
    const models = ['init.json', 'pixel-patches.json', 'pixels.json', 'random-init.json', 'tiny.json'];
    const refs = ['ceiling_oracle_patch_labels.json', 'floor_background_oracle.json', 'floor_majority_label.json'];
    for (const [task, want] of [
      ['fmnist', [...models, 'floor_majority_class.json']],
      ['fmnist-scenes', [...refs, ...models].sort()],
    ] as const) {
      const files = fs
        .readdirSync(path.join(results, task))
        .filter((f) => f.endsWith('.json'))
        .sort();
      expect(files).toEqual([...want].sort());
    }
    const fm = JSON.parse(fs.readFileSync(path.join(results, 'fmnist', 'tiny.json'), 'utf8'));
    for (const m of ['attentive.top1', 'linear(avg).top1', 'linear(pred-pool).top1', 'knn(avg).top1', 'knn(pred-pool).top1']) {
      expect(fm.metrics[m]).toBeGreaterThanOrEqual(0);
      expect(fm.metrics[m]).toBeLessThanOrEqual(100);
    }
    expect(fm.notes['attentive.top1']).toContain('fast mode');
    expect(fm.seed).toBe(0);
    expect(fm.backend.backend).toBe('wasm');
    const seg = JSON.parse(fs.readFileSync(path.join(results, 'fmnist-scenes', 'tiny.json'), 'utf8'));
    for (const m of ['seg.knn.mIoU', 'seg.knn.acc', 'seg.logreg.mIoU', 'seg.logreg.acc']) expect(seg.metrics[m]).toBeGreaterThan(0);
    expect(fs.readdirSync(path.join(results, 'fmnist', 'pca')).filter((f) => f.endsWith('.png')).length).toBe(10);
    // A second eval reuses the cached features.
    const again = evalFmnist('--probes', 'knn', '--no-baselines');
    expect(again.stderr).toContain('features: from cache');
    // Reference-mode probes (augmented batches, one forward per step): their own row.
    evalFmnist('--probes', 'attentive,predictor-pooling', '--probe-mode', 'reference', '--no-baselines');
    const ref = JSON.parse(fs.readFileSync(path.join(results, 'fmnist', 'tiny_reference_probes_.json'), 'utf8'));
    for (const m of ['attentive.top1', 'linear(avg).top1', 'linear(pred-pool).top1']) expect(ref.notes[m]).toContain('reference mode');
    expect(ref.details.attentive.iterations).toBe(2); // 180 training images < one batch of 256: one step per epoch

    // The run exports to the reference layout, and that file loads back with the same weights.
    const pth = path.join(tmp, 'tiny.pth');
    cli('src/cli/export.ts', '--checkpoint', run, '--out', pth);
    const exported = await loadEncoder(pth, { evalOnly: false, imageSize: 28 });
    const own = await loadEncoder(run);
    expect(exported.config).toMatchObject({
      dim: own.config.dim,
      depth: own.config.depth,
      predDepth: own.config.predDepth,
      registers: own.config.registers,
    });
    for (const [name, t] of Object.entries(own.params))
      expect(Array.from(exported.params[name].dataSync()), name).toEqual(Array.from(t.dataSync()));

    cli('src/cli/tables.ts', '--results', results);
    const t2 = fs
      .readFileSync(path.join(results, 'comparison', 'table2-classification.csv'), 'utf8')
      .trim()
      .split('\n');
    expect(t2[0]).toBe('model,fmnist attentive');
    expect(t2.slice(1).map((l) => l.split(',')[0])).toEqual([
      'tiny',
      'tiny (reference probes)',
      'init',
      'pixel-patches',
      'pixels',
      'random-init',
      'floor: majority class',
    ]);
    const t3 = fs.readFileSync(path.join(results, 'comparison', 'table3-segmentation.md'), 'utf8');
    expect(t3).toContain('| model | fmnist-scenes k-NN mIoU | fmnist-scenes linear mIoU |');
    const t5 = fs
      .readFileSync(path.join(results, 'comparison', 'table5-pooling.csv'), 'utf8')
      .trim()
      .split('\n');
    expect(t5[0].split(',').length).toBe(5);
    for (const line of [...t2, ...t5]) expect(line.split(',').every((c) => c.length > 0)).toBe(true);
  });
});
