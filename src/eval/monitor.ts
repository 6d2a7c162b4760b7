/**
 * The pretraining monitor (DINO's online k-NN, on the evaluation protocol): the EMA teacher's
 * average-pooled patch features of a fixed labeled subset, a weighted k-NN (k = 20, T = 0.07) from
 * its first `train` training images to its first `test` test images. Cheap enough to run a few
 * times a run, so a report can show what the features are worth as pretraining goes, not only at
 * its end (why a claim does or does not hold at a run's length).
 */
import type { LabeledDataset } from '../data/dataset.js';
import { ImageMemo, memoized } from '../data/memo.js';
import { extractFeatures } from '../features/extract.js';
import { capiFeatureModel } from '../features/models.js';
import type { PretrainMonitor } from '../pretrain/loop.js';
import { knnClassify } from '../probes/knn-classify.js';
import { IMAGE_MEMO_BYTES, limit } from './feature-source.js';
import type { ClassificationTask, TaskDataOptions } from './tasks.js';

export interface KnnMonitorOptions {
  task: ClassificationTask;
  /** The task's data folder ('' = its default); the monitor reads no other data option. */
  dataDir: string;
  /** Steps between measurements (and after the last). */
  every: number;
  train: number;
  test: number;
  batchSize?: number;
}

export function knnMonitor(o: KnnMonitorOptions): PretrainMonitor {
  const data: TaskDataOptions = { dataDir: o.dataDir, dataRoot: '', seed: 0, scenesTrain: 0, scenesTest: 0 };
  const { train, test } = o.task.load(data);
  // Decoded once: every measurement reads the same images.
  const splits = {
    train: memoized(limit(train, o.train), new ImageMemo(IMAGE_MEMO_BYTES)),
    test: memoized(limit(test, o.test), new ImageMemo(IMAGE_MEMO_BYTES)),
  };
  const labels = (d: LabeledDataset) => Int32Array.from({ length: d.size }, (_, i) => d.label(i));
  const y = { train: labels(splits.train), test: labels(splits.test) };
  return {
    every: o.every,
    description: `k-NN (k 20, T 0.07) of the teacher's average-pooled patch features, first ${splits.train.size} training to first ${splits.test.size} test images of ${train.description}`,
    async measure(teacher, model) {
      // The live teacher: the feature model must not free it.
      const live = { ...capiFeatureModel('teacher', 'monitor', teacher, model), dispose: () => {} };
      const avg = async (s: 'train' | 'test') => {
        const f = await extractFeatures(live, splits[s], {
          size: o.task.resolution(model.imageSize),
          transform: o.task.transform,
          batchSize: o.batchSize ?? 256,
          cacheDir: '',
          maxBytes: 2 ** 32,
        });
        return f.avg;
      };
      return 100 * (await knnClassify(await avg('train'), y.train, await avg('test'), y.test, model.dim, train.numClasses)).accuracy;
    },
  };
}
