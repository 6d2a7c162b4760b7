/**
 * The dense protocol's prepared splits as .npy files, so that another tool can fit the same
 * classifier on the very same rows (bench/logreg_sklearn.py: scikit-learn's logistic regression
 * in float64 against our float32 L-BFGS). One folder per model: for each split (train = the 90%,
 * val, all = train + val, test) its standardised patch features [rows, D], pixel labels
 * [rows, P] and each row's image; the training rows of train and all with their mode labels; and
 * meta.json (dim, pixels per patch, classes, ignored labels, background, the C grid).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../runtime/atomic.js';
import { writeNpy } from '../runtime/npy.js';
import { LOGREG_C_GRID } from './logreg.js';
import type { SegSplits } from './protocol.js';

export function saveSegSplits(dir: string, s: SegSplits): void {
  fs.mkdirSync(dir, { recursive: true });
  const npy = (name: string, data: Float32Array | Int32Array, shape: number[]) => writeNpy(path.join(dir, `${name}.npy`), data, shape);
  for (const name of ['train', 'val', 'all', 'test'] as const) {
    const set = s[name];
    const rows = set.rowImage.length;
    npy(`${name}_features`, set.feats, [rows, s.dim]);
    npy(`${name}_pixels`, set.pixels, [rows, s.pixelsPerPatch]);
    npy(`${name}_image`, set.rowImage, [rows]);
  }
  for (const [name, t] of [
    ['train', s.trainRows],
    ['all', s.allRows],
  ] as const) {
    npy(`${name}_rows`, t.rows, [t.rows.length]);
    npy(`${name}_modes`, t.modes, [t.modes.length]);
  }
  const meta = {
    dim: s.dim,
    pixelsPerPatch: s.pixelsPerPatch,
    classes: s.classes,
    ignore: s.ignore,
    background: s.background ?? null,
    logregC: LOGREG_C_GRID,
  };
  writeFileAtomic(path.join(dir, 'meta.json'), `${JSON.stringify(meta, null, 2)}\n`);
}
