/**
 * NumPy's .npy format, so that features and labels can be checked with other tools (scikit-learn:
 * bench/sklearn_protocol.py, bench/logreg_sklearn.py) on the very same arrays. Hand-written: the
 * format is a 10-byte preamble and a Python-literal header, and the npm packages for it read whole
 * files into one Buffer (2 GiB at most) or pull in a NumPy-like array library.
 */
import * as fs from 'node:fs';

/**
 * NumPy .npy reader (v1-v3, little-endian float32 / int32 / int64 C-order): data and shape. Read
 * through a file descriptor into the array itself: readFileSync stops at 2 GiB, and a 500k x 1024
 * float32 array is 2.05 GB.
 */
export function readNpy(file: string): { data: Float32Array | Int32Array; shape: number[] } {
  const fd = fs.openSync(file, 'r');
  try {
    const pre = Buffer.alloc(12);
    fs.readSync(fd, pre, 0, 12, 0);
    if (pre.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(`${file}: not a .npy file`);
    const major = pre[6];
    const len = major === 1 ? pre.readUInt16LE(8) : pre.readUInt32LE(8);
    const start = major === 1 ? 10 : 12;
    const headerBytes = Buffer.alloc(len);
    fs.readSync(fd, headerBytes, 0, len, start);
    const header = headerBytes.toString('latin1');
    const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
    const shape = (/'shape':\s*\(([^)]*)\)/.exec(header)?.[1] ?? '')
      .split(',')
      .map((v) => v.trim())
      .filter(Boolean)
      .map(Number);
    if (/'fortran_order':\s*True/.test(header)) throw new Error(`${file}: Fortran order is not supported (save with np.ascontiguousarray)`);
    const n = shape.reduce((a, b) => a * b, 1);
    const width = descr === '<i8' ? 8 : 4;
    if (descr !== '<f4' && descr !== '<i4' && descr !== '<i8')
      throw new Error(`${file}: dtype ${descr} is not supported (float32 features, int32 or int64 labels)`);
    const bytes = new Uint8Array(n * width);
    for (let done = 0; done < bytes.length; ) {
      const got = fs.readSync(fd, bytes, done, Math.min(bytes.length - done, 2 ** 30), start + len + done);
      if (got === 0) throw new Error(`${file}: shorter than its shape (${shape.join(' x ')}) says`);
      done += got;
    }
    if (descr === '<f4') return { data: new Float32Array(bytes.buffer), shape };
    if (descr === '<i4') return { data: new Int32Array(bytes.buffer), shape };
    return { data: Int32Array.from(new BigInt64Array(bytes.buffer), Number), shape };
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * NumPy .npy v1.0 writer for little-endian float32 / int32 C-order arrays, written whole (a temp
 * file renamed into place).
 */
export function writeNpy(file: string, data: Float32Array | Int32Array, shape: number[]): void {
  const descr = data instanceof Float32Array ? '<f4' : '<i4';
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  header += `${' '.repeat(64 - ((10 + header.length + 1) % 64))}\n`;
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  const tmp = `${file}.tmp-${process.pid}`;
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, Buffer.concat([pre, Buffer.from(header, 'latin1')]));
    const body = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    for (let done = 0; done < body.length; ) done += fs.writeSync(fd, body, done, Math.min(body.length - done, 2 ** 30));
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}
