/**
 * Minimal ZIP reader for checkpoint containers (torch.save writes an uncompressed zip whose
 * records are aligned to 64 bytes). Supports stored and deflated records and ZIP64 sizes.
 */
import { inflateRawSync } from 'node:zlib';

export interface ZipEntry {
  name: string;
  method: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

function fail(file: string, why: string): never {
  throw new Error(`${file}: not a readable checkpoint zip (${why})`);
}

export function readZipDirectory(buf: Buffer, file: string): Map<string, ZipEntry> {
  // End of central directory: the last 0x06054b50 signature within the final 64 KiB + 22 bytes.
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 65557); i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) fail(file, 'no end-of-central-directory record; the file is truncated or not a zip');
  let count = buf.readUInt16LE(eocd + 10);
  let cdOffset = buf.readUInt32LE(eocd + 16);
  if (cdOffset === 0xffffffff || count === 0xffff) {
    const locator = eocd - 20;
    if (locator < 0 || buf.readUInt32LE(locator) !== 0x07064b50) fail(file, 'ZIP64 locator missing');
    const z64 = Number(buf.readBigUInt64LE(locator + 8));
    if (buf.readUInt32LE(z64) !== 0x06064b50) fail(file, 'ZIP64 end record missing');
    count = Number(buf.readBigUInt64LE(z64 + 32));
    cdOffset = Number(buf.readBigUInt64LE(z64 + 48));
  }
  const entries = new Map<string, ZipEntry>();
  let o = cdOffset;
  for (let i = 0; i < count; i++) {
    if (o + 46 > buf.length || buf.readUInt32LE(o) !== 0x02014b50) fail(file, `bad central directory entry ${i}`);
    const method = buf.readUInt16LE(o + 10);
    let compressedSize = buf.readUInt32LE(o + 20);
    let size = buf.readUInt32LE(o + 24);
    const nameLen = buf.readUInt16LE(o + 28);
    const extraLen = buf.readUInt16LE(o + 30);
    const commentLen = buf.readUInt16LE(o + 32);
    let localHeaderOffset = buf.readUInt32LE(o + 42);
    const name = buf.toString('utf8', o + 46, o + 46 + nameLen);
    // ZIP64 extra field (id 1) holds the 64-bit values that are 0xffffffff above, in order.
    let e = o + 46 + nameLen;
    const extraEnd = e + extraLen;
    while (e + 4 <= extraEnd) {
      const id = buf.readUInt16LE(e);
      const len = buf.readUInt16LE(e + 2);
      if (id === 1) {
        let f = e + 4;
        if (size === 0xffffffff) {
          size = Number(buf.readBigUInt64LE(f));
          f += 8;
        }
        if (compressedSize === 0xffffffff) {
          compressedSize = Number(buf.readBigUInt64LE(f));
          f += 8;
        }
        if (localHeaderOffset === 0xffffffff) localHeaderOffset = Number(buf.readBigUInt64LE(f));
      }
      e += 4 + len;
    }
    entries.set(name, { name, method, compressedSize, size, localHeaderOffset });
    o = extraEnd + commentLen;
  }
  return entries;
}

/** The bytes of one record (a view into `buf` when stored uncompressed). */
export function readZipEntry(buf: Buffer, entry: ZipEntry, file: string): Buffer {
  const o = entry.localHeaderOffset;
  if (o + 30 > buf.length || buf.readUInt32LE(o) !== 0x04034b50) fail(file, `bad local header for ${entry.name}`);
  const start = o + 30 + buf.readUInt16LE(o + 26) + buf.readUInt16LE(o + 28);
  const end = start + entry.compressedSize;
  if (end > buf.length) fail(file, `record ${entry.name} runs past the end of the file (truncated?)`);
  const raw = buf.subarray(start, end);
  if (entry.method === 0) return raw;
  if (entry.method === 8) return inflateRawSync(raw);
  return fail(file, `record ${entry.name} uses unsupported compression method ${entry.method}`);
}
