/** L-BFGS multinomial logistic regression: gradient, convergence, accuracy vs a slow solver, C. */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import {
  disposeLogRegData,
  fitLogReg,
  fitLogRegObjective,
  LOGREG_C_GRID,
  LOGREG_DEFAULTS,
  logRegLossGrad,
  predictLogReg,
  prepareLogRegData,
} from '../../src/segmentation/logreg.js';
import { Rng } from '../../src/runtime/rng.js';

/** Gaussian blobs: `classes` centres in `dim` dimensions, `perClass` points each. */
function blobs(classes: number, dim: number, perClass: number, spread: number, seed: number) {
  const rng = new Rng(seed);
  const centres = Array.from({ length: classes }, () => Array.from({ length: dim }, () => 3 * rng.normal()));
  const n = classes * perClass;
  const x = new Float32Array(n * dim);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    y[i] = i % classes;
    for (let j = 0; j < dim; j++) x[i * dim + j] = centres[y[i]][j] + spread * rng.normal();
  }
  return { x, y, n };
}

/** Independent float64 solver: plain gradient descent on the same (scaled) objective. */
function slowSolve(x: Float32Array, y: Int32Array, n: number, dim: number, k: number, c: number, iters: number, lr: number) {
  const w = new Float64Array(dim * k);
  const b = new Float64Array(k);
  const lambda = 1 / (c * n);
  for (let t = 0; t < iters; t++) {
    const gw = new Float64Array(dim * k);
    const gb = new Float64Array(k);
    for (let i = 0; i < n; i++) {
      const z = new Float64Array(k);
      for (let c2 = 0; c2 < k; c2++) {
        z[c2] = b[c2];
        for (let j = 0; j < dim; j++) z[c2] += x[i * dim + j] * w[j * k + c2];
      }
      const mx = Math.max(...z);
      const e = z.map((v) => Math.exp(v - mx));
      const s = e.reduce((a, v) => a + v, 0);
      for (let c2 = 0; c2 < k; c2++) {
        const d = (e[c2] / s - (y[i] === c2 ? 1 : 0)) / n;
        gb[c2] += d;
        for (let j = 0; j < dim; j++) gw[j * k + c2] += x[i * dim + j] * d;
      }
    }
    for (let i = 0; i < w.length; i++) w[i] -= lr * (gw[i] + lambda * w[i]);
    for (let i = 0; i < k; i++) b[i] -= lr * gb[i];
  }
  let correct = 0;
  for (let i = 0; i < n; i++) {
    let best = 0,
      bestV = -Infinity;
    for (let c2 = 0; c2 < k; c2++) {
      let z = b[c2];
      for (let j = 0; j < dim; j++) z += x[i * dim + j] * w[j * k + c2];
      if (z > bestV) {
        bestV = z;
        best = c2;
      }
    }
    if (best === y[i]) correct++;
  }
  return correct / n;
}

describe('logistic regression (L-BFGS)', () => {
  it('the analytic gradient matches central finite differences', async () => {
    const { x, y } = blobs(3, 4, 10, 1, 1);
    const d = prepareLogRegData(x, y, 4, 3);
    const rng = new Rng(2);
    const theta = Float32Array.from({ length: 4 * 3 + 3 }, () => 0.3 * rng.normal());
    const c = 0.5;
    const { grad } = await logRegLossGrad(d, theta, c);
    for (let i = 0; i < theta.length; i++) {
      const h = 1e-2;
      const plus = Float32Array.from(theta);
      plus[i] += h;
      const minus = Float32Array.from(theta);
      minus[i] -= h;
      const fd = ((await logRegLossGrad(d, plus, c)).loss - (await logRegLossGrad(d, minus, c)).loss) / (2 * h);
      expect(Math.abs(fd - grad[i])).toBeLessThan(2e-3 * Math.max(1, Math.abs(grad[i])));
    }
    disposeLogRegData(d);
  });

  it('converges: the gradient at the returned solution is below the tolerance', async () => {
    const { x, y } = blobs(4, 8, 50, 2, 3);
    const d = prepareLogRegData(x, y, 8, 4);
    const m = await fitLogReg(d, { ...LOGREG_DEFAULTS, c: 1, gradTol: 1e-5 });
    expect(m.gradMax).toBeLessThan(1e-5);
    expect(m.iterations).toBeLessThan(LOGREG_DEFAULTS.maxIter);
    expect(m.stop).toBe('converged');
    disposeLogRegData(d);
  });

  it('says why a fit ended: the iteration cap, or a line search that found no decrease, is never "converged"', async () => {
    const { x, y } = blobs(4, 8, 50, 2, 3);
    const d = prepareLogRegData(x, y, 8, 4);
    const capped = await fitLogReg(d, { ...LOGREG_DEFAULTS, c: 1, maxIter: 2 });
    expect(capped.stop).toBe('iteration-cap');
    expect(capped.gradMax).toBeGreaterThan(LOGREG_DEFAULTS.gradTol);
    disposeLogRegData(d);
    // A gradient the loss does not follow: no step along it decreases the loss.
    const flat = async (theta: Float32Array) => ({ loss: 1, grad: new Float32Array(theta.length).fill(1) });
    const stuck = await fitLogRegObjective(flat, 2, 2, { ...LOGREG_DEFAULTS, c: 1 });
    expect(stuck.stop).toBe('line-search-failed');
    expect(stuck.iterations).toBe(0);
  });

  it('on a separable problem it reaches the accuracy of an independent slow solver', async () => {
    const { x, y, n } = blobs(3, 5, 40, 0.8, 4);
    const d = prepareLogRegData(x, y, 5, 3);
    const m = await fitLogReg(d, { ...LOGREG_DEFAULTS, c: 10 });
    const pred = await predictLogReg(m, x, n);
    const acc = pred.reduce((a, p, i) => a + (p === y[i] ? 1 : 0), 0) / n;
    const slow = slowSolve(x, y, n, 5, 3, 10, 3000, 0.5);
    expect(slow).toBe(1);
    expect(acc).toBeGreaterThanOrEqual(slow);
    disposeLogRegData(d);
  });

  it('C acts as inverse regularisation: smaller C, smaller weights', async () => {
    const { x, y, n } = blobs(3, 6, 30, 1.5, 5);
    const d = prepareLogRegData(x, y, 6, 3);
    const norms: number[] = [];
    for (const c of [1e-3, 1e-1, 1]) {
      const m = await fitLogReg(d, { ...LOGREG_DEFAULTS, c, maxIter: 300 });
      norms.push(Math.sqrt(m.weights.reduce((a, v) => a + v * v, 0)));
    }
    expect(norms[0]).toBeLessThan(norms[1]);
    expect(norms[1]).toBeLessThan(norms[2]);
    expect(LOGREG_C_GRID[0]).toBeCloseTo(1e-6, 12);
    expect(LOGREG_C_GRID[7]).toBeCloseTo(1e5, 6);
    expect(LOGREG_C_GRID[4]).toBeCloseTo(1.931, 3);
    void n;
    disposeLogRegData(d);
    expect(tf.memory().numTensors).toBeLessThan(50);
  });

  it('keeps making progress where the float32 loss stops resolving decreases (smallest C)', async () => {
    // C = 1e-6 on 5,000 rows: the penalty's curvature is ~200x the intercept's and after a few
    // iterations the loss changes by less than its float32 rounding. A plain Armijo search
    // stalled here (12 evaluations per iteration, zero-length steps).
    const { x, y, n } = blobs(5, 16, 1000, 2, 6);
    const d = prepareLogRegData(x, y, 16, 5);
    const m = await fitLogReg(d, { ...LOGREG_DEFAULTS, c: 1e-6, maxIter: 40 });
    console.log(`C=1e-6: ${m.iterations} iterations, ${m.evaluations} evaluations, gradient max ${m.gradMax.toExponential(2)}`);
    expect(m.evaluations).toBeLessThan(3 * m.iterations + 1);
    expect(m.gradMax).toBeLessThan(3e-6); // the stalled search ended at 7.6e-6
    void n;
    disposeLogRegData(d);
  });
});
