/**
 * What a result's `details` hold, one type each: written by the task runners (classification.ts,
 * segmentation.ts), read by the report (grid-notes.ts, claims.ts, statistics.ts). A classifier's
 * details sit under its name (`linear`, `seg.knn`...), beside the evaluation's own (engine,
 * feature shares, PCA pictures, relabelled pixels).
 */
import type { UnknownLabels } from '../data/segmentation-datasets.js';
import type { GridPoint, GridResult, ProbeQuality } from '../probes/grid.js';
import type { KnnPoint, KnnVote, LogRegFit } from '../segmentation/protocol.js';
import type { FeatureShares } from '../segmentation/variance.js';
import type { ClassifierName, SegFeatures } from './classifiers.js';
import type { EvalConfig } from './config.js';

/** A probe grid's selection and convergence (every grid point's held-out accuracy, the curve, the quality flags). */
export type ProbeDetails = Pick<
  GridResult,
  'valAccuracy' | 'grid' | 'best' | 'iterations' | 'batchSize' | 'curve' | 'halfSchedule' | 'coarse'
> &
  ProbeQuality & {
    bestPoint: GridPoint;
    probeMode: EvalConfig['probeMode'];
  };

/** How a dense k-NN searched (exact or HNSW), voted and on which features. */
export interface DenseKnnSearch {
  index: string;
  vote: KnnVote;
  features: SegFeatures;
}

/** The logistic regression's fits of the C grid on the validation split. */
export interface DenseLogRegFits {
  validationFits: LogRegFit[];
  maxIter: number;
}

/** A dense classifier's selection: every grid point's validation mIoU, the chosen point, the refit (logistic regression). */
export type DenseDetails = (Partial<DenseKnnSearch> & Partial<DenseLogRegFits>) & {
  validation: { point: KnnPoint | number; score: number }[];
  best: KnnPoint | number;
  atGridEdge: boolean;
  refit?: LogRegFit;
};

/** Which dense engine ran, with its blocks (src/segmentation/out-of-core.ts) on the CPU one. */
export interface EngineDetails {
  name: 'cpu' | 'tfjs';
  kernels?: string;
  memoryGb?: number;
  blockRows?: number;
  queryRows?: number;
}

export type EvalDetails = { [name in ClassifierName]?: ProbeDetails | DenseDetails } & {
  engine?: EngineDetails;
  /** What the dense classifiers see, summarised (report: discussion of the dense claims). */
  featureShares?: FeatureShares;
  /** The PCA pictures' files. */
  pca?: string[];
  /** Label values outside the label set, scored as ignored (--unknown-labels ignore). */
  unknownLabels?: { train?: UnknownLabels; test?: UnknownLabels };
};

export const isProbeDetails = (d: unknown): d is ProbeDetails =>
  typeof d === 'object' && d !== null && 'grid' in d && 'valAccuracy' in d && 'plateauTolerance' in d;

/** The k chosen by a result's dense k-NN (seg.knn), if it has one. */
export function chosenK(details: EvalDetails | undefined): number | undefined {
  const best = details?.['seg.knn']?.best;
  return typeof best === 'object' && best !== null && 'k' in best ? best.k : undefined;
}
