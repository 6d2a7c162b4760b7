/** Probe grids: the attentive probe learns what average pooling cannot; selection on held-out data. */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { attentiveFamily, linearFamily } from '../../src/probes/families.js';
import { argmaxFirst, gridLoss, heldOutSplit, probeGrid, probeLrScale, probeQuality } from '../../src/probes/grid.js';
import { knnClassify } from '../../src/probes/knn-classify.js';
import { trainProbeGrid } from '../../src/probes/train.js';
import { trainProbeGridsOnline } from '../../src/probes/online.js';
import { Rng } from '../../src/runtime/rng.js';
import { EvalConfigSchema, probeSchedule } from '../../src/eval/config.js';
import { nativeMatmulActive } from '../../src/runtime/native.js';

/**
 * Tokens of noise; one marker token (flag +3 in channel 0) carries the class direction u_c and one
 * anti-marker (flag -3) carries -u_c: the average of the tokens is the same for every class.
 */
function markerTask(n: number, seed: number, tokens = 8, dim = 64, classes = 4) {
  const rng = new Rng(seed);
  const dirs = new Rng(99); // the class directions are shared by every split
  const u = Array.from({ length: classes }, () => Array.from({ length: dim }, (_, j) => (j === 0 ? 0 : dirs.normal())));
  const x = new Float32Array(n * tokens * dim);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = rng.randint(0, classes - 1);
    const perm = rng.permutation(tokens);
    for (let t = 0; t < tokens; t++) {
      const row = (i * tokens + t) * dim;
      for (let j = 1; j < dim; j++) x[row + j] = 0.3 * rng.normal();
      if (t === perm[0] || t === perm[1]) {
        const s = t === perm[0] ? 1 : -1;
        x[row] = 3 * s;
        for (let j = 1; j < dim; j++) x[row + j] = s * u[y[i]][j];
      }
    }
  }
  const avg = new Float32Array(n * dim);
  for (let i = 0; i < n; i++)
    for (let t = 0; t < tokens; t++) for (let j = 0; j < dim; j++) avg[i * dim + j] += x[(i * tokens + t) * dim + j] / tokens;
  return { x, avg, y };
}

describe('probe grids', () => {
  it('the attentive probe learns a task that average pooling cannot', async () => {
    const tr = markerTask(600, 1);
    const te = markerTask(200, 2);
    const grid = [
      { lr: 5e-3, wd: 5e-4 },
      { lr: 2e-2, wd: 5e-4 },
    ];
    const opts = { epochs: 25, batchSize: 64, seed: 0, grid };
    const att = await trainProbeGrid(
      attentiveFamily,
      { x: tr.x, rowShape: [8, 64], labels: tr.y },
      { x: te.x, rowShape: [8, 64], labels: te.y },
      4,
      opts,
    );
    const lin = await trainProbeGrid(
      linearFamily,
      { x: tr.avg, rowShape: [64], labels: tr.y },
      { x: te.avg, rowShape: [64], labels: te.y },
      4,
      opts,
    );
    expect(att.testAccuracy).toBeGreaterThan(0.9);
    expect(lin.testAccuracy).toBeLessThan(0.45);
    // Which test rows the chosen probe got right (what the report pairs on): a flag a row, their mean its accuracy.
    for (const r of [att, lin]) {
      expect(r.testCorrect.length).toBe(200);
      expect(r.testCorrect.reduce((a, c) => a + c, 0) / 200).toBeCloseTo(r.testAccuracy, 12);
    }
    expect(tf.memory().numTensors).toBeLessThan(100);
  });

  it("k-NN classification: each test row's verdict is the weighted vote of its 20 most cosine-similar training rows", async () => {
    const rng = new Rng(5);
    const [nTrain, nTest, dim, classes] = [60, 25, 6, 3];
    const train = Float32Array.from({ length: nTrain * dim }, () => rng.normal());
    const test = Float32Array.from({ length: nTest * dim }, () => rng.normal());
    const yTrain = Int32Array.from({ length: nTrain }, () => rng.randint(0, classes - 1));
    const yTest = Int32Array.from({ length: nTest }, () => rng.randint(0, classes - 1));
    const unit = (x: Float32Array, i: number) => {
      const v = Array.from(x.subarray(i * dim, (i + 1) * dim));
      const norm = Math.hypot(...v);
      return v.map((a) => a / norm);
    };
    // Brute force: every cosine, the 20 largest, votes exp(cos / 0.07) per class.
    const expected = Array.from({ length: nTest }, (_, q) => {
      const cos = Array.from({ length: nTrain }, (_, i) => unit(test, q).reduce((a, v, j) => a + v * unit(train, i)[j], 0));
      const nearest = cos
        .map((c, i) => [c, i])
        .sort((a, b) => b[0] - a[0])
        .slice(0, 20);
      const votes = new Array(classes).fill(0);
      for (const [c, i] of nearest) votes[yTrain[i]] += Math.exp(c / 0.07);
      return votes.indexOf(Math.max(...votes)) === yTest[q] ? 1 : 0;
    });
    const r = await knnClassify(train, yTrain, test, yTest, dim, classes);
    expect(Array.from(r.correct)).toEqual(expected);
    expect(r.accuracy).toBeCloseTo(expected.reduce((a: number, c) => a + c, 0) / nTest, 12);
  });

  it('the grid selects the best held-out configuration (first on ties)', async () => {
    const tr = markerTask(300, 3);
    const grid = [
      { lr: 0, wd: 0 },
      { lr: 2e-2, wd: 5e-4 },
      { lr: 0, wd: 0 },
    ];
    const r = await trainProbeGrid(
      attentiveFamily,
      { x: tr.x, rowShape: [8, 64], labels: tr.y },
      { x: tr.x, rowShape: [8, 64], labels: tr.y },
      4,
      { epochs: 25, batchSize: 64, seed: 0, grid },
    );
    expect(r.best).toBe(1);
    expect(r.valAccuracy[1]).toBeGreaterThan(Math.max(r.valAccuracy[0], r.valAccuracy[2]));
    expect(argmaxFirst([0.2, 0.5, 0.5, 0.1])).toBe(1);
  });

  it("the grid's loss and its written-out gradient equal autodiff of the textbook cross-entropy, also for large logits", () => {
    const rng = new Rng(5);
    const [p, b, c] = [3, 17, 7];
    const logits = tf.variable(
      tf.tensor(
        Float32Array.from({ length: p * b * c }, (_, i) => rng.normal() * (i % 5 === 0 ? 40 : 2)),
        [p, b, c],
      ),
    );
    const labels = tf.tensor1d(
      Int32Array.from({ length: b }, () => rng.randint(0, c - 1)),
      'int32',
    );
    const before = tf.memory().numTensors;
    const textbook = () => tf.mean(tf.neg(tf.sum(tf.mul(tf.oneHot(labels, c).toFloat(), tf.logSoftmax(logits)), -1))) as tf.Scalar;
    const [ours, ref] = [() => gridLoss(logits, labels, c), textbook].map((f) => {
      const { value, grads } = tf.variableGrads(f, [logits]);
      const out = { value: value.dataSync()[0], grad: grads[logits.name].dataSync().slice() };
      tf.dispose([value, grads]);
      return out;
    });
    expect(Number.isFinite(ours.value)).toBe(true);
    expect(Math.abs(ours.value - ref.value)).toBeLessThan(1e-5 * Math.abs(ref.value));
    const scale = Math.max(...ref.grad.map(Math.abs));
    ref.grad.forEach((g, i) => expect(Math.abs(ours.grad[i] - g)).toBeLessThan(1e-6 * scale));
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([logits, labels]);
  });

  it('grid, split and schedule follow the spec', () => {
    const g = probeGrid(1024);
    // The reference's 10 lrs x 3 wds (scaled by 1024 / 256), then the three lrs added above them.
    expect(g.length).toBe(39);
    expect(g[0]).toEqual({ lr: 4e-5, wd: 5e-4 });
    expect(g[29].lr).toBeCloseTo(4e-2, 12);
    expect(g.slice(30).map((x) => x.lr)).toEqual([8e-2, 8e-2, 8e-2, 0.2, 0.2, 0.2, 0.4, 0.4, 0.4]);
    const s = heldOutSplit(1000);
    expect(s.train.length).toBe(900);
    expect(new Set([...s.train, ...s.val]).size).toBe(1000);
    expect(probeLrScale(0, 100)).toBe(0);
    expect(probeLrScale(9, 100)).toBe(1);
    expect(probeLrScale(99, 100)).toBeCloseTo(0, 12);
  });

  it('reference mode: one augmented batch per step shared by every source, selection on eval features', async () => {
    const tr = markerTask(600, 1);
    const te = markerTask(200, 2);
    const [tokens, dim] = [8, 64];
    const grid = [
      { lr: 5e-3, wd: 5e-4 },
      { lr: 2e-2, wd: 5e-4 },
    ];
    const seen = new Set<number>();
    let calls = 0;
    const aug = new Rng(5);
    // "Augmentation": the sample's tokens in a new random order, plus noise.
    const batchFeatures = async (idx: Int32Array) => {
      calls++;
      const patch = new Float32Array(idx.length * tokens * dim);
      const avg = new Float32Array(idx.length * dim);
      idx.forEach((r, i) => {
        seen.add(r);
        const order = aug.permutation(tokens);
        for (let t = 0; t < tokens; t++) {
          for (let j = 0; j < dim; j++) {
            const v = tr.x[(r * tokens + order[t]) * dim + j] + 0.05 * aug.normal();
            patch[(i * tokens + t) * dim + j] = v;
            avg[i * dim + j] += v / tokens;
          }
        }
      });
      return { attentive: patch, linear: avg };
    };
    const res = await trainProbeGridsOnline(
      [
        {
          name: 'attentive',
          family: attentiveFamily,
          rowShape: [tokens, dim],
          evalTrain: { x: tr.x, rowShape: [tokens, dim], labels: tr.y },
          test: { x: te.x, rowShape: [tokens, dim], labels: te.y },
        },
        {
          name: 'linear',
          family: linearFamily,
          rowShape: [dim],
          evalTrain: { x: tr.avg, rowShape: [dim], labels: tr.y },
          test: { x: te.avg, rowShape: [dim], labels: te.y },
        },
      ],
      tr.y,
      4,
      { epochs: 25, batchSize: 64, seed: 0, grid },
      batchFeatures,
    );
    expect(res.attentive.testAccuracy).toBeGreaterThan(0.9);
    expect(res.linear.testAccuracy).toBeLessThan(0.45);
    expect(calls).toBe(res.attentive.iterations); // one feature batch per step, shared by both grids
    expect(res.attentive.iterations).toBe(25 * Math.floor(540 / 64));
    const held = new Set(heldOutSplit(600).val);
    expect([...seen].some((r) => held.has(r))).toBe(false); // held-out images are never trained on
    expect(tf.memory().numTensors).toBeLessThan(100);
  });
});

describe('convergence and grid-edge flags', () => {
  /** One-hot class (margin 3) + Gaussian noise of std `noise` (0.5: the Bayes accuracy is ~100%). */
  function oneHot(n: number, seed: number, noise = 0.5, dim = 16, classes = 4) {
    const rng = new Rng(seed);
    const x = new Float32Array(n * dim);
    const y = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      y[i] = rng.randint(0, classes - 1);
      for (let j = 0; j < dim; j++) x[i * dim + j] = (j === y[i] ? 3 : 0) + noise * rng.normal();
    }
    return { x, rowShape: [dim], labels: y };
  }

  /** Bayes accuracy of argmax_j x_j when x = 3 e_y + noise N(0, s^2 I): E_z[Phi(z + 3 / s)^(classes - 1)], by quadrature. */
  function bayesAccuracy(s: number, classes = 4): number {
    const phi = (z: number) => Math.exp((-z * z) / 2) / Math.sqrt(2 * Math.PI);
    // Phi by the Abramowitz-Stegun 7.1.26 erf (error < 1.5e-7).
    const Phi = (x: number) => {
      const t = 1 / (1 + 0.3275911 * Math.abs(x / Math.SQRT2));
      const e =
        1 - t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))) * Math.exp(-(x * x) / 2);
      return x >= 0 ? (1 + e) / 2 : (1 - e) / 2;
    };
    let acc = 0;
    const h = 0.001;
    for (let z = -8; z < 8; z += h) acc += phi(z) * Phi(z + 3 / s) ** (classes - 1) * h;
    return acc;
  }

  // 12,500 steps of 1024 rows: ~65 s on the native path, several minutes on plain wasm; the probe
  // code is the same on both, so the plain-wasm suite skips it (CI runs it in the native suite).
  it('the default schedule reaches the known accuracy with the chosen lr inside the grid, and says it converged', async (ctx) => {
    if (!nativeMatmulActive()) ctx.skip();
    const d = EvalConfigSchema.parse({ task: 'fmnist', checkpoint: 'x' });
    const schedule = { ...probeSchedule(d), batchSize: d.batchSize, seed: 0 };
    expect(schedule).toEqual({ steps: 12500, epochs: 0, batchSize: 1024, seed: 0 }); // eval spec 1.4
    // Noise 1.5: classes overlap, so the lr matters (an easy task ties every lr at 100% and picks the first).
    const r = await trainProbeGrid(linearFamily, oneHot(2000, 1, 1.5), oneHot(1000, 2, 1.5), 4, schedule);
    const q = probeQuality(r);
    expect(r.iterations).toBe(12500);
    expect(Math.abs(r.testAccuracy - bayesAccuracy(1.5))).toBeLessThan(0.03); // 2.5 binomial SE on 1000 test rows
    expect(q.lrAtGridEdge).toBe(false);
    expect(r.halfSchedule?.steps).toBe(6250);
    expect(q.converged).toBe(true);
  }, 600_000); // over 120 s on a loaded machine

  it('an intentionally too short schedule is flagged as not converged', async () => {
    const r = await trainProbeGrid(linearFamily, oneHot(2000, 1), oneHot(1000, 2), 4, { epochs: 0, steps: 3, batchSize: 256, seed: 0 });
    expect(r.iterations).toBe(3);
    expect(r.halfSchedule?.steps).toBe(1);
    expect(probeQuality(r).converged).toBe(false);
  });

  it("successive halving: the grid's best points train again, longer, and select; edges are the full grid's", async () => {
    // lr 0 never learns (chance); the other points do, at different speeds.
    const grid = [
      { lr: 0, wd: 5e-4 },
      { lr: 1e-3, wd: 5e-4 },
      { lr: 2e-2, wd: 5e-4 },
      { lr: 0, wd: 5e-2 },
      { lr: 1e-1, wd: 5e-2 },
    ];
    const calls: [number, number][] = [];
    const r = await trainProbeGrid(linearFamily, oneHot(2000, 1, 1.5), oneHot(1000, 2, 1.5), 4, {
      epochs: 0,
      steps: 20,
      batchSize: 256,
      seed: 0,
      grid,
      refine: { keep: 2, steps: 200 },
      onProgress: (d, t) => calls.push([d, t]),
    });
    const c = r.coarse!;
    expect(c.grid).toEqual(grid);
    expect(c.steps).toBe(20);
    // The two best of the first round by held-out accuracy (ties: first), in grid order.
    const first = argmaxFirst(c.valAccuracy);
    const second = argmaxFirst(c.valAccuracy.map((v, i) => (i === first ? -1 : v)));
    expect(c.kept).toEqual([first, second].sort((a, b) => a - b));
    expect(c.kept.every((i) => grid[i].lr > 0)).toBe(true);
    expect(r.grid).toEqual(c.kept.map((i) => grid[i]));
    expect(r.iterations).toBe(200);
    expect(r.halfSchedule?.steps).toBe(100);
    expect(r.best).toBe(argmaxFirst(r.valAccuracy));
    expect(r.valAccuracy[r.best]).toBeGreaterThan(c.valAccuracy[c.kept[r.best]]); // 10x the steps
    const q = probeQuality(r);
    expect(q.lrAtGridEdge).toBe(r.grid[r.best].lr === 1e-1); // the full grid's top, whatever was kept
    // One progress bar over both rounds: never backwards, ending at its total.
    expect(calls.every(([d, t], i) => t === calls[0][1] && (i === 0 || d >= calls[i - 1][0]))).toBe(true);
    expect(calls.at(-1)![0]).toBe(calls[0][1]);
    expect(tf.memory().numTensors).toBeLessThan(100);
  });

  it('a paired rerun (initAs) of one grid point reproduces it: same initial parameters and batches', async () => {
    const grid = probeGrid(256, [1e-4, 1e-3, 1e-2]);
    const train = oneHot(2000, 1, 1.5);
    const test = oneHot(500, 2, 1.5);
    const opts = { epochs: 0, steps: 60, batchSize: 256, seed: 3, halfScheduleCheck: false };
    const full = await trainProbeGrid(linearFamily, train, test, 4, { ...opts, grid });
    for (const j of [0, 4, grid.length - 1]) {
      const paired = await trainProbeGrid(linearFamily, train, test, 4, {
        ...opts,
        grid: [grid[j]],
        initAs: { points: grid.length, indices: [j] },
      });
      const unpaired = await trainProbeGrid(linearFamily, train, test, 4, { ...opts, grid: [grid[j]] });
      // Within one held-out row (the stacked and the single matmul may round differently).
      expect(Math.abs(paired.valAccuracy[0] - full.valAccuracy[j]), `point ${j}`).toBeLessThanOrEqual(1 / full.heldOut + 1e-12);
      if (j === 4) expect(unpaired.valAccuracy[0]).not.toBe(full.valAccuracy[j]); // a fresh draw (another init and batch order) does not
    }
    expect(tf.memory().numTensors).toBeLessThan(100);
  });

  it('flags a choice at the lr edge (hand-made curve)', () => {
    const grid = probeGrid(256);
    const curve = [
      { step: 8, valAccuracy: grid.map(() => 0.5) },
      { step: 10, valAccuracy: grid.map((_, i) => (i === grid.length - 1 ? 0.9 : 0.5)) },
    ];
    const q = probeQuality({ grid, best: grid.length - 1, curve, heldOut: 10000 });
    expect(q.lrAtGridEdge).toBe(true);
    expect(q.wdAtGridEdge).toBe(true);
    expect(q.lateChange).toBeCloseTo(0.4, 9);
    expect(q.converged).toBe(false);
  });

  it('counts as flat a late change below 0.3 points, or below what the held-out set resolves (one binomial SE)', () => {
    const grid = probeGrid(256);
    const at = (acc: number) => grid.map(() => acc);
    const curve = [
      { step: 80, valAccuracy: at(0.796) },
      { step: 100, valAccuracy: at(0.8) },
    ];
    // 0.4 points: over 6,000 held-out rows one SE is sqrt(0.8 * 0.2 / 6000) = 0.52 points: flat.
    const small = probeQuality({ grid, best: 4, curve, heldOut: 6000 });
    expect(small.plateauTolerance).toBeCloseTo(Math.sqrt(0.16 / 6000), 12);
    expect(small.converged).toBe(true);
    // Over 100,000 rows the SE is 0.13 points, so the 0.3-point floor applies: not flat.
    const large = probeQuality({ grid, best: 4, curve, heldOut: 100000 });
    expect(large.plateauTolerance).toBe(0.003);
    expect(large.converged).toBe(false);
  });

  it('with a half-schedule run, convergence is judged on it, not on the late change of the curve', () => {
    const grid = probeGrid(256);
    const curve = [
      { step: 80, valAccuracy: grid.map(() => 0.78) },
      { step: 100, valAccuracy: grid.map(() => 0.8) },
    ];
    // The cosine anneal adds 2 points over the last 20%, but half the steps reach 79.9: converged.
    const annealed = probeQuality({ grid, best: 4, curve, heldOut: 100000, halfSchedule: { steps: 50, valAccuracy: 0.799 } });
    expect(annealed.lateChange).toBeCloseTo(0.02, 12);
    expect(annealed.halfScheduleGain).toBeCloseTo(0.001, 12);
    expect(annealed.converged).toBe(true);
    // Half the steps 1 point lower: doubling would likely still gain.
    expect(probeQuality({ grid, best: 4, curve, heldOut: 100000, halfSchedule: { steps: 50, valAccuracy: 0.79 } }).converged).toBe(false);
  });
});
