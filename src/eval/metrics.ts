/**
 * The metric keys evaluation writes and the tables read: one definition, so a typo is a type
 * error rather than an empty column. Values are percentages.
 */
export const METRICS = {
  'attentive.top1': 'attentive probe on the patch tokens, top-1',
  'linear(avg).top1': 'linear probe on average-pooled patch tokens, top-1',
  'linear(pred-pool).top1': "linear probe on CAPI's predictor pooling, top-1",
  'knn(avg).top1': 'weighted k-NN on average-pooled patch tokens, top-1',
  'knn(pred-pool).top1': 'weighted k-NN on the predictor-pooled vector, top-1',
  'seg.knn.mIoU': 'k-NN segmentation, mIoU',
  'seg.knn.acc': 'k-NN segmentation, pixel accuracy',
  'seg.knn.fgIoU': 'k-NN segmentation, mIoU without the background label',
  'seg.knn-patch.mIoU': 'k-NN segmentation with patch-level voting (one label a patch), mIoU',
  'seg.knn-patch.acc': 'k-NN segmentation with patch-level voting, pixel accuracy',
  'seg.knn-patch.fgIoU': 'k-NN segmentation with patch-level voting, mIoU without the background label',
  'seg.knn-centered.mIoU': "k-NN segmentation on features minus their image's mean patch feature, mIoU",
  'seg.knn-centered.acc': "k-NN segmentation on features minus their image's mean patch feature, pixel accuracy",
  'seg.knn-centered.fgIoU': "k-NN segmentation on features minus their image's mean patch feature, mIoU without the background label",
  'seg.logreg.mIoU': 'logistic-regression segmentation, mIoU',
  'seg.logreg.acc': 'logistic-regression segmentation, pixel accuracy',
  'seg.logreg.fgIoU': 'logistic-regression segmentation, mIoU without the background label',
} as const;

export type MetricKey = keyof typeof METRICS;

export type Metrics = Partial<Record<MetricKey, number>>;
export type MetricNotes = Partial<Record<MetricKey, string>>;

/** How much a number can be trusted: its test-set standard error, and the selection's flags. */
export interface MetricQuality {
  /** Standard error on the test set, in the metric's units (points). */
  se?: number;
  /** The selected hyper-parameter lies on the edge of its grid. */
  atGridEdge?: boolean;
  /** The selected probe's held-out accuracy converged in the schedule length (probe grids only; probes/grid.ts probeQuality). */
  converged?: boolean;
}

export type MetricQualities = Partial<Record<MetricKey, MetricQuality>>;

/** Binomial standard error of an accuracy `p` (0-1) measured on `n` independent test samples, in points. */
export const binomialSE = (p: number, n: number): number => (n > 0 ? 100 * Math.sqrt((p * (1 - p)) / n) : Number.NaN);
