/**
 * How well a run's predictor fits its targets: the evidence for the claims that read the
 * predictor (predictor pooling, Table 5). A training step logs the CAPI loss and the targets'
 * entropy, whose difference is the predictions' mean KL to the SK targets; but the targets sharpen
 * as a run goes, so that KL alone does not say whether the predictor learned. Beside it stands the
 * KL of the best prediction that ignores the image (every patch the batch's mean target): how much
 * of it the predictor removes is what it learned.
 */
import * as tf from '@tensorflow/tfjs';
import { meanEntropy } from '../model/heads.js';
import type { CapiState, PretrainBatch } from './step.js';
import { stepMasks, studentInputs, studentLogits, teacherTargets } from './step.js';
import type { PretrainConfig } from './config.js';

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
    return { kl, marginalKl, argmaxAgreement, predictionEntropy, targetEntropy, patches };
  } finally {
    tf.dispose(measured);
  }
}
