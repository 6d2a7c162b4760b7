/**
 * safetensors (8-byte little-endian header length, JSON header, raw little-endian data): read and
 * write without Python. Reading converts F32/F64/BF16/F16 to float32 and I32/I64 to int32.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ioError, makeDirs } from '../../runtime/atomic.js';
import { bfloat16ToFloat32, float16ToFloat32 } from './dtypes.js';
import type { LoadedTensor } from './pth.js';

const DTYPE_BYTES: Record<string, number> = { F32: 4, F64: 8, BF16: 2, F16: 2, I32: 4, I64: 8 };
const SOURCE_NAMES: Record<string, string> = {
  F32: 'float32',
  F64: 'float64',
  BF16: 'bfloat16',
  F16: 'float16',
  I32: 'int32',
  I64: 'int64',
};

export interface SafetensorsFile {
  tensors: Map<string, LoadedTensor>;
  metadata: Record<string, string>;
}

export function readSafetensors(file: string): SafetensorsFile {
  const buf = fs.readFileSync(file);
  const fail = (why: string): never => {
    throw new Error(`${file}: not a readable safetensors file (${why})`);
  };
  if (buf.length < 8) fail('shorter than its 8-byte header length');
  const headerLen = Number(buf.readBigUInt64LE(0));
  if (8 + headerLen > buf.length) fail(`header of ${headerLen} bytes runs past the end (truncated?)`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(buf.toString('utf8', 8, 8 + headerLen));
  } catch {
    return fail('header is not valid JSON');
  }
  const base = 8 + headerLen;
  const tensors = new Map<string, LoadedTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = v as Record<string, string>;
      continue;
    }
    const { dtype, shape, data_offsets } = v as { dtype: string; shape: number[]; data_offsets: [number, number] };
    const bytes = DTYPE_BYTES[dtype];
    if (!bytes) fail(`tensor ${name} has unsupported dtype ${dtype}`);
    const numel = shape.reduce((a, b) => a * b, 1);
    const [begin, end] = data_offsets;
    if (end - begin !== numel * bytes || base + end > buf.length) fail(`tensor ${name} data out of range (truncated?)`);
    const raw = new Uint8Array(buf.buffer, buf.byteOffset + base + begin, end - begin).slice();
    let data: Float32Array | Int32Array;
    switch (dtype) {
      case 'F32':
        data = new Float32Array(raw.buffer);
        break;
      case 'F64':
        data = Float32Array.from(new Float64Array(raw.buffer));
        break;
      case 'I32':
        data = new Int32Array(raw.buffer);
        break;
      case 'I64':
        data = Int32Array.from(new BigInt64Array(raw.buffer), Number);
        break;
      case 'BF16':
        data = bfloat16ToFloat32(new Uint16Array(raw.buffer));
        break;
      default:
        data = float16ToFloat32(new Uint16Array(raw.buffer));
    }
    tensors.set(name, { dtype: data instanceof Float32Array ? 'float32' : 'int32', sourceDtype: SOURCE_NAMES[dtype], shape, data });
  }
  return { tensors, metadata };
}

/** Writes float32 / int32 tensors atomically (temp file, then rename). */
export function writeSafetensors(
  file: string,
  tensors: Map<string, { shape: number[]; data: Float32Array | Int32Array }>,
  metadata: Record<string, string> = {},
): void {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const [name, t] of tensors) {
    const n = t.data.byteLength;
    header[name] = { dtype: t.data instanceof Float32Array ? 'F32' : 'I32', shape: t.shape, data_offsets: [offset, offset + n] };
    offset += n;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(headerBytes.length));
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    makeDirs(path.dirname(file));
    const fd = fs.openSync(tmp, 'w');
    try {
      fs.writeSync(fd, len);
      fs.writeSync(fd, headerBytes);
      for (const t of tensors.values()) fs.writeSync(fd, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw ioError(e, `write ${file}`);
  }
}
