/**
 * Dense-label datasets in the layouts users have on disk (eval spec 6): ADE20K
 * (ADEChallengeData2016), Pascal VOC 2012, Cityscapes (gtFine labelTrainIds). A wrong layout
 * gives an error naming the missing path.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RawImage } from './dataset.js';
import { decodeImage } from './image-folder.js';
import type { LabelMap } from './png-labels.js';
import { readLabelPng } from './png-labels.js';

export interface SegSample {
  image: RawImage;
  label: LabelMap;
}

export interface SegmentationDataset {
  description: string;
  size: number;
  /** Label values are 0..numClasses-1 (plus ignored values). */
  numClasses: number;
  /** Ground-truth values removed before scoring (eval spec 3.8). */
  ignore: number[];
  load(index: number): Promise<SegSample>;
  /** Label values outside the label set that were mapped to ignore so far (`unknownLabels: 'ignore'`). */
  unknownLabels?: () => UnknownLabels;
}

/** What to do with label values that are neither a class nor ignored: stop (default), or score them as ignored. */
export type UnknownLabelPolicy = 'error' | 'ignore';

export interface UnknownLabels {
  pixels: number;
  images: number;
  values: number[];
}

/** Label sets: values 0..classes-1 are scored, `ignore` values are removed (eval spec 3.8). */
export const SEG_LABELS = {
  ade20k: { classes: 151, ignore: [0, 255] },
  voc: { classes: 21, ignore: [255] },
  cityscapes: { classes: 19, ignore: [255] },
} as const;

function requirePath(p: string, what: string): string {
  if (!fs.existsSync(p)) throw new Error(`${what} not found: ${p} is missing (check --data-root and the dataset layout)`);
  return p;
}

/**
 * Label values of `label` that are neither a class (0..classes-1) nor ignored: an error naming the
 * file and the values, or (policy 'ignore') mapped to the first ignore value and counted. Scoring
 * them as classes of their own would change the mIoU silently (values 200 and 220 in an
 * ADE20K layout turned a perfect 100.0 into 57.1).
 */
export function checkLabelValues(
  label: LabelMap,
  file: string,
  labels: { classes: number; ignore: readonly number[] },
  policy: UnknownLabelPolicy,
  count: UnknownLabels,
): void {
  const ignored = new Set(labels.ignore);
  const unknown = new Set<number>();
  for (const v of label.data) if (v >= labels.classes && !ignored.has(v)) unknown.add(v);
  if (!unknown.size) return;
  const values = [...unknown].sort((a, b) => a - b);
  if (policy === 'error')
    throw new Error(
      `${file}: label values ${values.join(', ')} are neither a class (0-${labels.classes - 1}) nor ignored (${labels.ignore.join(', ')}); fix the labels, or pass --unknown-labels ignore to score them as ignored (counted in the result)`,
    );
  const to = labels.ignore[0];
  for (let i = 0; i < label.data.length; i++) {
    if (unknown.has(label.data[i])) {
      label.data[i] = to;
      count.pixels++;
    }
  }
  count.images++;
  count.values = [...new Set([...count.values, ...values])].sort((a, b) => a - b);
}

function pairs(
  images: string[],
  labelOf: (img: string) => string,
  description: string,
  labels: { classes: number; ignore: readonly number[] },
  policy: UnknownLabelPolicy,
): SegmentationDataset {
  for (const img of images.slice(0, 1)) requirePath(labelOf(img), `label map for ${img}`);
  const unknown: UnknownLabels = { pixels: 0, images: 0, values: [] };
  return {
    description,
    size: images.length,
    numClasses: labels.classes,
    ignore: [...labels.ignore],
    load: async (i) => {
      const image = await decodeImage(images[i]);
      const file = requirePath(labelOf(images[i]), `label map for ${images[i]}`);
      const label = readLabelPng(file);
      if (label.height !== image.height || label.width !== image.width) {
        throw new Error(`${file}: label map is ${label.width}x${label.height} but its image is ${image.width}x${image.height}`);
      }
      checkLabelValues(label, file, labels, policy, unknown);
      return { image, label };
    },
    unknownLabels: () => ({ ...unknown, values: [...unknown.values] }),
  };
}

const sorted = (dir: string, ext: string) =>
  fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(ext))
    .sort()
    .map((f) => path.join(dir, f));

/** ADE20K: ADEChallengeData2016/{images,annotations}/{training,validation}; 150 classes 1..150, 0 ignored. */
export function ade20k(root: string, split: 'training' | 'validation', policy: UnknownLabelPolicy = 'error'): SegmentationDataset {
  const base = fs.existsSync(path.join(root, 'ADEChallengeData2016')) ? path.join(root, 'ADEChallengeData2016') : root;
  const imgDir = requirePath(path.join(base, 'images', split), 'ADE20K images');
  const annDir = requirePath(path.join(base, 'annotations', split), 'ADE20K annotations');
  const images = sorted(imgDir, '.jpg');
  if (!images.length) throw new Error(`ADE20K images not found: no .jpg in ${imgDir}`);
  return pairs(
    images,
    (img) => path.join(annDir, `${path.basename(img, '.jpg')}.png`),
    `ade20k:${split} (${base})`,
    SEG_LABELS.ade20k,
    policy,
  );
}

/** Pascal VOC 2012: ImageSets/Segmentation/<split>.txt, JPEGImages, SegmentationClass; 21 classes, 255 ignored. */
export function voc2012(root: string, split: 'train' | 'val', policy: UnknownLabelPolicy = 'error'): SegmentationDataset {
  const cands = [root, path.join(root, 'VOC2012'), path.join(root, 'VOCdevkit', 'VOC2012')];
  const base = cands.find((c) => fs.existsSync(path.join(c, 'ImageSets', 'Segmentation'))) ?? root;
  const list = requirePath(path.join(base, 'ImageSets', 'Segmentation', `${split}.txt`), 'VOC split list');
  const ids = fs.readFileSync(list, 'utf8').split(/\s+/).filter(Boolean);
  const images = ids.map((id) => path.join(base, 'JPEGImages', `${id}.jpg`));
  for (const img of images.slice(0, 1)) requirePath(img, 'VOC image');
  return pairs(
    images,
    (img) => path.join(base, 'SegmentationClass', `${path.basename(img, '.jpg')}.png`),
    `voc2012:${split} (${base})`,
    SEG_LABELS.voc,
    policy,
  );
}

/** Cityscapes: leftImg8bit/<split>/<city>/*_leftImg8bit.png with gtFine/<split>/<city>/*_gtFine_labelTrainIds.png; 19 classes, 255 ignored. */
export function cityscapes(root: string, split: 'train' | 'val', policy: UnknownLabelPolicy = 'error'): SegmentationDataset {
  const imgRoot = requirePath(path.join(root, 'leftImg8bit', split), 'Cityscapes images');
  const gtRoot = requirePath(path.join(root, 'gtFine', split), 'Cityscapes gtFine labels');
  const images = fs
    .readdirSync(imgRoot)
    .sort()
    .flatMap((city) => sorted(path.join(imgRoot, city), '_leftImg8bit.png'));
  if (!images.length) throw new Error(`Cityscapes images not found: no *_leftImg8bit.png under ${imgRoot}`);
  const labelOf = (img: string) => {
    const city = path.basename(path.dirname(img));
    return path.join(gtRoot, city, path.basename(img).replace('_leftImg8bit.png', '_gtFine_labelTrainIds.png'));
  };
  return pairs(images, labelOf, `cityscapes:${split} (${root})`, SEG_LABELS.cityscapes, policy);
}
