/**
 * The classifier registry (the reference's `classifiers_dict`): what each classifier reads, the
 * metrics it writes, and, for the dense ones, its grid, selection, refit and test. `--probes`
 * names map to classifiers per task kind; evaluate() runs exactly the classifiers asked for.
 */
import type { DenseKnnSearch, DenseLogRegFits } from './details.js';
import type { KnnIndex } from '../features/knn.js';
import type { ProbeFamily } from '../probes/families.js';
import { attentiveFamily, linearFamily } from '../probes/families.js';
import type { LogRegStop } from '../segmentation/logreg.js';
import { LOGREG_C_GRID } from '../segmentation/logreg.js';
import type { OutOfCoreSplits } from '../segmentation/out-of-core.js';
import { outOfCoreKnn } from '../segmentation/out-of-core-knn.js';
import { outOfCoreLogRegTest, outOfCoreLogRegValidation } from '../segmentation/out-of-core-logreg.js';
import type { KnnPoint, KnnVote, LogRegFit, SegScore, SegSplits } from '../segmentation/protocol.js';
import { segKnnGrid, segKnnIndex, segKnnTest, segKnnValidation, segLogRegTest, segLogRegValidation } from '../segmentation/protocol.js';
import type { MetricKey } from './metrics.js';
import type { Selection } from './select.js';
import { selectRefitTest } from './select.js';
import type { ProbeName } from './tasks.js';

/** Which features a classifier reads: patch tokens, their average, or the predictor-pooled vector. */
export type FeatureSource = 'patch' | 'avg' | 'global';

export interface ProbeGridClassifier {
  kind: 'probe-grid';
  family: ProbeFamily;
  source: FeatureSource;
  metric: MetricKey;
}

export interface KnnClassifier {
  kind: 'knn';
  source: 'avg' | 'global';
  metric: MetricKey;
  note: string;
}

export interface SegRunOptions {
  knnIndex: KnnIndex;
  logregMaxIter: number;
  /** A phase's progress: label, units done, units in all, extra info. */
  progress: (label: string, done: number, total: number, info?: string) => void;
}

/** A dense classifier's outcome: test scores, the selection (grid point objects), what it searched with. */
export interface SegOutcome<P> {
  selection: Selection<P, SegScore & { fit?: LogRegFit }>;
  /** Grid point in words, for the results' notes. */
  bestLabel: string;
  extra: DenseKnnSearch | DenseLogRegFits;
}

/**
 * The patch features a dense classifier reads: the protocol's ('standard'), or each feature
 * minus its image's mean patch feature before standardisation ('image-centered'): what is left
 * when the per-image context is removed (a test of how much a k-NN relies on it).
 */
export type SegFeatures = 'standard' | 'image-centered';

/** A model's dense splits: in memory (protocol.ts, on the tfjs backend) or out of core (out-of-core.ts, CPU kernels). */
export type DenseSplits = SegSplits | OutOfCoreSplits;

const outOfCore = (s: DenseSplits): s is OutOfCoreSplits => 'kernels' in s;

export interface SegClassifier<P = unknown> {
  kind: 'segmentation';
  features: SegFeatures;
  metrics: { mIoU: MetricKey; acc: MetricKey; fgIoU: MetricKey };
  run(s: DenseSplits, o: SegRunOptions): Promise<SegOutcome<P>>;
}

/**
 * Whether a k-NN selection lies at an edge a wider grid could move: the metric is categorical, so
 * only k has edges, and only the largest: k = 1 is where k itself ends.
 */
export const knnAtGridEdge = (best: KnnPoint, _index: number, grid: readonly KnnPoint[]): boolean =>
  best.k > 1 && best.k === Math.max(...grid.map((p) => p.k));

/** The k-NN grid (spec 3.5) with a voting rule, on a choice of features. */
function segKnn(vote: KnnVote, features: SegFeatures, metrics: SegClassifier['metrics']): SegClassifier<KnnPoint> {
  return {
    kind: 'segmentation',
    features,
    metrics,
    async run(s, o) {
      const index = outOfCore(s) ? 'exact' : segKnnIndex(s, o.knnIndex);
      const search = (phase: string) => (what: string, done: number, total: number) =>
        o.progress(`k-NN ${what} (${phase}, ${index})`, done, total);
      const selection = await selectRefitTest(
        segKnnGrid(),
        (grid) =>
          outOfCore(s)
            ? outOfCoreKnn(s, 'validation', [...grid], vote, search('validation')).map((r) => r.mIoU)
            : segKnnValidation(s, [...grid], index, vote, search('validation')),
        (best) =>
          outOfCore(s)
            ? outOfCoreKnn(s, 'test', [best], vote, search('refit + test'))[0]
            : segKnnTest(s, best, index, vote, search('refit + test')),
        knnAtGridEdge,
      );
      const { k, metric } = selection.best;
      const how = `${index === 'hnsw' ? 'approximate HNSW' : 'exact'} search, ${vote} voting`;
      return { selection, bestLabel: `k=${k} ${metric} (${how})`, extra: { index, vote, features } };
    },
  };
}

/** How a fit's end reads in a progress line: only a gradient within tolerance is "converged". */
const STOP_WORDS: Record<LogRegStop, string> = {
  converged: 'converged',
  'line-search-failed': 'NOT converged (the line search found no decrease)',
  'iteration-cap': 'NOT converged (iteration cap)',
};

const segLogReg: SegClassifier<number> = {
  kind: 'segmentation',
  features: 'standard',
  metrics: { mIoU: 'seg.logreg.mIoU', acc: 'seg.logreg.acc', fgIoU: 'seg.logreg.fgIoU' },
  async run(s, o) {
    const onFit = (phase: string) => (c: number, iteration: number, loss: number, g: number, ended?: LogRegStop) => {
      const label = `logistic regression C=${c.toExponential(2)} (${phase})`;
      const state = `loss ${loss.toExponential(4)} |g|max ${g.toExponential(2)}`;
      if (!ended) o.progress(label, iteration, o.logregMaxIter, state);
      else o.progress(label, o.logregMaxIter, o.logregMaxIter, `${STOP_WORDS[ended]} after ${iteration} iterations, ${state}`);
    };
    let fits: LogRegFit[] = [];
    const selection = await selectRefitTest(
      LOGREG_C_GRID,
      async (cs) => {
        const r = await (outOfCore(s)
          ? outOfCoreLogRegValidation(s, [...cs], o.logregMaxIter, onFit('validation'))
          : segLogRegValidation(s, [...cs], o.logregMaxIter, onFit('validation')));
        fits = r.fits;
        return r.scores;
      },
      (c) =>
        outOfCore(s) ? outOfCoreLogRegTest(s, c, o.logregMaxIter, onFit('refit')) : segLogRegTest(s, c, o.logregMaxIter, onFit('refit')),
    );
    return { selection, bestLabel: `C=${selection.best.toExponential(3)}`, extra: { validationFits: fits, maxIter: o.logregMaxIter } };
  },
};

export const CLASSIFIERS = {
  // Grid probes in this order: in reference mode their initialisations share one random stream.
  attentive: { kind: 'probe-grid', family: attentiveFamily, source: 'patch', metric: 'attentive.top1' },
  'linear(avg)': { kind: 'probe-grid', family: linearFamily, source: 'avg', metric: 'linear(avg).top1' },
  'linear(pred-pool)': { kind: 'probe-grid', family: linearFamily, source: 'global', metric: 'linear(pred-pool).top1' },
  'knn(avg)': {
    kind: 'knn',
    source: 'avg',
    metric: 'knn(avg).top1',
    note: 'weighted k-NN, k=20, T=0.07, cosine on average-pooled patch tokens',
  },
  'knn(pred-pool)': {
    kind: 'knn',
    source: 'global',
    metric: 'knn(pred-pool).top1',
    note: 'weighted k-NN, k=20, T=0.07, cosine on the predictor-pooled vector',
  },
  'seg.knn': segKnn('pixel', 'standard', { mIoU: 'seg.knn.mIoU', acc: 'seg.knn.acc', fgIoU: 'seg.knn.fgIoU' }),
  'seg.knn-patch': segKnn('patch', 'standard', { mIoU: 'seg.knn-patch.mIoU', acc: 'seg.knn-patch.acc', fgIoU: 'seg.knn-patch.fgIoU' }),
  'seg.knn-centered': segKnn('pixel', 'image-centered', {
    mIoU: 'seg.knn-centered.mIoU',
    acc: 'seg.knn-centered.acc',
    fgIoU: 'seg.knn-centered.fgIoU',
  }),
  'seg.logreg': segLogReg,
} satisfies Record<string, ProbeGridClassifier | KnnClassifier | SegClassifier<KnnPoint> | SegClassifier<number>>;

export type ClassifierName = keyof typeof CLASSIFIERS;

/** What each --probes name runs, per task kind ('pca' runs no classifier: it draws pictures). */
const PROBE_CLASSIFIERS: Record<ProbeName, { classification?: ClassifierName[]; segmentation?: ClassifierName[] }> = {
  attentive: { classification: ['attentive'] },
  linear: { classification: ['linear(avg)'] },
  knn: { classification: ['knn(avg)'], segmentation: ['seg.knn'] },
  'knn-patch': { segmentation: ['seg.knn-patch'] },
  'knn-centered': { segmentation: ['seg.knn-centered'] },
  // Table 5 compares predictor pooling with average pooling: both, linear and k-NN.
  'predictor-pooling': { classification: ['linear(avg)', 'linear(pred-pool)', 'knn(avg)', 'knn(pred-pool)'] },
  logreg: { segmentation: ['seg.logreg'] },
  pca: {},
};

/**
 * Every classifier of a task kind: what a task's floors and ceiling are given for (they depend on
 * no model and no probe, so every evaluation writes the same row whatever probes it asked for).
 */
export const allClassifiers = (kind: 'classification' | 'segmentation'): ClassifierName[] =>
  classifiersFor(Object.keys(PROBE_CLASSIFIERS) as ProbeName[], kind);

/** The classifiers the probes ask for, in registry order, each once. */
export function classifiersFor(probes: readonly ProbeName[], kind: 'classification' | 'segmentation'): ClassifierName[] {
  const asked = new Set(probes.flatMap((p) => PROBE_CLASSIFIERS[p][kind] ?? []));
  return (Object.keys(CLASSIFIERS) as ClassifierName[]).filter((c) => asked.has(c));
}
