/**
 * The out-of-core dense protocol equals the in-memory one on data both can hold, with blocks far
 * smaller than the data: a standardisation from streamed statistics equals the two-pass one, the
 * blocked exact k-NN finds the exact k-NN's neighbours and scores, and the logistic regression
 * chooses the same C with a loss within 1e-5 relative. On both kernel sets (native, JS).
 */
import { describe, expect, it } from 'vitest';
import { cpuKernels, jsKernels } from '../../src/runtime/cpu-kernels.js';
import { Rng } from '../../src/runtime/rng.js';
import { LOGREG_C_GRID } from '../../src/segmentation/logreg.js';
import type { OutOfCoreSplits } from '../../src/segmentation/out-of-core.js';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { arrayRows, Preempted, prepareOutOfCore } from '../../src/segmentation/out-of-core.js';
import { outOfCoreKnn, outOfCoreNeighbours } from '../../src/segmentation/out-of-core-knn.js';
import { outOfCoreLogRegTest, outOfCoreLogRegValidation } from '../../src/segmentation/out-of-core-logreg.js';
import type { PatchSet } from '../../src/segmentation/protocol.js';
import {
  prepareSegmentation,
  segKnnGrid,
  segKnnTest,
  segKnnValidation,
  segLogRegTest,
  segLogRegValidation,
} from '../../src/segmentation/protocol.js';
import { fitStandardizer } from '../../src/segmentation/standardize.js';

const D = 12;
const P = 4;

/** Patches whose features carry their class (+ noise and a per-channel offset); pixels mostly of that class, label 0 ignored. */
function patchSet(rng: Rng, images: number, tokens: number): PatchSet {
  const rows = images * tokens;
  const feats = new Float32Array(rows * D);
  const pixels = new Int32Array(rows * P);
  for (let r = 0; r < rows; r++) {
    const c = 1 + Math.floor(rng.uniform() * 4);
    for (let k = 0; k < D; k++) feats[r * D + k] = 3 * k + (k === c ? 1.5 : 0) + rng.normal();
    for (let p = 0; p < P; p++) pixels[r * P + p] = rng.uniform() < 0.1 ? 0 : c;
  }
  return { feats, pixels, rowImage: Int32Array.from({ length: rows }, (_, r) => Math.floor(r / tokens)), images };
}

const labels = { dim: D, pixelsPerPatch: P, numLabels: 5, classes: 5, ignore: [0], background: undefined, standardize: true, seed: 0 };

function setup(kernels = cpuKernels()) {
  const rng = new Rng(11);
  const train = patchSet(rng, 40, 16);
  const test = patchSet(rng, 12, 16);
  const mem = prepareSegmentation(train, test, labels);
  const source = (s: PatchSet) => ({ source: arrayRows(s.feats, D), pixels: s.pixels, rowImage: s.rowImage, images: s.images });
  // Blocks of a few dozen rows, far fewer than the 640 train rows.
  const ooc = prepareOutOfCore(source(train), source(test), {
    ...labels,
    kernels,
    memoryBytes: 2 ** 26,
    maxBlocks: { queryRows: 50, blockRows: 70 },
  });
  return { train, test, mem, ooc };
}

describe.each([
  ['native', cpuKernels()],
  ['js', jsKernels()],
])('out-of-core dense protocol (%s kernels)', (_name, kernels) => {
  it('works in blocks much smaller than the data; a budget too small for its labels and blocks is refused up front', async () => {
    const { ooc, train, test } = setup(kernels);
    expect(ooc.blockRows).toBeLessThan(100);
    expect(ooc.queryRows).toBeLessThan(100);
    const source = (s: PatchSet) => ({ source: arrayRows(s.feats, D), pixels: s.pixels, rowImage: s.rowImage, images: s.images });
    expect(() => prepareOutOfCore(source(train), source(test), { ...labels, kernels, memoryBytes: 100_000 })).toThrow(
      /^--memory-gb 0\.00 is too small for this dense protocol: its patch labels take 0\.00 GiB and blocks of 256 rows 0\.00 GiB more; raise --memory-gb to at least 0\.00, or keep fewer training patches \(--train-patch-stride\)$/,
    );
  });

  it('standardises with streamed statistics equal to the two-pass ones', async () => {
    const { train, ooc } = setup(kernels);
    // The in-memory fit on the 90% split's rows.
    const rows = Int32Array.from(train.rowImage.keys()).filter((r) => ooc.trainSplit[r] === 1);
    const x = new Float32Array(rows.length * D);
    rows.forEach((r, i) => x.set(train.feats.subarray(r * D, (r + 1) * D), i * D));
    const two = fitStandardizer(x, D);
    for (let j = 0; j < D; j++) {
      expect(ooc.shift[j]).toBeCloseTo(two.mean[j], 5);
      expect(1 / ooc.scale[j]).toBeCloseTo(two.std[j], 5);
    }
  });

  it("blocked exact k-NN: the exact search's neighbours, and the same scores for both votes", async () => {
    const { mem, ooc } = setup(kernels);
    const grid = segKnnGrid();
    for (const vote of ['pixel', 'patch'] as const) {
      const a = await segKnnValidation(mem, grid, 'exact', vote);
      const b = outOfCoreKnn(ooc, 'validation', grid, vote).map((r) => r.mIoU);
      b.forEach((v, i) => expect(v).toBeCloseTo(a[i], 9));
      const ta = await segKnnTest(mem, grid[5], 'exact', vote);
      const tb = outOfCoreKnn(ooc, 'test', [grid[5]], vote)[0];
      expect(tb.mIoU).toBeCloseTo(ta.mIoU, 9);
      expect(tb.mIoUSE).toBeCloseTo(ta.mIoUSE!, 9);
    }
    // Neighbour lists: the 30 nearest of every test row, in order (the in-memory search indexes its gathered training rows).
    const res = outOfCoreNeighbours(ooc, 'test', 'l2', 30);
    expect(res.k).toBe(30);
    expect(new Set(res.indices).size).toBeGreaterThan(100);
    for (const r of res.indices) expect(ooc.training[r]).toBe(1); // only training rows (mode not ignored) are neighbours
  });

  it('logistic regression: the same chosen C, and each loss within 1e-5 relative', async () => {
    const { mem, ooc } = setup(kernels);
    const cs = LOGREG_C_GRID.slice(2, 6);
    const a = await segLogRegValidation(mem, cs, 200);
    const b = await outOfCoreLogRegValidation(ooc as OutOfCoreSplits, cs, 200);
    const best = (s: number[]) => s.indexOf(Math.max(...s));
    expect(best(b.scores)).toBe(best(a.scores));
    b.fits.forEach((f, i) => expect(Math.abs(f.loss - a.fits[i].loss) / a.fits[i].loss).toBeLessThan(1e-5));
    const c = cs[best(a.scores)];
    const ta = await segLogRegTest(mem, c, 200);
    const tb = await outOfCoreLogRegTest(ooc, c, 200);
    expect(Math.abs(tb.fit.loss - ta.fit.loss) / ta.fit.loss).toBeLessThan(1e-5);
    expect(tb.mIoU).toBeCloseTo(ta.mIoU, 3);
  });
});

describe('units of work on disk (the tasks of a Slurm evaluation)', () => {
  it('two tasks computing their shares, then a reader of both, give the in-process answers; a preempted task keeps what it did', async () => {
    const { ooc } = setup();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capi-units-'));
    const share = (task: number) => (unit: string) =>
      Number(/\d+$/.exec(unit.replace(/-it\d+$/, ''))?.[0] ?? 0) % 2 === task || unit.startsWith('logreg') === (task === 1);
    const grid = segKnnGrid();
    const cs = LOGREG_C_GRID.slice(2, 5);
    const work = async (task: number) => {
      const s = { ...ooc, units: { dir, mine: share(task) } };
      for (const phase of ['validation', 'test'] as const)
        for (const metric of ['cosine', 'l2'] as const) outOfCoreNeighbours(s, phase, metric, 30);
      await outOfCoreLogRegValidation(s, cs, 100);
    };
    await work(0);
    await work(1);
    const files = fs.readdirSync(dir);
    expect(files.filter((f) => f.startsWith('knn-')).length).toBeGreaterThan(4);
    expect(files.filter((f) => f.startsWith('logreg-')).length).toBe(3);
    // The reader computes nothing (every unit is there) and answers as the in-process protocol does.
    const reader = { ...ooc, units: { dir, mine: () => false } };
    expect(await outCoreScores(reader, grid, cs)).toEqual(await outCoreScores(ooc, grid, cs));
    // Preempted between units: an error that says so; the units written before it stay.
    const fresh = fs.mkdtempSync(path.join(os.tmpdir(), 'capi-units-'));
    let asked = 0;
    const preempting = { ...ooc, units: { dir: fresh, preempted: () => ++asked > 2 } };
    expect(() => outOfCoreNeighbours(preempting, 'test', 'l2', 30)).toThrow(Preempted);
    expect(fs.readdirSync(fresh).length).toBe(2);
    fs.rmSync(dir, { recursive: true });
    fs.rmSync(fresh, { recursive: true });
  });
});

async function outCoreScores(s: OutOfCoreSplits, grid: ReturnType<typeof segKnnGrid>, cs: number[]) {
  return {
    knn: outOfCoreKnn(s, 'validation', grid, 'pixel').map((r) => r.mIoU),
    test: outOfCoreKnn(s, 'test', [grid[3]], 'patch')[0].mIoU,
    logreg: (await outOfCoreLogRegValidation(s, cs, 100)).scores,
  };
}
