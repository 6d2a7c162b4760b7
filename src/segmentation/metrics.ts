/**
 * Segmentation metrics (eval spec 3.8): pixels whose ground truth is in the ignore set are
 * removed; mIoU over all remaining pixels (global, not per image), macro-averaged over the
 * classes present in ground truth or predictions (a predicted class absent from the ground truth
 * counts with IoU 0); pixel accuracy.
 */
export interface SegScores {
  mIoU: number;
  accuracy: number;
  /** IoU per label that entered the mean. */
  perClass: Map<number, number>;
  pixels: number;
}

export function segmentationScores(gt: ArrayLike<number>, pred: ArrayLike<number>, ignore: readonly number[]): SegScores {
  if (gt.length !== pred.length) throw new Error(`segmentationScores: ${gt.length} labels vs ${pred.length} predictions`);
  const ignored = new Set(ignore);
  const tp = new Map<number, number>();
  const gtCount = new Map<number, number>();
  const predCount = new Map<number, number>();
  let correct = 0;
  let pixels = 0;
  const inc = (m: Map<number, number>, k: number) => m.set(k, (m.get(k) ?? 0) + 1);
  for (let i = 0; i < gt.length; i++) {
    const g = gt[i];
    if (ignored.has(g)) continue;
    const p = pred[i];
    pixels++;
    inc(gtCount, g);
    inc(predCount, p);
    if (g === p) {
      correct++;
      inc(tp, g);
    }
  }
  const perClass = new Map<number, number>();
  for (const c of new Set([...gtCount.keys(), ...predCount.keys()])) {
    const t = tp.get(c) ?? 0;
    perClass.set(c, t / ((gtCount.get(c) ?? 0) + (predCount.get(c) ?? 0) - t));
  }
  const ious = [...perClass.values()];
  return {
    mIoU: ious.length ? ious.reduce((a, b) => a + b, 0) / ious.length : 0,
    accuracy: pixels ? correct / pixels : 0,
    perClass,
    pixels,
  };
}
