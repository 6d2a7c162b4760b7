/**
 * How well a run's predictor fits its targets: the evidence for the claims that read the
 * predictor (predictor pooling, Table 5). A training step logs the CAPI loss and the targets'
 * entropy, whose difference is the predictions' mean KL to the SK targets; but the targets sharpen
 * as a run goes, so that KL alone does not say whether the predictor learned. Beside it stands the
 * KL of the best prediction that ignores the image (every patch the batch's mean target): how much
 * of it the predictor removes is what it learned.
 */
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { meanEntropy } from '../model/heads.js';
import { CHECKPOINT_FILE } from '../model/io/run-files.js';
import { loadCheckpoint } from './checkpoint.js';
import type { PretrainConfig } from './config.js';
import { BatchSampler, loadPretrainBatch, openPretrainDataset } from './data.js';
import type { CapiState, PretrainBatch } from './step.js';
import { disposeState, stepMasks, studentInputs, studentLogits, teacherTargets, totalSteps } from './step.js';

export interface PredictionFit {
  /** Mean KL (nats) of the SK targets to the student's predictions: CAPI loss - target entropy, as step t logs it (without drop path). */
  kl: number;
  /** Mean KL of the targets to their mean over the batch's predicted patches (the image-blind prediction). */
  marginalKl: number;
  /** Patches whose prediction's argmax is the target's argmax (share). */
  argmaxAgreement: number;
  predictionEntropy: number;
  targetEntropy: number;
  /** Predicted patches measured. */
  patches: number;
  /** Prototypes (argmax agreement by chance: 1 / clusters). */
  clusters: number;
}

/** Mean over the rows of `p` [M, K] of KL(p_m || mean of the rows). */
export function klToMarginal(p: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const q = tf.mean(p, 0, true);
    const crossEntropy = tf.mean(tf.neg(tf.sum(tf.mul(p, tf.log(tf.maximum(q, 1e-30))), -1)));
    return tf.sub(crossEntropy, meanEntropy(p)) as tf.Scalar;
  });
}

/** The fit on `batch` with step t's masks; `state` is only read. */
export async function predictionFit(state: CapiState, cfg: PretrainConfig, batch: PretrainBatch, t: number): Promise<PredictionFit> {
  const masks = stepMasks(cfg, batch.size, t);
  const teacher = teacherTargets(state, cfg, batch, masks);
  const inputs = studentInputs(cfg, batch, masks);
  const measured = tf.tidy(() => {
    const logp = tf.logSoftmax(tf.div(studentLogits(state.student, cfg, inputs), cfg.train.studentTemp));
    const crossEntropy = tf.mean(tf.neg(tf.sum(tf.mul(teacher.targets, logp), -1)));
    const agreement = tf.mean(tf.equal(tf.argMax(teacher.targets, -1), tf.argMax(logp, -1)).toFloat());
    return [
      tf.sub(crossEntropy, teacher.entropy),
      klToMarginal(teacher.targets),
      agreement,
      meanEntropy(tf.exp(logp)),
      tf.clone(teacher.entropy),
    ];
  });
  const patches = teacher.targets.shape[0]!;
  tf.dispose([...Object.values(teacher), ...Object.values(inputs)]);
  try {
    const [kl, marginalKl, argmaxAgreement, predictionEntropy, targetEntropy] = (await Promise.all(measured.map((x) => x.data()))).map(
      (x) => x[0],
    );
    return { kl, marginalKl, argmaxAgreement, predictionEntropy, targetEntropy, patches, clusters: cfg.model.numClusters };
  } finally {
    tf.dispose(measured);
  }
}

/** The fits of several batches as one: each figure weighted by its batch's patches. */
export function poolFits(fits: PredictionFit[]): PredictionFit {
  const patches = fits.reduce((a, x) => a + x.patches, 0);
  const mean = (f: (x: PredictionFit) => number) => fits.reduce((a, x) => a + f(x) * x.patches, 0) / patches;
  return {
    kl: mean((x) => x.kl),
    marginalKl: mean((x) => x.marginalKl),
    argmaxAgreement: mean((x) => x.argmaxAgreement),
    predictionEntropy: mean((x) => x.predictionEntropy),
    targetEntropy: mean((x) => x.targetEntropy),
    patches,
    clusters: fits[0].clusters,
  };
}

/**
 * The fit of the CAPI run in `runDir` at its checkpoint, on the `batches` batches it would train
 * on next (its own data pipeline and masks: what its loss would have been measured on, without
 * drop path).
 */
export async function measurePredictionFit(runDir: string, batches = 4): Promise<{ step: number; total: number; fit: PredictionFit }> {
  const { state, config: cfg } = loadCheckpoint(path.join(runDir, CHECKPOINT_FILE));
  try {
    const { dataset } = await openPretrainDataset(cfg.train, cfg.model.imageSize);
    const sampler = new BatchSampler(dataset.size, cfg.train.batchSize, cfg.train.seed);
    const fits: PredictionFit[] = [];
    for (let t = state.step; t < state.step + batches; t++)
      fits.push(await predictionFit(state, cfg, await loadPretrainBatch(dataset, sampler, cfg, t), t));
    return { step: state.step, total: totalSteps(cfg, dataset.size), fit: poolFits(fits) };
  } finally {
    disposeState(state);
  }
}
