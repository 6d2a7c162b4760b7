/** The study report's statistics: seed aggregation with its standard error, claim verdicts, diagnostics means, curve rows. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { EvalResult } from '../../src/eval/result.js';
import type { MetricsLine } from '../../src/pretrain/run-folder.js';
import { curveRows } from '../../src/report/curves.js';
import { buildClaims, discussion, fmtGap, predictionFitText, verdictCounts } from '../../src/report/claims.js';
import { gridEdgeNotes } from '../../src/report/grid-notes.js';
import type { Verdict } from '../../src/report/statistics.js';
import { aggregate, aggregateCell, gapSe, lateMean, predictorGap, trainingSeconds, verdict } from '../../src/report/statistics.js';
import { binomialSE, encodeCorrect, encodeReplicates } from '../../src/eval/metrics.js';
import { machinesLine, writeStudyReport } from '../../src/report/study.js';
import { diagnosticsTable } from '../../src/report/study-tables.js';
import type { StudyReportInput } from '../../src/report/study-input.js';
import { evalRowName } from '../../src/study/plans.js';
import { evalResult, planEvaluationsOf } from './helpers.js';

const result = (model: string, task: string, metrics: EvalResult['metrics'], se: number): EvalResult =>
  evalResult({
    task,
    model,
    kind: model.includes('-s') ? 'capi' : 'baseline',
    metrics,
    quality: Object.fromEntries(Object.keys(metrics).map((k) => [k, { se, atGridEdge: false, converged: true }])),
  });

/** The sample std: a bootstrap's SE from its replicates. */
const sampleStd = (xs: number[]) => {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
};
const CAPI_ARM = { name: 'capi', factor: 'default', variant: '', paper: { ade: 29.1, in1k: 81.4 } };
const REGISTERS_ARM = { name: 'registers-0', factor: 'registers', variant: '0', paper: { ade: 25.9, in1k: 79.3 } };

/** A report input with the default arm only, no commits, and the plan evaluations of its results unless given. */
const studyInput = (parts: Pick<StudyReportInput, 'runs' | 'results'> & Partial<StudyReportInput>): StudyReportInput => ({
  plan: { name: 't', summary: '', estimate: '' },
  arms: [CAPI_ARM],
  commits: [],
  started: '',
  evalSettings: planEvaluationsOf(parts.runs, parts.results),
  ...parts,
});

/** Writes the report of `input` to a temporary folder and returns the CSV rows of its table `name`. */
async function tableRows(input: StudyReportInput, name: string): Promise<string[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capi-report-'));
  try {
    await writeStudyReport(dir, input);
    return fs
      .readFileSync(path.join(dir, 'tables', `${name}.csv`), 'utf8')
      .trim()
      .split('\n');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('study statistics', () => {
  it('aggregate: mean, sample std, n and SE = sqrt(std^2 / n + test SE^2)', () => {
    const rs = [60, 62, 67].map((v, i) => result(`fmnist-capi-s${i}`, 'fmnist', { 'linear(avg).top1': v }, 0.5));
    const a = aggregate(rs, 'linear(avg).top1')!;
    expect(a.mean).toBeCloseTo(63, 12);
    const std = Math.sqrt((9 + 1 + 16) / 2);
    expect(a.std).toBeCloseTo(std, 12);
    expect(a.n).toBe(3);
    expect(a.se).toBeCloseTo(Math.sqrt(std ** 2 / 3 + 0.25), 12);
    expect(aggregateCell(a)).toBe(`63.0 ± ${std.toFixed(1)} (n=3) [SE ${a.se.toFixed(1)}]`);
    const one = aggregate(rs.slice(0, 1), 'linear(avg).top1')!;
    expect([one.std, one.se, one.n]).toEqual([0, 0.5, 1]);
    expect(aggregate(rs, 'attentive.top1')).toBeUndefined();
  });

  it('gap SE: paired on the same test images (the per-image difference) and over the same runs (the per-run difference)', () => {
    const withBits = (model: string, value: number, flags: number[]) =>
      evalResult({
        task: 'fmnist',
        model,
        kind: 'capi',
        metrics: { 'linear(avg).top1': value },
        quality: { 'linear(avg).top1': { se: binomialSE(value / 100, flags.length), testCorrect: encodeCorrect(Uint8Array.from(flags)) } },
      });
    // 8 images, 5 right on each side; they disagree on two (+1 and -1): differences [0, 1, 0, -1, 0, 0, 0, 0].
    const a = aggregate([withBits('a', 62.5, [1, 1, 0, 0, 1, 1, 1, 0])], 'linear(avg).top1')!;
    const b = aggregate([withBits('b', 62.5, [1, 0, 0, 1, 1, 1, 1, 0])], 'linear(avg).top1')!;
    // Paired: var of the differences (2/8) over 8 images, in points: sqrt(0.25 / 8) * 100 = 17.7.
    expect(gapSe(a, b)).toEqual({ se: 100 * Math.sqrt(0.25 / 8), paired: 'images' });
    // Unpaired (no per-image record on one side): the binomial SEs added, sqrt(2 * 0.625 * 0.375 / 8) * 100 = 24.2.
    const unrecorded = aggregate([result('c', 'fmnist', { 'linear(avg).top1': 62.5 }, binomialSE(0.625, 8))], 'linear(avg).top1')!;
    expect(gapSe(a, unrecorded).se).toBeCloseTo(100 * Math.sqrt((2 * 0.625 * 0.375) / 8), 12);
    expect(gapSe(a, unrecorded).paired).toBeUndefined();
    // Two runs a side: the per-run differences (1 and 3, var 2) replace both sides' seed terms; one run alone pairs nothing.
    const two = (v: number[]) =>
      aggregate(
        [result('s0', 'fmnist', { 'linear(avg).top1': v[0] }, 0.3), result('s1', 'fmnist', { 'linear(avg).top1': v[1] }, 0.3)],
        'linear(avg).top1',
      )!;
    const [t, s] = [two([70, 75]), two([69, 72])];
    expect(gapSe(t, s, [1, 3])).toEqual({ se: Math.sqrt(2 / 2 + 0.09 + 0.09), paired: 'runs' });
    expect(gapSe(t, s).se).toBeCloseTo(Math.sqrt(12.5 / 2 + 4.5 / 2 + 0.18), 12);
    expect(gapSe(a, b, [0]).paired).toBe('images');
  });

  it('gap SE on mIoU: paired replicate by replicate when both sides recorded the bootstrap (the same resamples of the test images)', () => {
    const withReplicates = (model: string, reps: number[]) =>
      evalResult({
        task: 'scenes',
        model,
        kind: 'capi',
        metrics: { 'seg.knn.mIoU': reps.reduce((x, y) => x + y, 0) / reps.length },
        quality: { 'seg.knn.mIoU': { se: sampleStd(reps), testReplicates: encodeReplicates(reps, 20) } },
      });
    // Replicates (float32-exact) whose differences are [1, 1, 1, 3]: mean 1.5, sample var 1.
    const a = aggregate([withReplicates('a', [30, 34, 28, 33])], 'seg.knn.mIoU')!;
    const b = aggregate([withReplicates('b', [29, 33, 27, 30])], 'seg.knn.mIoU')!;
    expect(Array.from(a.replicates!)).toEqual([30, 34, 28, 33]);
    expect(gapSe(a, b).se).toBeCloseTo(1, 12);
    expect(gapSe(a, b).paired).toBe('images');
    // Unpaired, the two bootstrap SEs (2.75 and 2.5, the replicates' sample stds) add as if independent.
    const unrecorded = aggregate([result('c', 'scenes', { 'seg.knn.mIoU': 29.75 }, sampleStd([29, 33, 27, 30]))], 'seg.knn.mIoU')!;
    expect(gapSe(a, unrecorded).se).toBeCloseTo(Math.sqrt(sampleStd([30, 34, 28, 33]) ** 2 + sampleStd([29, 33, 27, 30]) ** 2), 12);
    expect(gapSe(a, unrecorded).paired).toBeUndefined();
    // Two seeds a side: each row's replicate is its seeds' mean; another test-set size pairs nothing.
    const a2 = aggregate([withReplicates('a', [30, 34, 28, 33]), withReplicates('a1', [32, 30, 30, 31])], 'seg.knn.mIoU')!;
    expect(Array.from(a2.replicates!)).toEqual([31, 32, 29, 32]);
    const other = evalResult({
      task: 'scenes',
      model: 'd',
      kind: 'capi',
      metrics: { 'seg.knn.mIoU': 30 },
      quality: { 'seg.knn.mIoU': { se: 1, testReplicates: encodeReplicates([30, 31, 29, 30], 21) } },
    });
    expect(aggregate([withReplicates('a', [30, 34, 28, 33]), other], 'seg.knn.mIoU')!.replicates).toBeUndefined();
  });

  it('teacher >= student and the two poolings pair each run with itself, on the same test images: the gap marked §', () => {
    const flags = (right: number) => encodeCorrect(Uint8Array.from({ length: 10 }, (_, j) => (j < right ? 1 : 0)));
    const row = (model: string, avg: number, pp: number) =>
      evalResult({
        task: 'fmnist',
        model,
        kind: 'capi',
        metrics: { 'linear(avg).top1': 10 * avg, 'linear(pred-pool).top1': 10 * pp },
        quality: {
          'linear(avg).top1': { se: binomialSE(avg / 10, 10), testCorrect: flags(avg) },
          'linear(pred-pool).top1': { se: binomialSE(pp / 10, 10), testCorrect: flags(pp) },
        },
      });
    const runs = [0, 1].map((seed) => ({ id: `fmnist-capi-s${seed}`, family: 'fmnist', arm: 'capi', seed, metrics: [] }));
    const input = studyInput({
      runs,
      results: [
        row('fmnist-capi-s0', 7, 6),
        row('fmnist-capi-s1', 9, 6),
        row('fmnist-capi-s0-student', 6, 6),
        row('fmnist-capi-s1-student', 7, 6),
      ],
    });
    const claims = buildClaims(input);
    const ts = claims.find((c) => c.claim === 'teacher >= student (fmnist linear)')!;
    // Per-run differences 10 and 20 points (var 50). Per image, the teachers' mean minus the students': images 0-5 both
    // right (0); 6: teachers 1, students 0.5; 7 and 8: 0.5 and 0; 9: none (0). [0 x6, 0.5, 0.5, 0.5, 0]: mean 0.15, var 0.0525.
    const pairedImages = (10_000 * ((3 * 0.25) / 10 - 0.15 ** 2)) / 10;
    expect(ts.gap).toBeCloseTo(15, 12);
    expect(ts.se).toBeCloseTo(Math.sqrt(50 / 2 + pairedImages), 12);
    expect(ts.paired).toBe('images and runs');
    expect(fmtGap(ts)).toBe(`+15.0 ± ${ts.se!.toFixed(1)}§`);
    const pool = claims.find((c) => c.claim === 'predictor pooling > average pooling (fmnist linear)')!;
    expect(pool.paired).toBe('images and runs');
    expect(pool.gap).toBeCloseTo(-20, 12);
  });

  it('verdicts: > needs the gap beyond 2 SE; >= holds while A is ahead, is not resolved with B ahead within 2 SE', () => {
    expect(verdict(2.1, 1, '>')).toBe('holds');
    expect(verdict(1.9, 1, '>')).toBe('not resolved (within 2 SE)');
    expect(verdict(-2.1, 1, '>')).toBe('does not hold (reversed beyond 2 SE)');
    expect(verdict(1.9, 1, '>=')).toBe('holds (within 2 SE)');
    expect(verdict(0, 1, '>=')).toBe('holds (within 2 SE)');
    expect(verdict(-1.9, 1, '>=')).toBe('not resolved (within 2 SE)');
    expect(verdict(-2.1, 1, '>=')).toBe('does not hold (reversed beyond 2 SE)');
    expect(verdict(undefined, undefined, '>')).toBe('not testable here');
    const claim = (v: Verdict) => ({ claim: '', paper: '', a: undefined, b: undefined, verdict: v, evidence: '' });
    const claims = [claim('does not hold (reversed beyond 2 SE)'), claim('holds'), claim('holds'), claim('not resolved (within 2 SE)')];
    expect(verdictCounts(claims)).toBe('2 holds, 1 not resolved (within 2 SE), 1 does not hold (reversed beyond 2 SE)');
  });

  it('claims compare the default arm over its seeds with a baseline (pixels: its flattened image), the combined SE from both rows', () => {
    const input = studyInput({
      arms: [CAPI_ARM, REGISTERS_ARM],
      runs: [
        { id: 'fmnist-capi-s0', family: 'fmnist', arm: 'capi', seed: 0, metrics: [] },
        { id: 'fmnist-capi-s1', family: 'fmnist', arm: 'capi', seed: 1, metrics: [] },
        { id: 'fmnist-registers-0-s0', family: 'fmnist', arm: 'registers-0', seed: 0, metrics: [] },
      ],
      results: [
        result('fmnist-capi-s0', 'fmnist', { 'linear(avg).top1': 70 }, 0.4),
        result('fmnist-capi-s1', 'fmnist', { 'linear(avg).top1': 72 }, 0.4),
        // pixels: the flattened image in its pred-pool slot is what stands for its linear probe.
        result('pixels', 'fmnist', { 'linear(avg).top1': 40, 'linear(pred-pool).top1': 60 }, 0.5),
        result('fmnist-registers-0-s0', 'fmnist', { 'linear(avg).top1': 70.5 }, 0.4),
      ],
    });
    const claims = buildClaims(input);
    const pixels = claims.find((c) => c.claim === 'CAPI > pixels (fmnist linear)')!;
    const capiSe = Math.sqrt(2 / 2 + 0.16); // std of (70, 72) is sqrt(2)
    expect(pixels.gap).toBeCloseTo(11, 12);
    expect(pixels.se).toBeCloseTo(Math.sqrt(capiSe ** 2 + 0.25), 12);
    expect(pixels.verdict).toBe('holds');
    const reg = claims.find((c) => c.claim.startsWith('registers help'))!;
    expect(reg.gap).toBeCloseTo(0.5, 12);
    // The one-seed arm borrows the default arm's seed std: its SE^2 = 0.4^2 + 2.
    expect(reg.b!.se).toBeCloseTo(Math.sqrt(0.16 + 2), 12);
    expect(reg.se).toBeCloseTo(Math.sqrt(capiSe ** 2 + 0.16 + 2), 12);
    expect(aggregateCell(reg.b)).toBe(`70.5 [SE ${Math.sqrt(2.16).toFixed(1)}‡]`);
    expect(reg.verdict).toBe('not resolved (within 2 SE)');
    expect(reg.paper).toBe('ADE 3.2 / IN-1k 2.1 points');
  });

  it('a baseline that the supervised ceiling does not beat by 2 SE is called out of reach in the evidence', () => {
    const input = studyInput({
      runs: [
        { id: 'fmnist-capi-s0', family: 'fmnist', arm: 'capi', seed: 0, metrics: [] },
        { id: 'fmnist-supervised-s0', family: 'fmnist', arm: 'supervised', seed: 0, metrics: [] },
      ],
      results: [
        result('fmnist-capi-s0', 'fmnist', { 'knn(avg).top1': 72 }, 0.4),
        result('fmnist-supervised-s0', 'fmnist', { 'knn(avg).top1': 85.1 }, 0.4),
        result('pixels', 'fmnist', { 'knn(pred-pool).top1': 85.2 }, 0.4),
        result('init', 'fmnist', { 'knn(avg).top1': 66 }, 0.4),
      ],
    });
    const evidence = (b: string) => buildClaims(input).find((c) => c.claim === `CAPI > ${b} (fmnist k-NN)`)!.evidence;
    expect(evidence('pixels')).toContain('B is within 2 SE of it or above it (-0.1 ± 0.6)');
    expect(evidence('init')).toContain('it beats B by 19.1 ± 0.6');
  });

  it("the pixels k-NN claim's evidence: the same vector under the linear probe, the same pixels without their layout under k-NN", () => {
    const input = studyInput({
      runs: [{ id: 'c-capi-s0', family: 'c', arm: 'capi', seed: 0, metrics: [] }],
      results: [
        result('c-capi-s0', 'fmnist-canvas', { 'knn(avg).top1': 50.6, 'linear(avg).top1': 60.5 }, 0.5),
        // pixels: the whole image in its pred-pool slot (linear 21.9, k-NN 61.5), its patches' average in the avg slot.
        result('pixels', 'fmnist-canvas', { 'knn(pred-pool).top1': 61.5, 'linear(pred-pool).top1': 21.9, 'knn(avg).top1': 35.6 }, 0.5),
        result('pixel-patches', 'fmnist-canvas', { 'knn(avg).top1': 35.4 }, 0.5),
      ],
    });
    const claims = buildClaims(input);
    const knn = claims.find((c) => c.claim === 'CAPI > pixels (canvas k-NN)')!;
    expect(knn.gap).toBeCloseTo(-10.9, 12);
    expect(knn.evidence).toBe(
      "B's vector (the whole image) under the linear probe: 21.9 [SE 0.5]; the same pixels without their layout (pixel-patches, average-pooled) under k-NN: 35.4 [SE 0.5]",
    );
    // Only the pixels k-NN claim carries it.
    expect(claims.find((c) => c.claim === 'CAPI > pixels (canvas linear)')!.evidence).toBe('');
  });

  it("Table 2: the pixels row's linear and k-NN cells are its flattened image (pred-pool slot), the others' average pooling", async () => {
    const input = studyInput({
      runs: [{ id: 'fmnist-capi-s0', family: 'fmnist', arm: 'capi', seed: 0, metrics: [] }],
      results: [
        result('fmnist-capi-s0', 'fmnist', { 'linear(avg).top1': 70, 'linear(pred-pool).top1': 71, 'knn(avg).top1': 65 }, 0.4),
        result(
          'pixels',
          'fmnist',
          { 'linear(avg).top1': 40, 'linear(pred-pool).top1': 84, 'knn(avg).top1': 41, 'knn(pred-pool).top1': 85 },
          0.4,
        ),
      ],
    });
    const rows = await tableRows(input, 'table2-classification');
    expect(rows[0]).toBe('model,fmnist linear,fmnist k-NN');
    expect(rows.find((r) => r.startsWith('CAPI (teacher)'))).toBe('CAPI (teacher),70.0 [SE 0.4],65.0 [SE 0.4]');
    expect(rows.find((r) => r.startsWith('baseline: pixels'))).toBe('baseline: pixels,84.0 [SE 0.4],85.0 [SE 0.4]');
  });

  it("an ablation claim's evidence holds the diagnostics of its own family's runs only, said once in the discussion", () => {
    const metrics = Array.from({ length: 10 }, (_, step) => ({
      step,
      capiLoss: 4,
      teacherInitShare: 0.01,
      clustersUsed: 8,
      positionClusterMI: 0.3,
      positionClusterMICorrected: -0.1,
    }));
    const run = (id: string, family: string, arm: string) => ({ id, family, arm, seed: 0, metrics });
    const input = studyInput({
      arms: [CAPI_ARM, REGISTERS_ARM],
      runs: [
        run('fmnist-capi-s0', 'fmnist', 'capi'),
        run('scenes-capi-s0', 'scenes', 'capi'),
        run('fmnist-registers-0-s0', 'fmnist', 'registers-0'),
        run('scenes-registers-0-s0', 'scenes', 'registers-0'),
      ],
      results: [
        result('fmnist-capi-s0', 'fmnist', { 'linear(avg).top1': 70 }, 0.4),
        result('fmnist-registers-0-s0', 'fmnist', { 'linear(avg).top1': 69 }, 0.4),
        result('scenes-capi-s0', 'fmnist-scenes', { 'seg.knn.mIoU': 26 }, 0.3),
        result('scenes-registers-0-s0', 'fmnist-scenes', { 'seg.knn.mIoU': 25 }, 0.3),
      ],
    });
    const claims = buildClaims(input);
    const claim = claims.find((c) => c.claim === 'registers help (default > 0 registers) (fmnist linear)')!;
    const [def, arm] = claim.shared!;
    expect(def).toMatch(/^default: fmnist-capi-s0: 10 steps, CAPI loss 4.000/);
    expect(arm).toMatch(/^registers-0: fmnist-registers-0-s0: 10 steps/);
    expect(claim.shared!.join()).not.toContain('scenes-');
    // A Miller-Madow estimate below 0 (it over-corrects where the MI is ~0) is reported as 0.
    expect(def).toContain('position-cluster MI 0.300 nats (MM 0.000)');
    // 2 SE = 2 sqrt(0.4^2 + 0.4^2) = 1.13 points: the paper's gaps 3.2 (ADE) and 2.1 (IN-1k) both exceed it.
    expect(claim.evidence).toBe("2 combined SE here is 1.1 points: an effect the size of the paper's would be resolved");
    // Open claims on the same runs, then on another arm beside the same default: each side's runs are described once.
    const other = { ...claim, claim: 'another arm', shared: [def, 'block: its runs'] };
    const text = discussion([claim, { ...claim, claim: 'another claim on the same runs' }, other]);
    expect(text.split(def).length - 1).toBe(1);
    expect(text).toContain('- Runs behind the claims below: default: as above; block: its runs.');
  });

  it("each family's claims cite their own runs' length and monitor; teacher >= student pairs each run's teacher with its student", () => {
    const run = (id: string, family: string, monitor: boolean) => ({
      id,
      family,
      arm: 'capi',
      seed: Number(id.at(-1)),
      metrics: Array.from({ length: family === 'fmnist' ? 20 : 30 }, (_, step) => ({
        step,
        momentum: 0.9,
        ...(monitor && step === 9 ? { monitorKnnTop1: 61.5 } : {}),
      })),
    });
    const input = studyInput({
      runs: [run('fmnist-capi-s0', 'fmnist', true), run('fmnist-capi-s1', 'fmnist', false), run('scenes-capi-s0', 'scenes', false)],
      results: [
        result('fmnist-capi-s0', 'fmnist', { 'linear(avg).top1': 70 }, 0.4),
        result('fmnist-capi-s1', 'fmnist', { 'linear(avg).top1': 50 }, 0.4),
        result('fmnist-capi-s0-student', 'fmnist', { 'linear(avg).top1': 71 }, 0.4),
        result('pixels', 'fmnist', { 'linear(pred-pool).top1': 60 }, 0.4),
        result('scenes-capi-s0', 'fmnist-scenes', { 'seg.knn.mIoU': 26 }, 0.3),
        result('pixels', 'fmnist-scenes', { 'seg.knn.mIoU': 20 }, 0.3),
      ],
    });
    const claims = buildClaims(input);
    const scenes = claims.find((c) => c.claim === 'CAPI > pixels (scenes k-NN mIoU)')!;
    // How long the default arm trained is said once for the claims that share it (the discussion's "Runs behind").
    expect(scenes.shared).toEqual([expect.stringMatching(/^default arm: 30 pretraining steps here/)]);
    expect(scenes.shared!.join()).not.toContain('fmnist-capi');
    expect(claims.find((c) => c.claim === 'CAPI > pixels (fmnist linear)')!.shared![0]).toContain(
      "fmnist-capi-s0's teacher k-NN on the monitor subset at steps 10: 61.5",
    );
    const ts = claims.find((c) => c.claim === 'teacher >= student (fmnist linear)')!;
    // Only s0 has an evaluated student: its teacher (70), not the two-seed mean (60), against it.
    expect(ts.a!.mean).toBe(70);
    expect(ts.a!.n).toBe(1);
    expect(ts.evidence).toMatch(/^paired over one run \(fmnist-capi-s0\)/);
    // The paper's figures beside the run's, computed the same way (src/pretrain/diagnostics.ts).
    expect(ts.evidence).toContain(
      "the paper's teachers, computed the same way: 9.1k steps, 1.8% of 500k at peak 0.999; 2.2k steps, 2.2% of 100k at peak 0.996",
    );
  });

  it('the progress line: what is still to come, or that the plan is complete', async () => {
    const metrics = [0, 1].map((step) => ({ step, capiLoss: 4, imagesPerSec: 100, elapsedSec: step + 1 }));
    const runs = [{ id: 'fmnist-capi-s0', family: 'fmnist', arm: 'capi', seed: 0, metrics, config: { totalSteps: 2 } }];
    const teacher = {
      run: 'fmnist-capi-s0',
      row: 'fmnist-capi-s0',
      task: 'fmnist',
      probes: ['linear'],
      weights: 'teacher' as const,
      config: {},
    };
    const results = [result('fmnist-capi-s0', 'fmnist', { 'linear(avg).top1': 70 }, 0.4)];
    const report = async (input: StudyReportInput) => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'capi-report-'));
      try {
        return fs.readFileSync(await writeStudyReport(dir, input), 'utf8');
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    };
    const partial = await report(
      studyInput({
        runs,
        results,
        evalSettings: [
          teacher,
          { ...teacher, row: `${teacher.run}-student`, weights: 'student' as const },
          { ...teacher, row: `${teacher.run}@3ep`, atEpochs: 3 },
        ],
      }),
    );
    // The row a learning-curve point writes is its own: still to come although the run's end row exists.
    expect(partial).toContain("- Progress: 1 of 1 pretraining runs finished, 1 evaluation results, 2 of the plan's 3 evaluations to come");
    expect(partial).toContain('- Wall time so far:');
    const done = await report(studyInput({ runs, results, evalSettings: [teacher] }));
    expect(done).toContain('- Progress: the plan is complete: 1 pretraining runs, 1 evaluation results.');
    expect(done).toContain('- Wall time: pretraining 0 min');
  });

  it('Table 1: a missing cell reads "not run" when the plan evaluates it, "not in plan" when it does not', async () => {
    const input = studyInput({
      arms: [CAPI_ARM, REGISTERS_ARM],
      runs: [
        { id: 'fmnist-capi-s0', family: 'fmnist', arm: 'capi', seed: 0, metrics: [] },
        { id: 'fmnist-registers-0-s0', family: 'fmnist', arm: 'registers-0', seed: 0, metrics: [] },
      ],
      results: [result('fmnist-capi-s0', 'fmnist', { 'attentive.top1': 80, 'linear(avg).top1': 70 }, 0.4)],
      evalSettings: [
        {
          run: 'fmnist-capi-s0',
          row: 'fmnist-capi-s0',
          task: 'fmnist',
          probes: ['linear', 'attentive'],
          weights: 'teacher' as const,
          config: {},
        },
        {
          run: 'fmnist-registers-0-s0',
          row: 'fmnist-registers-0-s0',
          task: 'fmnist',
          probes: ['linear'],
          weights: 'teacher' as const,
          config: {},
        },
      ],
    });
    const rows = await tableRows(input, 'table1-ablations');
    expect(rows.find((r) => r.startsWith('registers'))).toBe('registers: 0,not in plan,not run,-3.2 / -2.1');
  });

  it("dense rows: feature-variance shares averaged over seeds in their own table and in a claim's evidence, with k-NN's chosen k", async () => {
    const dense = (model: string, v: number, image: number, position: number, k: number) => ({
      ...result(model, 'fmnist-scenes', { 'seg.knn.mIoU': v }, 0.3),
      details: { featureShares: { image, position }, 'seg.knn': { best: { k, metric: 'l2' } } } as EvalResult['details'],
    });
    const input = studyInput({
      runs: ['scenes-capi-s0', 'scenes-capi-s1'].map((id, seed) => ({ id, family: 'scenes', arm: 'capi', seed, metrics: [] })),
      results: [dense('scenes-capi-s0', 26, 0.3, 0.1, 10), dense('scenes-capi-s1', 27, 0.2, 0.05, 3), dense('pixels', 33, 0.06, 0.19, 1)],
    });
    const rows = await tableRows(input, 'table3-feature-shares');
    expect(rows[0]).toBe('model,fmnist-scenes image share,fmnist-scenes position share');
    // Two seeds: mean ± std (n); the std of {0.3, 0.2} is sqrt(2 x 0.05^2) = 0.0707, of {0.1, 0.05} 0.0354.
    expect(rows.find((r) => r.startsWith('CAPI (teacher)'))).toBe('CAPI (teacher),0.250 ± 0.071 (2),0.075 ± 0.035 (2)');
    expect(rows.find((r) => r.startsWith('baseline: pixels'))).toBe('baseline: pixels,0.060,0.190');
    const claim = buildClaims(input).find((c) => c.claim === 'CAPI > pixels (scenes k-NN mIoU)')!;
    // A: seeds with shares 0.2 and 0.3 (std sqrt(2 x 0.05^2) = 0.071); B: one row.
    expect(claim.evidence).toContain('A 0.250 ± 0.071 (n=2), B 0.060 (n=1)');
    expect(claim.evidence).toContain('chosen k: A k=10, k=3, B k=1');
  });

  it('diagnostics: the mean over the last 10% of steps; curve rows thinned to every k-th step (200 per run) plus the last', () => {
    const metrics = Array.from({ length: 1000 }, (_, s) => ({ step: s, capiLoss: s, teacherInitShare: 0.1 }));
    expect(lateMean(metrics, 'capiLoss')).toBeCloseTo((900 + 999) / 2, 12);
    const rows = curveRows([{ run: 'r', metrics }]).filter((r) => r.metric === 'CAPI loss');
    expect(rows.length).toBe(201); // every 5th step, and the last
    expect(rows.at(-1)!.step).toBe(1000);
    expect(curveRows([{ run: 'r', metrics }]).find((r) => r.metric.includes('init share'))!.value).toBeCloseTo(-1, 12);
    // The MI panel draws the plug-in estimate as logged.
    const mi = curveRows([
      { run: 'r', metrics: [0.3, 0.2].map((v, step) => ({ step, positionClusterMI: v, positionClusterMICorrected: -0.1 })) },
    ]);
    expect(mi.filter((r) => r.metric.startsWith('position-cluster MI')).map((r) => r.value)).toEqual([0.3, 0.2]);
  });

  it("diagnostics: a run's position-cluster MI is the plug-in beside its shuffled level where logged, else beside Miller-Madow floored at 0 (MM)", () => {
    // 10 steps, so the last 10% is step 9 alone.
    const steps = (f: (s: number) => MetricsLine) => Array.from({ length: 10 }, (_, s) => f(s));
    const withShuffle = steps((step) => ({
      step,
      positionClusterMI: 0.3,
      positionClusterMIShuffled: 0.58 - 0.001 * step,
      positionClusterMICorrected: -0.15,
    }));
    const mmOnly = steps((step) => ({ step, positionClusterMI: 0.3, positionClusterMICorrected: -0.15 }));
    const mmPositive = steps((step) => ({ step, positionClusterMI: 0.9, positionClusterMICorrected: 0.4 }));
    const t = diagnosticsTable(
      studyInput({
        runs: [
          { id: 'c-capi-s0', family: 'c', arm: 'capi', seed: 0, metrics: withShuffle },
          { id: 'c-capi-s1', family: 'c', arm: 'capi', seed: 1, metrics: mmOnly },
          { id: 'c-capi-s2', family: 'c', arm: 'capi', seed: 2, metrics: mmPositive },
        ],
        results: [],
      }),
    );
    const col = t.header.findIndex((h) => h.startsWith('position-cluster MI'));
    expect(t.rows.map((r) => r[col])).toEqual(['0.300 (shuffled 0.571)', '0.300 (MM 0.000)', '0.900 (MM 0.400)']);
  });

  it("diagnostics: the final teacher's mean age in steps and as a share of the run, beside the paper's teachers", () => {
    // Constant momentum m over T steps: the student of age a has weight (1 - m) m^a, so the mean age is sum a m^a / sum m^a.
    const [m, T] = [0.9, 40];
    const ages = Array.from({ length: T }, (_, a) => a);
    const age = ages.reduce((s, a) => s + a * m ** a, 0) / ages.reduce((s, a) => s + m ** a, 0);
    const metrics = ages.map((step) => ({ step, momentum: m }));
    const t = diagnosticsTable(studyInput({ runs: [{ id: 'c-capi-s0', family: 'c', arm: 'capi', seed: 0, metrics }], results: [] }));
    const col = t.header.indexOf('teacher mean age (steps; share of the run)');
    expect(t.rows[0][col]).toBe(`${age.toFixed(0)} (${((100 * age) / T).toFixed(1)}%)`);
    expect(t.note).toContain("the paper's teachers, computed the same way: 9.1k steps, 1.8% of 500k at peak 0.999");
  });

  it('training seconds: a clock that restarted at a resume counts both segments', () => {
    const at = (xs: number[]) => xs.map((elapsedSec, step) => ({ step, elapsedSec }));
    expect(trainingSeconds(at([1, 2, 3, 0.5, 1.5]))).toBeCloseTo(4.5, 12);
    expect(trainingSeconds(at([1, 2, 3, 4]))).toBeCloseTo(4, 12);
    expect(trainingSeconds([])).toBe(0);
  });

  it('training seconds: a pause logged before the running clock (a gap over 60 s and 20 median steps) counts as the cap', () => {
    // 100 steps of 1.5 s with a 30-minute SIGSTOP inside step 50: 99 steps of 1.5 s plus the 60 s cap.
    const clock = Array.from({ length: 100 }, (_, i) => 1.5 * (i + 1) + (i >= 50 ? 1800 : 0));
    expect(trainingSeconds(clock.map((elapsedSec, step) => ({ step, elapsedSec })))).toBeCloseTo(99 * 1.5 + 60, 9);
    // Slow steps (a ViT-L on CPU: 200 s each) are all counted: the cap is 20 of them.
    const slow = Array.from({ length: 10 }, (_, i) => 200 * (i + 1));
    expect(trainingSeconds(slow.map((elapsedSec, step) => ({ step, elapsedSec })))).toBeCloseTo(2000, 9);
  });

  it("prediction fit: the last measured step's KL beside the image-blind one, the share removed, argmax agreement against chance", () => {
    const measured = (kl: number, marginalKl: number, argmaxAgreement: number) => ({
      kl,
      marginalKl,
      argmaxAgreement,
      predictionEntropy: 4.5,
      targetEntropy: 1,
      patches: 8192,
      clusters: 256,
    });
    // Keys are steps: 900 comes before 7031 (numbers, not strings).
    const text = predictionFitText({ '7031': measured(3.31, 4.49, 0.099), '900': measured(3.9, 4.0, 0.02) });
    expect(text).toBe(
      'at step 7031: KL 3.31 nats against 4.49 for the image-blind prediction (26% of it removed), argmax agreement 9.9% (chance 0.4%)',
    );
    expect(predictionFitText({})).toBeUndefined();
    expect(predictionFitText(undefined)).toBeUndefined();
  });

  it("predictor pooling, the teacher's and the student's: Table 5 and its claims; the predictor's evidence is said once for the four", async () => {
    const metrics = Array.from({ length: 10 }, (_, step) => ({ step, momentum: 0.9, capiLoss: 5, targetEntropy: 1 }));
    const input = studyInput({
      runs: [{ id: 'c-capi-s0', family: 'c', arm: 'capi', seed: 0, metrics }],
      results: [
        result(
          'c-capi-s0',
          'c',
          { 'linear(avg).top1': 70, 'linear(pred-pool).top1': 70, 'knn(avg).top1': 60, 'knn(pred-pool).top1': 60 },
          0.5,
        ),
        result(
          evalRowName({ run: 'c-capi-s0', weights: 'student' }),
          'c',
          { 'linear(avg).top1': 69, 'linear(pred-pool).top1': 66, 'knn(avg).top1': 58, 'knn(pred-pool).top1': 62 },
          0.5,
        ),
      ],
    });
    const pooling = buildClaims(input).filter((c) => c.claim.startsWith('predictor pooling'));
    // The student: 66 - 69 = -3 and 62 - 58 = +4, against a combined SE of sqrt(0.5^2 + 0.5^2) = 0.71.
    expect(pooling.map((c) => [c.claim, c.verdict, c.gap])).toEqual([
      ['predictor pooling > average pooling (c linear)', 'not resolved (within 2 SE)', 0],
      ['predictor pooling > average pooling (c knn)', 'not resolved (within 2 SE)', 0],
      ['predictor pooling > average pooling (student, c linear)', 'does not hold (reversed beyond 2 SE)', -3],
      ['predictor pooling > average pooling (student, c knn)', 'holds', 4],
    ]);
    expect(await tableRows(input, 'table5-pooling')).toEqual([
      'representation,linear,k-NN',
      'c: average pooling,70.0 [SE 0.5],60.0 [SE 0.5]',
      'c: predictor pooling,70.0 [SE 0.5],60.0 [SE 0.5]',
      'c (student): average pooling,69.0 [SE 0.5],58.0 [SE 0.5]',
      'c (student): predictor pooling,66.0 [SE 0.5],62.0 [SE 0.5]',
      'paper IN-1k: average pooling,77.1,57.1',
      'paper IN-1k: predictor pooling,81.1,73.8',
    ]);
    const text = discussion(pooling);
    expect(text.split("default arm's predictor: its KL to its targets").length - 1).toBe(1);
    expect(text.split('pretraining steps here').length - 1).toBe(1); // the run length, once for the four claims
    expect(text).toContain('c-capi-s0 4.00 nats (4.00 at step 0');
    expect(text).toContain('- **predictor pooling > average pooling (c knn)**: not resolved (within 2 SE); gap +0.0 ± 0.7 points.\n');
  });

  it("predictor gap: CAPI loss - target entropy (the predictions' KL to their targets), late mean and at step 0", () => {
    // 10 steps: loss 5 - 0.1 s, entropy 1 - 0.05 s, so KL = 4 - 0.05 s; the last 10% is step 9 alone.
    const metrics = Array.from({ length: 10 }, (_, step) => ({ step, capiLoss: 5 - 0.1 * step, targetEntropy: 1 - 0.05 * step }));
    const g = predictorGap(metrics);
    expect(g.initial).toBeCloseTo(4, 12);
    expect(g.late).toBeCloseTo(4 - 0.45, 12);
    expect(g.entropyInitial).toBeCloseTo(1, 12);
    expect(g.entropyLate).toBeCloseTo(1 - 0.45, 12);
  });

  it("grid edges: how often the chosen lr / wd is at its grid's edge and its margin over the next value at the same other coordinate", () => {
    const grid = [0.1, 0.2].flatMap((lr) => [5e-4, 1e-3, 5e-2].map((wd) => ({ lr, wd })));
    const r = (valAccuracy: number[], coarse?: object) =>
      evalResult({
        task: 't',
        model: 'm',
        kind: 'capi',
        metrics: {},
        // A probe's details as far as the grid notes read them.
        details: {
          linear: { grid, valAccuracy, best: valAccuracy.indexOf(Math.max(...valAccuracy)), plateauTolerance: 0.005, coarse },
        } as EvalResult['details'],
      });
    // Smallest wd at lr 0.2, 0.2 points over the next (1e-3); inside (1e-3), and the largest by 1 point over 1e-3.
    const results = [r([0.5, 0.5, 0.5, 0.8, 0.798, 0.7]), r([0.5, 0.9, 0.5, 0.5, 0.5, 0.5]), r([0.5, 0.5, 0.5, 0.5, 0.79, 0.8])];
    const [lrLine, wdLine] = gridEdgeNotes(results).split('\n');
    // lr: 0.2 over 0.1 by 0.8 - 0.5 and 0.8 - 0.5 (the largest lr), 0.1 over 0.2 by 0.9 - 0.5 (the smallest).
    expect(lrLine).toBe(
      'Learning rate (flagged † in the tables): the chosen lr lies at an edge of its lr grid in 3 of 3 probe results (the largest in 2); there it beat the next lr at the same wd by 30.00-40.00 held-out points (tolerance 0.50), beyond the tolerance in 3 (t m linear by 30.00; t m linear by 40.00; t m linear by 30.00): an lr outside the grid might do better there.',
    );
    expect(wdLine).toBe(
      "Weight decay (not flagged in the tables): the chosen wd lies at an edge of the paper's wd grid in 2 of 3 probe results (the smallest in 1); there it beat the next wd at the same lr by 0.20-1.00 held-out points (tolerance 0.50), beyond the tolerance in 1 (t m linear by 1.00): a wd outside the grid might do better there.",
    );
    // After successive halving without the next wd among the kept points: the first round's margin.
    const kept = evalResult({
      task: 't',
      model: 'm',
      kind: 'capi',
      metrics: {},
      details: {
        attentive: {
          grid: [grid[3]],
          valAccuracy: [0.85],
          best: 0,
          plateauTolerance: 0.005,
          coarse: { grid, valAccuracy: [0, 0, 0, 0.8, 0.799, 0] },
        },
      } as EvalResult['details'],
    });
    expect(gridEdgeNotes([kept])).toContain(
      'in 1 of 1 probe results (the smallest in 1); there it beat the next wd at the same lr by 0.10 held-out points (tolerance 0.50), never beyond the tolerance',
    );
    expect(gridEdgeNotes([evalResult({ task: 't', model: 'm', kind: 'baseline', metrics: {} })])).toBe('');
  });

  it('machines: each run (with its median images/s) and result under the machine its record names', () => {
    const run = (id: string, machine: string | undefined, ips: number[]) => ({
      id,
      family: 'f',
      arm: 'capi',
      seed: 0,
      config: { backend: { machine } },
      metrics: ips.map((imagesPerSec, step) => ({ step, imagesPerSec })),
    });
    const input = {
      runs: [run('a', 'CPU X, 2 cores', [100, 300, 200]), run('b', undefined, [50]), { ...run('c', 'CPU X, 2 cores', []), metrics: [] }],
      results: [
        evalResult({ task: 't', model: 'a', kind: 'capi', metrics: {}, backend: { machine: 'CPU Y, 2 cores' } }),
        evalResult({ task: 't', model: 'floor', kind: 'reference', metrics: {}, backend: { machine: 'CPU Y, 2 cores' } }),
      ],
    } as unknown as StudyReportInput;
    expect(machinesLine(input)).toBe(
      '- Machines: CPU X, 2 cores (runs a at 200 img/s); not recorded (runs b at 50 img/s); CPU Y, 2 cores (1 result).\n',
    );
  });
});
