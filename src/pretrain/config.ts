/** The `pretrain` command's configuration: one typed object, presets by name, validated. */
import type { ModelConfig } from '../model/config.js';
import { MODEL_PRESETS, validateModelConfig } from '../model/config.js';
import type { MaskingMode } from './masking.js';

export interface TrainConfig {
  /** 'fmnist' (Fashion-MNIST train split) or a folder of images. */
  data: string;
  /** Where the Fashion-MNIST idx files are; empty: the Debian package's location. */
  dataDir: string;
  batchSize: number;
  /** Length of the run in epochs over the data; `steps` > 0 overrides it. */
  epochs: number;
  steps: number;
  seed: number;
  // Student optimiser (spec 8.1, 8.2)
  lr: number;
  finalLr: number;
  warmupFraction: number;
  truncation: number;
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** Peak teacher momentum; defaults to 1 - lr (spec 8.2 identity). */
  teacherMomentum: number;
  /** Clustering optimiser (spec 5.4); lr defaults to lr / 2. */
  clusterLr: number;
  clusterWeightDecay: number;
  // Losses and clustering (spec 5, 7)
  studentTemp: number;
  targetTemp: number;
  clusterTemp: number;
  skIterations: number;
  positionwiseSK: boolean;
  // Masking (spec 3)
  masking: MaskingMode;
  maskRatio: number;
  roll: boolean;
  predictionSubsampling: number;
  /** Predictions per image; 0: floor(n_mask * predictionSubsampling). */
  numPredictions: number;
  dropPath: number;
  // Augmentation (spec 9)
  cropScaleMin: number;
  cropScaleMax: number;
  hflip: number;
  // Run bookkeeping
  checkpointEvery: number;
  logEvery: number;
}

export interface PretrainConfig {
  preset: string;
  model: ModelConfig;
  train: TrainConfig;
}

const TRAIN_DEFAULTS: TrainConfig = {
  data: 'fmnist', dataDir: '', batchSize: 256, epochs: 1, steps: 0, seed: 0,
  lr: 1e-3, finalLr: 0, warmupFraction: 0.1, truncation: 0.8, weightDecay: 0.1, beta1: 0.9, beta2: 0.95, eps: 1e-8,
  teacherMomentum: NaN, clusterLr: NaN, clusterWeightDecay: 0.01,
  studentTemp: 0.12, targetTemp: 0.06, clusterTemp: 0.12, skIterations: 3, positionwiseSK: true,
  masking: 'inverse-block', maskRatio: 0.65, roll: true, predictionSubsampling: 0.05, numPredictions: 0, dropPath: 0.2,
  cropScaleMin: 0.6, cropScaleMax: 1, hflip: 0.5,
  checkpointEvery: 100, logEvery: 1,
};

/** Training presets; the model part comes from MODEL_PRESETS under the same name. */
const TRAIN_PRESETS: Record<string, Partial<TrainConfig>> = {
  // 8 predictions per image on the 7x7 grid (5% of 31 masked would give 1); lr as the paper's
  // small models (ViT-S: 2e-3).
  'fmnist-tiny': { batchSize: 256, lr: 2e-3, numPredictions: 8, checkpointEvery: 50 },
  'vit-s14': { lr: 2e-3, batchSize: 16 },
  'vit-b14': { batchSize: 8 },
  'vit-l14': { batchSize: 4 },
};

export const PRESET_NAMES = Object.keys(MODEL_PRESETS);

/** Preset + overrides (flat field names of either part) -> resolved, validated config. */
export function resolvePretrainConfig(preset: string, overrides: Record<string, unknown> = {}): PretrainConfig {
  const modelPreset = MODEL_PRESETS[preset];
  if (!modelPreset) throw new Error(`unknown preset '${preset}': choose one of ${PRESET_NAMES.join(', ')}`);
  const model: ModelConfig = { ...modelPreset };
  const train: TrainConfig = { ...TRAIN_DEFAULTS, ...TRAIN_PRESETS[preset] };
  for (const [key, value] of Object.entries(overrides)) {
    const target: Record<string, unknown> | undefined =
      key in model ? (model as unknown as Record<string, unknown>) : key in train ? (train as unknown as Record<string, unknown>) : undefined;
    if (!target) throw new Error(`unknown config field '${key}': see --help for the list of fields`);
    target[key] = coerce(key, value, target[key]);
  }
  if (Number.isNaN(train.teacherMomentum)) train.teacherMomentum = 1 - train.lr;
  if (Number.isNaN(train.clusterLr)) train.clusterLr = train.lr / 2;
  validateModelConfig(model);
  validateTrainConfig(train);
  return { preset, model, train };
}

/** Converts a CLI string to the type of the field's default. */
function coerce(key: string, value: unknown, current: unknown): unknown {
  if (typeof value !== 'string') return value;
  if (typeof current === 'number') {
    const n = Number(value);
    if (value.trim() === '' || Number.isNaN(n)) throw new Error(`invalid config value: ${key} must be a number (got '${value}')`);
    return n;
  }
  if (typeof current === 'boolean') {
    if (value === 'true' || value === '') return true;
    if (value === 'false') return false;
    throw new Error(`invalid config value: ${key} must be true or false (got '${value}')`);
  }
  return value;
}

function validateTrainConfig(t: TrainConfig): void {
  const bad = (field: string, why: string) => {
    throw new Error(`invalid config value: ${field} ${why}`);
  };
  const posInt = ['batchSize', 'skIterations', 'checkpointEvery', 'logEvery'] as const;
  for (const k of posInt) if (!Number.isInteger(t[k]) || t[k] <= 0) bad(k, `must be a positive integer (got ${t[k]})`);
  const nonNegInt = ['steps', 'numPredictions', 'seed'] as const;
  for (const k of nonNegInt) if (!Number.isInteger(t[k]) || t[k] < 0) bad(k, `must be a non-negative integer (got ${t[k]})`);
  if (!(t.epochs > 0)) bad('epochs', `must be > 0 (got ${t.epochs})`);
  const unit = ['maskRatio', 'dropPath', 'hflip', 'warmupFraction', 'truncation', 'predictionSubsampling', 'beta1', 'beta2', 'teacherMomentum'] as const;
  for (const k of unit) if (!(t[k] >= 0 && t[k] <= 1)) bad(k, `must be in [0, 1] (got ${t[k]})`);
  const positive = ['lr', 'clusterLr', 'studentTemp', 'targetTemp', 'clusterTemp', 'eps'] as const;
  for (const k of positive) if (!(t[k] > 0)) bad(k, `must be > 0 (got ${t[k]})`);
  if (!(t.cropScaleMin > 0 && t.cropScaleMin <= t.cropScaleMax && t.cropScaleMax <= 1)) {
    bad('cropScaleMin', `must satisfy 0 < cropScaleMin <= cropScaleMax <= 1 (got ${t.cropScaleMin}, ${t.cropScaleMax})`);
  }
  if (!['inverse-block', 'block', 'uniform'].includes(t.masking)) bad('masking', `must be inverse-block, block or uniform (got ${t.masking})`);
}
