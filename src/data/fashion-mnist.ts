/**
 * Fashion-MNIST from the standard idx files (optionally gzipped), found via an explicit folder,
 * then the Debian package `dataset-fashion-mnist`.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { LabeledDataset, RawImage } from './dataset.js';

export const DEBIAN_FMNIST_DIR = '/usr/share/datasets/fashion-mnist';

export const FMNIST_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

export type FmnistSplit = 'train' | 't10k';

function findFile(dir: string, stem: string): string | undefined {
  for (const name of [`${stem}.gz`, stem]) {
    const p = path.join(dir, name);
    if (fs.existsSync(p)) return p;
  }
  return undefined;
}

/** Where the idx files are: `dir` if given, else the Debian package; a one-line error otherwise. */
export function locateFashionMnist(dir?: string): string {
  const candidates = dir ? [dir] : [DEBIAN_FMNIST_DIR];
  for (const d of candidates) if (findFile(d, 'train-images-idx3-ubyte')) return d;
  throw new Error(
    `Fashion-MNIST not found in ${candidates.join(', ')} (no train-images-idx3-ubyte[.gz]): ` +
      `install it with 'apt-get install dataset-fashion-mnist' or pass --data-dir DIR holding the upstream idx files`,
  );
}

/** Parses an idx file: magic 0x0000080D (D = number of dims), big-endian dims, then uint8 data. */
export function readIdx(file: string): { dims: number[]; data: Uint8Array } {
  let buf: Buffer = fs.readFileSync(file);
  if (buf[0] === 0x1f && buf[1] === 0x8b) buf = gunzipSync(buf);
  if (buf.length < 4 || buf[0] !== 0 || buf[1] !== 0 || buf[2] !== 0x08) {
    throw new Error(`${file}: not an idx file of unsigned bytes (bad magic number)`);
  }
  const nDims = buf[3];
  const dims = Array.from({ length: nDims }, (_, i) => buf.readUInt32BE(4 + 4 * i));
  const offset = 4 + 4 * nDims;
  const size = dims.reduce((a, b) => a * b, 1);
  if (buf.length < offset + size) throw new Error(`${file}: truncated idx file (${buf.length - offset} of ${size} bytes)`);
  return { dims, data: new Uint8Array(buf.buffer, buf.byteOffset + offset, size) };
}

export function loadFashionMnist(dir: string, split: FmnistSplit, limit = Infinity): LabeledDataset {
  const imagesFile = findFile(dir, `${split}-images-idx3-ubyte`);
  const labelsFile = findFile(dir, `${split}-labels-idx1-ubyte`);
  if (!imagesFile || !labelsFile) {
    throw new Error(
      `Fashion-MNIST ${split} split not found in ${dir}: expected ${split}-images-idx3-ubyte[.gz] and ${split}-labels-idx1-ubyte[.gz]`,
    );
  }
  const images = readIdx(imagesFile);
  const labels = readIdx(labelsFile);
  const [n0, h, w] = images.dims;
  if (labels.dims[0] !== n0) throw new Error(`${labelsFile}: ${labels.dims[0]} labels for ${n0} images`);
  const n = Math.min(n0, limit);
  const fingerprint = createHash('sha256')
    .update(images.data.subarray(0, n * h * w))
    .update(labels.data.subarray(0, n))
    .digest('hex')
    .slice(0, 16);
  return {
    description: `fashion-mnist:${split} (${dir})`,
    fingerprint,
    size: n,
    numClasses: 10,
    classNames: FMNIST_CLASSES,
    label: (i) => labels.data[i],
    load: async (i): Promise<RawImage> => ({ data: images.data.subarray(i * h * w, (i + 1) * h * w), height: h, width: w, channels: 1 }),
  };
}
