/**
 * Writes the small real Fashion-MNIST slice committed under data/fmnist-slice (used by tests):
 * the first 1000 training and 200 test images with their labels, as gzipped idx files.
 * Usage: npx tsx scripts/make-fmnist-slice.ts [SOURCE_DIR]
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { locateFashionMnist, readIdx } from '../src/data/fashion-mnist.js';

const src = locateFashionMnist(process.argv[2]);
const out = 'data/fmnist-slice';
fs.mkdirSync(out, { recursive: true });
for (const [split, n] of [
  ['train', 1000],
  ['t10k', 200],
] as const) {
  for (const kind of ['images-idx3', 'labels-idx1'] as const) {
    const stem = `${split}-${kind}-ubyte`;
    const { dims, data } = readIdx(path.join(src, `${stem}.gz`));
    const per = dims.slice(1).reduce((a, b) => a * b, 1);
    const header = Buffer.alloc(4 + 4 * dims.length);
    header.writeUInt32BE(0x0800 | dims.length, 0);
    [n, ...dims.slice(1)].forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
    const body = Buffer.from(data.subarray(0, n * per));
    fs.writeFileSync(path.join(out, `${stem}.gz`), gzipSync(Buffer.concat([header, body]), { level: 9 }));
  }
}
console.log(`wrote ${out}`);
