/**
 * The metric keys evaluation writes and the tables read, with each one's column label, probe and
 * description: one definition, so a typo is a type error rather than an empty column, and every
 * table names a metric the same way. Values are percentages.
 */
export interface MetricInfo {
  /** A table column's name (beside the task's). */
  label: string;
  /** The probe that measures it, as an evaluation's --probes names it. */
  probe: string;
  description: string;
}

type SegMeasure = 'mIoU' | 'acc' | 'fgIoU';

/** The three measures of one dense classifier (`seg.<method>.<measure>`), labelled `<who> <measure> (<variant>)`. */
function segMetrics<M extends string>(
  method: M,
  probe: string,
  who: string,
  variant: string,
  description: string,
): Record<`seg.${M}.${SegMeasure}`, MetricInfo> {
  const v = variant ? ` (${variant})` : '';
  const entry = (label: string, what: string) => ({ label: `${who} ${label}${v}`, probe, description: `${description}, ${what}` });
  return {
    [`seg.${method}.mIoU`]: entry('mIoU', 'mIoU'),
    [`seg.${method}.acc`]: entry('pixel acc.', 'pixel accuracy'),
    [`seg.${method}.fgIoU`]: entry('fg mIoU', 'mIoU without the background label'),
  } as Record<`seg.${M}.${SegMeasure}`, MetricInfo>;
}

export const METRICS = {
  'attentive.top1': { label: 'attentive', probe: 'attentive', description: 'attentive probe on the patch tokens, top-1' },
  'linear(avg).top1': { label: 'linear', probe: 'linear', description: 'linear probe on average-pooled patch tokens, top-1' },
  'linear(pred-pool).top1': {
    label: 'pred-pool linear',
    probe: 'predictor-pooling',
    description: "linear probe on CAPI's predictor pooling, top-1",
  },
  'knn(avg).top1': { label: 'k-NN', probe: 'knn', description: 'weighted k-NN on average-pooled patch tokens, top-1' },
  'knn(pred-pool).top1': {
    label: 'pred-pool k-NN',
    probe: 'predictor-pooling',
    description: 'weighted k-NN on the predictor-pooled vector, top-1',
  },
  ...segMetrics('knn', 'knn', 'k-NN', '', 'k-NN segmentation'),
  ...segMetrics('knn-patch', 'knn-patch', 'k-NN', 'patch votes', 'k-NN segmentation with patch-level voting (one label a patch)'),
  ...segMetrics(
    'knn-centered',
    'knn-centered',
    'k-NN',
    'image-centred',
    "k-NN segmentation on features minus their image's mean patch feature",
  ),
  ...segMetrics('logreg', 'logreg', 'linear', '', 'logistic-regression segmentation'),
} satisfies Record<string, MetricInfo>;

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
  /**
   * Which test images the classifier got right, in the test set's order (classification;
   * `encodeCorrect`): the report pairs two results on the same images, whose errors are
   * correlated, rather than adding their standard errors as if independent.
   */
  testCorrect?: CorrectBits;
  /**
   * The mIoU's bootstrap replicates over test images, in points (dense tasks;
   * `encodeReplicates`): every result on one test set is resampled with the same images
   * (segmentation/metrics.ts imageResampler), so the report pairs two results replicate by
   * replicate rather than adding their standard errors as if independent.
   */
  testReplicates?: BootstrapReplicates;
}

/** Per-image correctness over a test set of `images`: a bitset, base64 (image j is bit j % 8 of byte j / 8). */
export interface CorrectBits {
  images: number;
  bits: string;
}

export type MetricQualities = Partial<Record<MetricKey, MetricQuality>>;

/** Binomial standard error of an accuracy `p` (0-1) measured on `n` independent test samples, in points. */
export const binomialSE = (p: number, n: number): number => (n > 0 ? 100 * Math.sqrt((p * (1 - p)) / n) : Number.NaN);

/** Per-image correctness (1: right) as `CorrectBits`: 10,000 test images take 1,668 characters of a result's JSON. */
export function encodeCorrect(correct: Uint8Array): CorrectBits {
  const bits = new Uint8Array(Math.ceil(correct.length / 8));
  correct.forEach((c, j) => {
    if (c) bits[j >> 3] |= 1 << (j & 7);
  });
  return { images: correct.length, bits: Buffer.from(bits).toString('base64') };
}

/** `encodeCorrect`'s inverse; undefined when the bitset does not hold its images (a damaged record). */
export function decodeCorrect({ images, bits }: CorrectBits): Uint8Array | undefined {
  const bytes = Buffer.from(bits, 'base64');
  if (bytes.length !== Math.ceil(images / 8)) return undefined;
  return Uint8Array.from({ length: images }, (_, j) => (bytes[j >> 3] >> (j & 7)) & 1);
}

/** Bootstrap replicates of a metric over a test set of `images`: float32 values, base64. */
export interface BootstrapReplicates {
  images: number;
  values: string;
}

/** 1,000 replicates take 5,336 characters of a result's JSON (float32: a replicate's 1e-7 relative rounding is far below its spread). */
export function encodeReplicates(values: ArrayLike<number>, images: number): BootstrapReplicates {
  return { images, values: Buffer.from(Float32Array.from(values).buffer).toString('base64') };
}

/** `encodeReplicates`' inverse; undefined when the bytes are not whole float32s (a damaged record). */
export function decodeReplicates({ values }: BootstrapReplicates): Float64Array | undefined {
  const bytes = Buffer.from(values, 'base64');
  if (bytes.length % 4) return undefined;
  return Float64Array.from(new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)));
}
