/** Which tensors hold a NaN or an infinity (one reduction per tensor, one read back in all). */
import * as tf from '@tensorflow/tfjs';

/** sum(x * 0) of each tensor, stacked: 0 for finite x and NaN as soon as one entry is NaN or infinite. */
const finiteProbe = (tensors: tf.Tensor[]) => tf.tidy(() => tf.stack(tensors.map((t) => tf.sum(tf.mul(t.toFloat(), 0)))));

const notFinite = (names: string[], sums: ArrayLike<number>) => names.filter((_, i) => !Number.isFinite(sums[i]));

/** The names of the tensors that are not finite, read back asynchronously (what a GPU backend needs: the training loop). */
export async function nonFiniteTensors(tensors: Record<string, tf.Tensor>): Promise<string[]> {
  const names = Object.keys(tensors);
  if (!names.length) return [];
  const probe = finiteProbe(Object.values(tensors));
  try {
    return notFinite(names, await probe.data());
  } finally {
    probe.dispose();
  }
}
