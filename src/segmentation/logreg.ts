/**
 * Multinomial logistic regression with an L2 penalty, solved by L-BFGS (eval spec 3.6).
 * Objective with scikit-learn's C semantics: minimise C * sum_i CE_i + 1/2 ||W||^2, intercept
 * unpenalised; we minimise the same divided by C n (same solution, better scaled). Loss and
 * gradient run on tfjs; the L-BFGS two-loop recursion runs on the small parameter vector in JS.
 */
import * as tf from '@tensorflow/tfjs';

export interface LogRegOptions {
  /** Inverse regularisation strength (scikit-learn's C). */
  c: number;
  maxIter: number;
  /** Stop when the gradient's max-abs entry is below this (scaled objective). */
  gradTol: number;
  /** L-BFGS history size. */
  memory: number;
  maxLineSearch: number;
  /** Called after every iteration with the loss and the gradient's max-abs entry (scaled objective). */
  onIteration?: (iteration: number, loss: number, gradMax: number) => void;
}

export const LOGREG_DEFAULTS: Omit<LogRegOptions, 'c'> = { maxIter: 1000, gradTol: 1e-6, memory: 5, maxLineSearch: 50 };

/** C over 8 log-spaced values in [1e-6, 1e5] (eval spec 3.6). */
export const LOGREG_C_GRID = Array.from({ length: 8 }, (_, i) => 10 ** (-6 + (11 * i) / 7));

/**
 * Why a fit ended: the gradient met the tolerance ('converged'), no step along the search
 * direction decreased the loss ('line-search-failed'), or the iteration cap came first.
 */
export type LogRegStop = 'converged' | 'line-search-failed' | 'iteration-cap';

export interface LogRegModel {
  /** [D, K] */
  weights: Float32Array;
  /** [K] */
  bias: Float32Array;
  dim: number;
  classes: number;
  iterations: number;
  /** Loss-and-gradient evaluations (line-search steps included). */
  evaluations: number;
  gradMax: number;
  loss: number;
  stop: LogRegStop;
}

/**
 * The scaled objective and its gradient at theta = [W (D x K, row-major); b (K)], however the rows
 * are stored (asynchronous: on a GPU backend it is read back with await, webgpu.ts).
 */
export type LogRegObjective = (theta: Float32Array) => Promise<{ loss: number; grad: Float32Array }>;

/** Training data kept on the backend for repeated fits (one per C). */
export interface LogRegData {
  x: tf.Tensor2D; // [n, D]
  xT: tf.Tensor2D; // [D, n]
  y: tf.Tensor2D; // one-hot [n, K]
  n: number;
  dim: number;
  classes: number;
}

export function prepareLogRegData(x: Float32Array, labels: Int32Array, dim: number, classes: number): LogRegData {
  const n = labels.length;
  return tf.tidy(() => {
    const xt = tf.tensor2d(x, [n, dim]);
    return {
      x: xt,
      xT: tf.transpose(xt) as tf.Tensor2D,
      y: tf.oneHot(tf.tensor1d(labels, 'int32'), classes).toFloat() as tf.Tensor2D,
      n,
      dim,
      classes,
    };
  });
}

export function disposeLogRegData(d: LogRegData): void {
  tf.dispose([d.x, d.xT, d.y]);
}

/** Scaled objective and its gradient at theta = [W (D x K, row-major); b (K)]. */
export async function logRegLossGrad(d: LogRegData, theta: Float32Array, c: number): Promise<{ loss: number; grad: Float32Array }> {
  const { dim, classes, n } = d;
  const res = tf.tidy(() => {
    const w = tf.tensor2d(theta.subarray(0, dim * classes), [dim, classes]);
    const b = tf.tensor1d(theta.subarray(dim * classes));
    const logits = tf.add(tf.matMul(d.x, w), b);
    const logp = tf.logSoftmax(logits);
    const ce = tf.neg(tf.sum(tf.mul(d.y, logp)));
    const lambda = 1 / (c * n);
    const loss = tf.add(tf.div(ce, n), tf.mul(tf.sum(tf.mul(w, w)), lambda / 2));
    const dlogits = tf.div(tf.sub(tf.exp(logp), d.y), n);
    const gw = tf.add(tf.matMul(d.xT, dlogits), tf.mul(w, lambda));
    const gb = tf.sum(dlogits, 0);
    return tf.concat([gw.reshape([-1]), gb]).concat(tf.reshape(loss, [1]));
  });
  let all: Float32Array;
  try {
    all = (await res.data()) as Float32Array;
  } finally {
    res.dispose();
  }
  const grad = Float32Array.from(all.subarray(0, all.length - 1));
  return { loss: all[all.length - 1], grad };
}

const dot = (a: Float32Array | Float64Array, b: Float32Array | Float64Array) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};
const maxAbs = (a: Float32Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

/** Minimises the objective of `d` from `init` (or zeros): fitLogRegObjective on data held on the backend. */
export function fitLogReg(d: LogRegData, opts: LogRegOptions, init?: Float32Array): Promise<LogRegModel> {
  return fitLogRegObjective((theta) => logRegLossGrad(d, theta, opts.c), d.dim, d.classes, opts, init);
}

/** Minimises `objective` from `init` (or zeros) with L-BFGS and an Armijo / approximate-Wolfe line search. */
export async function fitLogRegObjective(
  objective: LogRegObjective,
  dim: number,
  classes: number,
  opts: LogRegOptions,
  init?: Float32Array,
): Promise<LogRegModel> {
  const size = dim * classes + classes;
  let theta = init ? Float32Array.from(init) : new Float32Array(size);
  let { loss, grad } = await objective(theta);
  let stop: LogRegStop = 'iteration-cap';
  let evaluations = 1;
  const sHist: Float64Array[] = [];
  const yHist: Float64Array[] = [];
  let it = 0;
  for (; it < opts.maxIter; it++) {
    if (maxAbs(grad) <= opts.gradTol) {
      stop = 'converged';
      break;
    }
    // Two-loop recursion: direction = -H grad.
    const q = Float64Array.from(grad);
    const alphas: number[] = [];
    for (let j = sHist.length - 1; j >= 0; j--) {
      const rho = 1 / dot(yHist[j], sHist[j]);
      const a = rho * dot(sHist[j], q);
      alphas[j] = a;
      for (let i = 0; i < size; i++) q[i] -= a * yHist[j][i];
    }
    const k = sHist.length - 1;
    const gamma = k >= 0 ? dot(sHist[k], yHist[k]) / dot(yHist[k], yHist[k]) : 1 / Math.max(1, Math.sqrt(dot(grad, grad)));
    for (let i = 0; i < size; i++) q[i] *= gamma;
    for (let j = 0; j < sHist.length; j++) {
      const rho = 1 / dot(yHist[j], sHist[j]);
      const b = rho * dot(yHist[j], q);
      for (let i = 0; i < size; i++) q[i] += sHist[j][i] * (alphas[j] - b);
    }
    let slope = -dot(grad, q);
    if (!(slope < 0)) {
      // Not a descent direction (numerical trouble): restart from steepest descent.
      sHist.length = 0;
      yHist.length = 0;
      for (let i = 0; i < size; i++) q[i] = grad[i] / Math.max(1, Math.sqrt(dot(grad, grad)));
      slope = -dot(grad, q);
    }
    let step = 1;
    let next = theta;
    let nextEval = { loss, grad };
    let accepted = false;
    // The loss is a float32 sum: near the optimum its decrease drowns in rounding and Armijo
    // alone stalls. Hager & Zhang's approximate Wolfe test (decided by the accurate directional
    // derivative once the loss change is within epsF) takes over there.
    const epsF = 1e-6 * Math.abs(loss);
    for (let ls = 0; ls < opts.maxLineSearch; ls++) {
      next = Float32Array.from(theta, (v, i) => v - step * q[i]);
      nextEval = await objective(next);
      evaluations++;
      const dLoss = nextEval.loss - loss;
      const dSlope = -dot(nextEval.grad, q); // derivative along the step at the new point
      const armijo = dLoss <= 1e-4 * step * slope;
      const approxWolfe = dLoss <= epsF && dSlope <= (1 - 2 * 1e-4) * -slope && dSlope >= 0.9 * slope;
      if (armijo || approxWolfe) {
        accepted = true;
        break;
      }
      if (dLoss <= epsF && dSlope < 0.9 * slope) {
        step *= 2; // within the noise and still descending steeply: too short
        continue;
      }
      // Backtrack to the zero of the secant of the directional derivative when it changed sign,
      // else to the minimiser of the quadratic through f(0), f'(0) and f(step); kept within
      // [0.1, 0.5] x step (Nocedal & Wright 3.5).
      const curvature = dLoss - slope * step;
      const guess = dSlope > 0 ? (step * slope) / (slope - dSlope) : curvature > 0 ? (-slope * step * step) / (2 * curvature) : 0.5 * step;
      step = Math.min(0.5 * step, Math.max(0.1 * step, guess));
    }
    if (!accepted) {
      stop = 'line-search-failed';
      break;
    }
    const s = Float64Array.from(next, (v, i) => v - theta[i]);
    const y = Float64Array.from(nextEval.grad, (v, i) => v - grad[i]);
    if (dot(s, y) > 1e-12) {
      sHist.push(s);
      yHist.push(y);
      if (sHist.length > opts.memory) {
        sHist.shift();
        yHist.shift();
      }
    }
    theta = next;
    ({ loss, grad } = nextEval);
    opts.onIteration?.(it + 1, loss, maxAbs(grad));
  }
  if (stop === 'iteration-cap' && maxAbs(grad) <= opts.gradTol) stop = 'converged'; // the last iteration reached the tolerance
  return {
    weights: theta.slice(0, dim * classes),
    bias: theta.slice(dim * classes),
    dim,
    classes,
    iterations: it,
    evaluations,
    gradMax: maxAbs(grad),
    loss,
    stop,
  };
}

/** Arg-max class for each row of x [n, D]. */
export async function predictLogReg(m: LogRegModel, x: Float32Array, n: number): Promise<Int32Array> {
  const out = tf.tidy(() => {
    const logits = tf.add(tf.matMul(tf.tensor2d(x, [n, m.dim]), tf.tensor2d(m.weights, [m.dim, m.classes])), tf.tensor1d(m.bias));
    return tf.argMax(logits, 1);
  });
  try {
    return Int32Array.from(await out.data());
  } finally {
    out.dispose();
  }
}
