/**
 * The task registry: for each task its splits, evaluation transform, default resolution, label
 * set and the probes it allows. Adding a task is one entry here.
 */
import * as path from 'node:path';
import type { LabeledDataset } from '../data/dataset.js';
import { loadFashionMnist, locateFashionMnist } from '../data/fashion-mnist.js';
import { CANVAS_CLASSES, CANVAS_DEFAULTS, fmnistCanvas, fmnistCanvasDense } from '../data/fmnist-canvas.js';
import { fmnistScenes, SCENE_CLASSES, SCENES_DEFAULTS } from '../data/fmnist-scenes.js';
import { imageFolder } from '../data/image-folder.js';
import type { SegmentationDataset, UnknownLabelPolicy } from '../data/segmentation-datasets.js';
import { ade20k, cityscapes, SEG_LABELS, voc2012 } from '../data/segmentation-datasets.js';
import type { EvalTransform } from '../features/extract.js';

/** What a user asks for with --probes; src/eval/classifiers.ts maps each to its classifiers. */
export const PROBE_NAMES = ['attentive', 'linear', 'knn', 'knn-patch', 'knn-centered', 'predictor-pooling', 'logreg', 'pca'] as const;
export type ProbeName = (typeof PROBE_NAMES)[number];

/** Diagnostics run only when named (an empty --probes runs the rest): knn-centered repeats the k-NN searches. */
export const OPT_IN_PROBES: readonly ProbeName[] = ['knn-centered'];

export interface TaskDataOptions {
  dataDir: string;
  dataRoot: string;
  seed: number;
  scenesTrain: number;
  scenesTest: number;
  /** Dense label values outside the label set: stop, or score them as ignored (counted). */
  unknownLabels?: UnknownLabelPolicy;
}

interface TaskBase {
  description: string;
  probes: readonly ProbeName[];
  transform: EvalTransform;
  /** Evaluation side when --resolution is not given, from the model's pretraining side. */
  resolution(modelImageSize: number): number;
}

export interface ClassificationTask extends TaskBase {
  kind: 'classification';
  load(o: TaskDataOptions): { train: LabeledDataset; test: LabeledDataset };
}

export interface SegmentationTask extends TaskBase {
  kind: 'segmentation';
  /** Scored label values 0..classes-1; `ignore` values are removed before scoring; the background label, if any. */
  labels: { classes: number; ignore: readonly number[]; background?: number };
  load(o: TaskDataOptions): { train: SegmentationDataset; test: SegmentationDataset };
}

export type Task = ClassificationTask | SegmentationTask;

const CLASSIFICATION_PROBES = ['attentive', 'linear', 'knn', 'predictor-pooling', 'pca'] as const;
const SEGMENTATION_PROBES = ['knn', 'knn-patch', 'knn-centered', 'logreg', 'pca'] as const;
const modelSide = (s: number) => s;

const dataRoot = (o: TaskDataOptions, task: string) => {
  if (!o.dataRoot) throw new Error(`--data-root is required for ${task}`);
  return o.dataRoot;
};

function fmnist(o: TaskDataOptions) {
  const dir = locateFashionMnist(o.dataDir || undefined);
  return { train: loadFashionMnist(dir, 'train'), test: loadFashionMnist(dir, 't10k') };
}

export const TASKS = {
  fmnist: {
    kind: 'classification',
    description: 'Fashion-MNIST train / test (10 classes); --data-dir as for pretrain',
    probes: CLASSIFICATION_PROBES,
    transform: 'resize',
    resolution: modelSide,
    load: fmnist,
  },
  imagenet: {
    kind: 'classification',
    description: 'ImageNet-style train/ and val/ class folders under --data-root',
    probes: CLASSIFICATION_PROBES,
    transform: 'center-crop',
    resolution: modelSide,
    load: (o) => {
      const root = dataRoot(o, 'imagenet (train/ and val/ class folders)');
      return { train: imageFolder(path.join(root, 'train')), test: imageFolder(path.join(root, 'val')) };
    },
  },
  'fmnist-scenes': {
    kind: 'segmentation',
    description: 'canvases of 2-4 Fashion-MNIST items in the cells of a 2 x 2 grid on texture (background + 10 classes)',
    probes: SEGMENTATION_PROBES,
    transform: 'resize',
    labels: { classes: SCENE_CLASSES.length, ignore: [255], background: 0 },
    resolution: () => SCENES_DEFAULTS.size,
    load: (o) => {
      const { train, test } = fmnist(o);
      const opts = { ...SCENES_DEFAULTS, seed: o.seed };
      return {
        train: fmnistScenes(train, 'train', { ...opts, count: o.scenesTrain }),
        test: fmnistScenes(test, 'test', { ...opts, count: o.scenesTest }),
      };
    },
  },
  'fmnist-canvas': {
    kind: 'classification',
    description:
      'one Fashion-MNIST item at a random scale (14-28 px) and place on a 42 px textured canvas, its class the label (60k / 10k)',
    probes: CLASSIFICATION_PROBES,
    transform: 'resize',
    resolution: () => CANVAS_DEFAULTS.size,
    load: (o) => {
      const { train, test } = fmnist(o);
      const opts = { ...CANVAS_DEFAULTS, seed: o.seed };
      return {
        train: fmnistCanvas(train, 'train', { ...opts, count: train.size }),
        test: fmnistCanvas(test, 'test', { ...opts, count: test.size }),
      };
    },
  },
  'fmnist-canvas-dense': {
    kind: 'segmentation',
    description:
      "the fmnist-canvas images as a dense task: the item's pixels labeled with its class, the rest background (--scenes-train / --scenes-test canvases)",
    probes: SEGMENTATION_PROBES,
    transform: 'resize',
    labels: { classes: CANVAS_CLASSES.length, ignore: [255], background: 0 },
    resolution: () => CANVAS_DEFAULTS.size,
    load: (o) => {
      const { train, test } = fmnist(o);
      const opts = { ...CANVAS_DEFAULTS, seed: o.seed };
      return {
        train: fmnistCanvasDense(train, 'train', { ...opts, count: Math.min(o.scenesTrain, train.size) }),
        test: fmnistCanvasDense(test, 'test', { ...opts, count: Math.min(o.scenesTest, test.size) }),
      };
    },
  },
  ade20k: {
    kind: 'segmentation',
    description: 'ADE20K (ADEChallengeData2016 layout) under --data-root',
    probes: SEGMENTATION_PROBES,
    transform: 'resize',
    labels: SEG_LABELS.ade20k,
    resolution: modelSide,
    load: (o) => ({
      train: ade20k(dataRoot(o, 'ade20k'), 'training', o.unknownLabels),
      test: ade20k(dataRoot(o, 'ade20k'), 'validation', o.unknownLabels),
    }),
  },
  voc: {
    kind: 'segmentation',
    description: 'Pascal VOC 2012 (VOCdevkit layout) under --data-root',
    probes: SEGMENTATION_PROBES,
    transform: 'resize',
    labels: { ...SEG_LABELS.voc, background: 0 },
    resolution: modelSide,
    load: (o) => ({
      train: voc2012(dataRoot(o, 'voc'), 'train', o.unknownLabels),
      test: voc2012(dataRoot(o, 'voc'), 'val', o.unknownLabels),
    }),
  },
  cityscapes: {
    kind: 'segmentation',
    description: 'Cityscapes (leftImg8bit + gtFine) under --data-root',
    probes: SEGMENTATION_PROBES,
    transform: 'resize',
    labels: SEG_LABELS.cityscapes,
    resolution: modelSide,
    load: (o) => ({
      train: cityscapes(dataRoot(o, 'cityscapes'), 'train', o.unknownLabels),
      test: cityscapes(dataRoot(o, 'cityscapes'), 'val', o.unknownLabels),
    }),
  },
} satisfies Record<string, Task>;

export type TaskName = keyof typeof TASKS;
export const TASK_NAMES = Object.keys(TASKS) as [TaskName, ...TaskName[]];
