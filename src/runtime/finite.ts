/** Which tensors hold a NaN or an infinity (one reduction per tensor, one read back in all). */
import * as tf from '@tensorflow/tfjs';

export function nonFiniteTensors(tensors: Record<string, tf.Tensor>): string[] {
  const names = Object.keys(tensors);
  if (!names.length) return [];
  // sum(x * 0) is 0 for finite x and NaN as soon as one entry is NaN or infinite.
  const probe = tf.tidy(() => tf.stack(names.map((n) => tf.sum(tf.mul(tensors[n].toFloat(), 0)))));
  const sums = probe.dataSync();
  probe.dispose();
  return names.filter((_, i) => !Number.isFinite(sums[i]));
}
