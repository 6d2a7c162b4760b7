/** The run diagnostics against hand-computed values, and their records in a real run. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import {
  meanRowCosine,
  mutualInformation,
  paperTeacherMomenta,
  positionClusterMI,
  teacherInitShare,
  teacherMeanAge,
} from '../../src/pretrain/diagnostics.js';
import { peakMomentumFor, schedulesAt } from '../../src/pretrain/step.js';
import { Rng } from '../../src/runtime/rng.js';
import { tinyConfig, trainTinyRun } from './helpers.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'capi-diag-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('diagnostics', () => {
  it("teacher mean age: hand-computed values, the constant-momentum limit, and the paper's schedules", () => {
    // Momenta 1, 0.5, 0.5: the step-1 student has weight 0.5 * 0.5 and age 1, the step-2 student 0.5 and age 0.
    expect(teacherMeanAge([1, 0.5, 0.5])).toBeCloseTo(0.25 / 0.75, 12);
    expect(teacherMeanAge([1])).toBeNaN(); // nothing of a student yet
    // A constant momentum m over a long run: ages are geometric, mean m / (1 - m).
    expect(teacherMeanAge(new Array(20000).fill(0.99))).toBeCloseTo(99, 6);
    // The paper's teachers (method spec 8.2: start 1, the peak, final 1, 10% warmup, truncation 0.8).
    const momenta = paperTeacherMomenta(0.999, 500_000);
    expect(momenta[0]).toBe(1);
    expect(momenta.reduce((a, b) => Math.min(a, b), 1)).toBeCloseTo(0.999, 6);
    expect(teacherMeanAge(momenta) / 500_000).toBeCloseTo(0.0182, 4);
    expect(teacherMeanAge(paperTeacherMomenta(0.996, 100_000)) / 100_000).toBeCloseTo(0.0222, 4);
  });

  it('--teacher-mean-age-share: the solved peak gives that mean age within 1% of the run', () => {
    for (const [total, share] of [
      [7030, 0.02],
      [703, 0.05],
    ]) {
      const cfg = tinyConfig({ teacherMeanAgeShare: share });
      const peak = peakMomentumFor(cfg, total, { meanAgeShare: share });
      const c = { ...cfg, train: { ...cfg.train, teacherMomentum: peak } };
      const age = teacherMeanAge(Array.from({ length: total }, (_, t) => schedulesAt(c, total, t).momentum));
      expect(Math.abs(age / total - share)).toBeLessThan(0.01 * share);
    }
  });

  it('teacher init share is the product of the momenta', () => {
    expect(teacherInitShare([0.9, 0.5, 1])).toBeCloseTo(0.45, 12);
    expect(teacherInitShare([])).toBe(1);
  });

  it('mutual information of small contingency tables (nats), with the Miller-Madow term', () => {
    // Position determines the cluster: MI = ln 2; 2 + 2 - 2 nonzero rows/cols/cells: bias term (2+2-2-1)/(2*4).
    expect(mutualInformation([2, 0, 0, 2], 2, 2).mi).toBeCloseTo(Math.LN2, 12);
    expect(mutualInformation([2, 0, 0, 2], 2, 2).corrected).toBeCloseTo(Math.LN2 + 1 / 8, 12);
    expect(mutualInformation([1, 1, 1, 1], 2, 2).mi).toBeCloseTo(0, 12);
    // p = [[1/2, 1/4], [0, 1/4]]: sum p log(p / (px py)) by hand.
    const hand = 0.5 * Math.log(0.5 / (0.75 * 0.5)) + 0.25 * Math.log(0.25 / (0.75 * 0.5)) + 0.25 * Math.log(0.25 / (0.25 * 0.5));
    expect(mutualInformation([2, 1, 0, 1], 2, 2).mi).toBeCloseTo(hand, 12);
    // Position-major assignments [positions x images]: position 0 -> cluster 0, position 1 -> cluster 1.
    expect(positionClusterMI(Int32Array.from([0, 0, 1, 1]), 2, 3).mi).toBeCloseTo(Math.LN2, 12);
    expect(positionClusterMI(Int32Array.from([0, 1, 0, 1]), 2, 3).mi).toBeCloseTo(0, 12);
  });

  it("position-cluster MI's shuffled level: the plug-in's where position and cluster are independent (Miller-Madow is far off there), far below it where position decides, above it where positions are balanced", () => {
    // The training step's regime: 49 positions, 256 clusters, 256 images: most cells hold 0-3 counts.
    const [positions, clusters, images] = [49, 256, 256];
    const draw = new Rng(7);
    // Clusters drawn independently of the position: uniformly, and skewed (cluster j with weight 1 / (j + 1)).
    const weights = Array.from({ length: clusters }, (_, j) => 1 / (j + 1));
    const cum = weights.map((_, j) => weights.slice(0, j + 1).reduce((x, y) => x + y, 0) / weights.reduce((x, y) => x + y, 0));
    const uniform = Int32Array.from({ length: positions * images }, () => draw.randint(0, clusters));
    const skewed = Int32Array.from({ length: positions * images }, () => {
      const u = draw.uniform();
      return Math.min(
        clusters - 1,
        cum.findIndex((c) => c >= u),
      );
    });
    for (const independent of [uniform, skewed]) {
      const r = positionClusterMI(independent, positions, clusters, new Rng(1));
      expect(r.mi).toBeGreaterThan(0.2); // the plug-in's bias alone
      expect(Math.abs(r.mi - r.shuffled!)).toBeLessThan(0.01);
      expect(Math.abs(r.corrected)).toBeGreaterThan(0.05);
    }
    const a = positionClusterMI(uniform, positions, clusters, new Rng(1));
    // Position p -> cluster p: MI = ln 49 exactly; the shuffled table's plug-in MI stays at its bias.
    const decided = Int32Array.from({ length: positions * images }, (_, i) => Math.floor(i / images));
    const b = positionClusterMI(decided, positions, clusters, new Rng(1));
    expect(b.mi).toBeCloseTo(Math.log(positions), 12);
    expect(b.mi - b.shuffled!).toBeGreaterThan(Math.log(positions) - 0.15);
    // Each position's clusters balanced (position p of image i -> cluster (p + i) mod 256): no MI at
    // all, and the plug-in 0, below the shuffled level (what position-wise Sinkhorn-Knopp does).
    const balanced = Int32Array.from({ length: positions * images }, (_, i) => (Math.floor(i / images) + (i % images)) % clusters);
    const c = positionClusterMI(balanced, positions, clusters, new Rng(1));
    expect(c.mi).toBeCloseTo(0, 12);
    expect(c.shuffled!).toBeGreaterThan(0.2);
    // A pure function of the rng's seed; without an rng, no shuffles.
    expect(positionClusterMI(uniform, positions, clusters, new Rng(1)).shuffled).toBe(a.shuffled);
    expect(positionClusterMI(uniform, positions, clusters).shuffled).toBeUndefined();
  });

  it('mean row cosine', async () => {
    const a = tf.tensor2d([
      [1, 0],
      [1, 1],
    ]);
    expect(await meanRowCosine(a, a)).toBeCloseTo(1, 6);
    expect(await meanRowCosine(a, tf.neg(a))).toBeCloseTo(-1, 6);
    expect(
      await meanRowCosine(
        a,
        tf.tensor2d([
          [0, 1],
          [1, 1],
        ]),
      ),
    ).toBeCloseTo(0.5, 6);
  });

  it('a run records them per step, consistently with its momenta', async () => {
    await trainTinyRun(path.join(tmp, 'run'), { batchSize: 16, steps: 6 });
    const recs = fs
      .readFileSync(path.join(tmp, 'run', 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    let share = 1;
    for (const [i, m] of recs.entries()) {
      share *= m.momentum;
      expect(m.teacherInitShare).toBeCloseTo(share, 12);
      const age = teacherMeanAge(recs.slice(0, i + 1).map((r) => r.momentum));
      if (Number.isFinite(age)) expect(m.teacherMeanAge).toBeCloseTo(age, 9);
      else expect(m.teacherMeanAge).toBeNull(); // JSON has no NaN
      expect(m.prototypeCosineToInit).toBeLessThanOrEqual(1 + 1e-6);
      expect(m.positionClusterMI).toBeGreaterThanOrEqual(0);
      expect(m.positionClusterMI).toBeLessThanOrEqual(Math.log(49) + 1e-9);
      expect(m.positionClusterMIShuffled).toBeGreaterThanOrEqual(0);
      expect(m.positionClusterMIShuffled).toBeLessThanOrEqual(Math.log(49) + 1e-9);
    }
    expect(recs[0].prototypeCosineToInit).toBeGreaterThan(0.99); // one clustering step from init
  });

  it('--teacher-init-share-target: the solved momentum leaves exactly that share of the init at the end, and is recorded', async () => {
    const out = path.join(tmp, 'share');
    await trainTinyRun(out, { batchSize: 16, steps: 12, teacherInitShareTarget: 0.05 });
    const recs = fs
      .readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(recs.at(-1).teacherInitShare).toBeCloseTo(0.05, 6);
    const saved = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
    expect(saved.train.teacherInitShareTarget).toBe(0.05);
    expect(saved.train.teacherMomentum).toBeLessThan(1 - saved.train.lr); // far lower than the spec's 1 - lr for 12 steps
  });
});
