/**
 * The evaluation layer: the redesign reproduces the classification numbers the pre-redesign code
 * wrote on a fixed tiny run (test/fixtures/eval-regression.json); only the asked-for classifiers run; a
 * dense split is decoded once per evaluation, not once per model; the refit uses the grid's C.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { SegmentationDataset } from '../../src/data/segmentation-datasets.js';
import type { ClassifierName } from '../../src/eval/classifiers.js';
import type { EvalConfig } from '../../src/eval/config.js';
import type { ProbeDetails } from '../../src/eval/details.js';
import { EvalConfigSchema } from '../../src/eval/config.js';
import { REFINE_KEEP } from '../../src/probes/grid.js';
import type { EvalHooks } from '../../src/eval/evaluate.js';
import { evaluate } from '../../src/eval/evaluate.js';
import { decodeCorrect, decodeReplicates } from '../../src/eval/metrics.js';
import type { EvalResult } from '../../src/eval/result.js';
import { TASKS } from '../../src/eval/tasks.js';
import { nativeMatmulActive } from '../../src/runtime/native.js';
import { readNpy } from '../../src/runtime/npy.js';
import { LOGREG_C_GRID } from '../../src/segmentation/logreg.js';
import { trainTinyRun } from '../pretrain/helpers.js';

const SLICE = path.resolve('data/fmnist-slice');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'capi-evaluate-'));
const run = path.join(tmp, 'run');
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface Expected {
  metrics: Record<string, number>;
  knnValidation?: Record<string, number>;
  logregValidation?: Record<string, number>;
  heldOut?: Record<string, number[]>;
}
const EXPECTED = JSON.parse(fs.readFileSync('test/fixtures/eval-regression.json', 'utf8')).results as Record<string, Expected>;

/** Records every progress label, i.e. every phase that ran. */
function recordingHooks(): EvalHooks & { phases: Set<string> } {
  const phases = new Set<string>();
  const progress = (label: string) => {
    phases.add(label);
    return { update: () => {} };
  };
  return { phases, log: () => {}, progress };
}

const numTensors = () => tf.memory().numTensors;
const config = (o: Record<string, unknown>): EvalConfig =>
  EvalConfigSchema.parse({ checkpoint: run, dataDir: SLICE, cacheDir: '', epochs: 2, batchSize: 256, pcaImages: 0, backend: 'wasm', ...o });

beforeAll(async () => {
  // The same run as the fixture's `pretrain` command (tinyConfig is exactly its flags).
  await trainTinyRun(run, { steps: 3 });
});

/** The fixture was written on plain wasm; the native matmul sums in another order, so numbers match only there. */
const exact = () => !nativeMatmulActive(); // the backend is chosen in beforeAll, after collection

/** The rows of models (the task's floor and ceiling rows left out). */
const models = (rs: EvalResult[]) => rs.filter((r) => r.kind !== 'reference').map((r) => r.model);
const byModel = (rs: EvalResult[]) => Object.fromEntries(rs.map((r) => [`${r.task}/${r.model}`, r]));

describe('evaluate()', () => {
  it('reproduces the pre-redesign classification numbers, fast and reference probes', async (ctx) => {
    if (!exact()) ctx.skip();
    const fast = await evaluate(
      // The pre-redesign code had the paper's 30-point grid.
      config({ task: 'fmnist', limitTrain: 200, limitTest: 60, probes: ['attentive', 'predictor-pooling'], probeLrs: 'paper' }),
      recordingHooks(),
    );
    const ref = await evaluate(
      config({
        task: 'fmnist',
        limitTrain: 200,
        limitTest: 60,
        probes: ['attentive', 'predictor-pooling'],
        probeMode: 'reference',
        probeLrs: 'paper',
        baselines: false,
      }),
      recordingHooks(),
    );
    const got = byModel([...fast, ...ref]);
    for (const key of ['fmnist/run', 'fmnist/random-init', 'fmnist/pixel-patches', 'fmnist/run (reference probes)']) {
      expect(got[key].metrics, key).toEqual(EXPECTED[key].metrics);
      for (const [probe, acc] of Object.entries(EXPECTED[key].heldOut ?? {})) {
        const d = got[key].details[probe as ClassifierName] as ProbeDetails;
        expect(d.valAccuracy, `${key} ${probe}`).toEqual(acc);
        expect(d.curve.at(-1)!.valAccuracy).toEqual(acc); // the last held-out point is what selects
      }
    }
  });

  it('dense: decodes each canvas once for all five models, refits at the grid C, records the feature shares', async () => {
    const load = TASKS['fmnist-scenes'].load;
    let decoded = 0;
    const counting = (d: SegmentationDataset): SegmentationDataset => ({
      ...d,
      load: (i) => {
        decoded++;
        return d.load(i);
      },
    });
    const spy = vi.spyOn(TASKS['fmnist-scenes'], 'load').mockImplementation((o) => {
      const { train, test } = load(o);
      return { train: counting(train), test: counting(test) };
    });
    try {
      const rs = byModel(
        await evaluate(config({ task: 'fmnist-scenes', scenesTrain: 30, scenesTest: 10, logregMaxIter: 30 }), recordingHooks()),
      );
      expect(decoded).toBe(30 + 10);
      for (const key of ['fmnist-scenes/run', 'fmnist-scenes/random-init', 'fmnist-scenes/pixel-patches']) {
        const r = rs[key];
        type Sel<P> = { validation: { point: P; score: number }[]; best: P; refit?: { c: number; iterations: number; gradMax: number } };
        const lr = r.details['seg.logreg'] as Sel<number>;
        // The refit's C is the grid value itself (not a string parsed back), and the fit is recorded.
        expect(LOGREG_C_GRID).toContain(lr.best);
        expect(lr.refit!.c).toBe(lr.best);
        expect(lr.refit!.iterations).toBeGreaterThan(0);
        expect(lr.refit!.iterations).toBeLessThanOrEqual(30);
        expect(Number.isFinite(lr.refit!.gradMax)).toBe(true);
        // The test features' variance shares are recorded as proportions.
        const shares = r.details.featureShares as { image: number; position: number };
        for (const v of [shares.image, shares.position]) expect(v > 0 && v < 1).toBe(true);
      }
    } finally {
      spy.mockRestore();
    }
  });

  it('runs only the asked-for dense classifier', async () => {
    const common = { task: 'fmnist-scenes', scenesTrain: 20, scenesTest: 5, logregMaxIter: 5, baselines: false };
    const knnOnly = recordingHooks();
    const knnRows = await evaluate(config({ ...common, probes: ['knn'] }), knnOnly);
    const k = knnRows.find((r) => r.kind === 'capi')!;
    expect(Object.keys(k.metrics).sort()).toEqual(['seg.knn.acc', 'seg.knn.fgIoU', 'seg.knn.mIoU']);
    // The floors and the ceiling depend on no probe: each holds every dense metric, whichever were asked for.
    const dense = ['seg.knn', 'seg.knn-patch', 'seg.knn-centered', 'seg.logreg'].flatMap((c) =>
      ['acc', 'fgIoU', 'mIoU'].map((m) => `${c}.${m}`),
    );
    const refs = knnRows.filter((r) => r.kind === 'reference');
    expect(refs.length).toBe(3);
    for (const r of refs) expect(Object.keys(r.metrics).sort(), r.model).toEqual(dense.sort());
    expect(refs[0].metrics['seg.logreg.mIoU']).toBe(refs[0].metrics['seg.knn.mIoU']);
    expect([...knnOnly.phases].some((p) => p.includes('k-NN'))).toBe(true);
    expect([...knnOnly.phases].some((p) => p.includes('logistic regression'))).toBe(false);

    // Rows that exist (a resumed study's floors and ceiling) are not written again.
    const logregOnly = { ...recordingHooks(), skipModel: (name: string) => refs.some((r) => r.model === name) };
    const logregRows = await evaluate(config({ ...common, probes: ['logreg'] }), logregOnly);
    expect(logregRows.map((r) => r.kind)).toEqual(['capi']);
    const l = logregRows[0];
    expect(Object.keys(l.metrics).sort()).toEqual(['seg.logreg.acc', 'seg.logreg.fgIoU', 'seg.logreg.mIoU']);
    expect([...logregOnly.phases].some((p) => p.includes('logistic regression'))).toBe(true);
    expect([...logregOnly.phases].some((p) => p.includes('k-NN'))).toBe(false);
  });

  it("the out-of-core engine (rows from the feature store, CPU kernels) gives the in-memory engine's dense results", async () => {
    const common = {
      task: 'fmnist-scenes',
      scenesTrain: 20,
      scenesTest: 6,
      logregMaxIter: 30,
      baselines: false,
      probes: ['knn', 'knn-patch', 'logreg'],
    };
    const cacheDir = path.join(tmp, 'store');
    const mem = (await evaluate(config({ ...common, denseEngine: 'tfjs' }), recordingHooks())).find((r) => r.kind === 'capi')!;
    const ooc = (await evaluate(config({ ...common, denseEngine: 'cpu', cacheDir, memoryGb: 0.05 }), recordingHooks())).find(
      (r) => r.kind === 'capi',
    )!;
    expect(ooc.details.engine).toMatchObject({ name: 'cpu' });
    expect(mem.details.engine).toEqual({ name: 'tfjs' });
    // k-NN: the same neighbours, so the same numbers. Logistic regression at 30 iterations has not converged, and the
    // in-memory engine warm-starts each C from the last where the out-of-core one starts from zeros (one unit a C): the
    // converged fits agree (out-of-core.test.ts: same C, losses within 1e-5); here it only has to run.
    for (const m of ['seg.knn.mIoU', 'seg.knn-patch.mIoU'] as const) {
      expect(ooc.metrics[m]).toBeCloseTo(mem.metrics[m]!, 6);
      // The bootstrap's replicates, recorded for the report's paired gaps: the same resamples on both engines, their std the SE.
      const reps = (r: typeof mem) => decodeReplicates(r.quality![m]!.testReplicates!)!;
      expect(mem.quality![m]!.testReplicates!.images).toBe(6);
      expect(reps(mem).length).toBe(1000);
      reps(ooc).forEach((v, i) => expect(v).toBeCloseTo(reps(mem)[i], 3));
      const mean = reps(mem).reduce((a, b) => a + b, 0) / 1000;
      const std = Math.sqrt(reps(mem).reduce((a, v) => a + (v - mean) ** 2, 0) / 999);
      expect(std).toBeCloseTo(mem.quality![m]!.se!, 4);
    }
    expect(ooc.metrics['seg.logreg.mIoU']).toBeGreaterThan(0);
    const best = (r: typeof mem, name: 'seg.knn' | 'seg.knn-patch') => r.details[name]?.best;
    expect(best(ooc, 'seg.knn')).toEqual(best(mem, 'seg.knn'));
    expect(best(ooc, 'seg.knn-patch')).toEqual(best(mem, 'seg.knn-patch'));
  });

  it('--attentive-refine-steps: the attentive grid, then its best points at the longer schedule; refused in reference mode', async () => {
    const common = { task: 'fmnist', limitTrain: 60, limitTest: 20, probes: ['attentive'], baselines: false };
    const r = (
      await evaluate(config({ ...common, attentiveSteps: 4, attentiveBatchSize: 16, attentiveRefineSteps: 8 }), recordingHooks())
    ).find((x) => x.kind === 'capi')!;
    const d = r.details.attentive as {
      iterations: number;
      grid: unknown[];
      halfSchedule: { steps: number };
      coarse: { grid: unknown[]; steps: number };
    };
    expect(d.coarse.grid.length).toBe(39);
    expect(d.coarse.steps).toBe(4);
    expect(d.grid.length).toBe(REFINE_KEEP);
    expect(d.iterations).toBe(8);
    expect(d.halfSchedule.steps).toBe(4);
    expect(r.notes['attentive.top1']).toContain(`best of 39 at 4 steps, its ${REFINE_KEEP} best again at 8 steps of 16`);
    // Which test images the selected probe got right, recorded for the report's paired comparisons.
    const right = decodeCorrect(r.quality!['attentive.top1']!.testCorrect!)!;
    expect(right.length).toBe(20);
    expect((100 * right.reduce((a, c) => a + c, 0)) / 20).toBeCloseTo(r.metrics['attentive.top1']!, 10);
    const bad = EvalConfigSchema.safeParse({ ...common, checkpoint: run, probeMode: 'reference', attentiveRefineSteps: 8 });
    expect(bad.success).toBe(false);
  });

  it('leaves out the models the caller says exist (a resumed study), building none of them', async () => {
    const hooks = { ...recordingHooks(), skipModel: (name: string) => ['init', 'pixels'].includes(name) };
    const rs = await evaluate(config({ task: 'fmnist', limitTrain: 60, limitTest: 20, probes: ['knn'] }), hooks);
    expect(models(rs)).toEqual(['run', 'random-init', 'pixel-patches']);
    // The floor depends on no probe: with k-NN alone asked for, it holds every classification metric.
    const floor = rs.find((r) => r.kind === 'reference')!;
    expect(Object.keys(floor.metrics).sort()).toEqual(
      ['attentive.top1', 'knn(avg).top1', 'knn(pred-pool).top1', 'linear(avg).top1', 'linear(pred-pool).top1'].sort(),
    );
    expect([...hooks.phases].some((p) => p.startsWith('init ') || p.startsWith('pixels '))).toBe(false);
    // A floor that exists is not written again either.
    const again = await evaluate(config({ task: 'fmnist', limitTrain: 60, limitTest: 20, probes: ['knn'] }), {
      ...recordingHooks(),
      skipModel: (name: string) => name !== 'run',
    });
    expect(again.map((r) => r.model)).toEqual(['run']);
  });

  it("evaluates the baselines from a run's config.json alone once the checkpoint's row exists (a study on another machine)", async () => {
    const record = path.join(tmp, 'record', 'run');
    fs.mkdirSync(record, { recursive: true });
    fs.copyFileSync(path.join(run, 'config.json'), path.join(record, 'config.json'));
    const cfg = { task: 'fmnist', limitTrain: 60, limitTest: 20, probes: ['knn'] };
    const full = await evaluate(config(cfg), recordingHooks());
    const before = numTensors();
    const fromRecord = await evaluate(config({ ...cfg, checkpoint: record }), { ...recordingHooks(), skipModel: (n) => n === 'run' });
    expect(numTensors()).toBe(before);
    expect(models(fromRecord)).toEqual(['init', 'random-init', 'pixel-patches', 'pixels']);
    for (const r of fromRecord) expect(r.metrics).toEqual(full.find((f) => f.model === r.model)?.metrics);
    // Its own row still needs the weights: the record alone cannot give it.
    await expect(evaluate(config({ ...cfg, checkpoint: record, baselines: false }), recordingHooks())).rejects.toThrow(/no teacher/);
  });

  it('--save-splits writes the rows the dense classifiers saw: standardised on the 90% split, modes of their pixels; in-memory engine only', async () => {
    const out = path.join(tmp, 'splits');
    const common = { task: 'fmnist-scenes', scenesTrain: 20, scenesTest: 5, logregMaxIter: 5, baselines: false, probes: ['logreg'] };
    await evaluate(config({ ...common, saveSplits: out, denseEngine: 'tfjs' }), recordingHooks());
    const dir = path.join(out, 'fmnist-scenes', 'run');
    const meta = JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8'));
    const npy = (name: string) => readNpy(path.join(dir, `${name}.npy`));
    const [train, val, all, pixels, image] = ['train_features', 'val_features', 'all_features', 'train_pixels', 'train_image'].map(npy);
    const dim = meta.dim as number;
    expect(train.shape[1]).toBe(dim);
    expect(all.shape[0]).toBe(train.shape[0] + val.shape[0]);
    // 20 canvases: 2 for validation (floor of 10%), 18 for the 90% split, every patch of each.
    expect(new Set(image.data).size).toBe(18);
    expect(train.shape[0] % 18).toBe(0);
    // Standardised with the 90% split's own statistics: each column has mean 0 and variance 1 there.
    for (const j of [0, dim - 1]) {
      const col = Array.from({ length: train.shape[0] }, (_, r) => train.data[r * dim + j]);
      const mean = col.reduce((a, b) => a + b, 0) / col.length;
      expect(Math.abs(mean)).toBeLessThan(1e-4);
      expect(col.reduce((a, b) => a + (b - mean) ** 2, 0) / col.length).toBeCloseTo(1, 3);
    }
    // Each training row's label is the most frequent of its patch's pixel labels (ties: the smallest), ignored ones left out.
    const rows = npy('train_rows').data;
    const modes = npy('train_modes').data;
    const p = pixels.shape[1];
    rows.forEach((r, i) => {
      const counts = new Map<number, number>();
      for (const v of pixels.data.subarray(r * p, (r + 1) * p)) counts.set(v, (counts.get(v) ?? 0) + 1);
      const top = Math.max(...counts.values());
      expect(modes[i]).toBe(Math.min(...[...counts].filter(([, c]) => c === top).map(([v]) => v)));
    });
    expect(modes.every((m) => !meta.ignore.includes(m))).toBe(true);
    await expect(evaluate(config({ ...common, saveSplits: out, denseEngine: 'cpu' }), recordingHooks())).rejects.toThrow(
      /--save-splits writes the in-memory engine's splits: pass --dense-engine tfjs/,
    );
  });
});
