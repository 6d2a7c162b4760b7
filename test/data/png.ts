/** A minimal PNG encoder for test fixtures: 8-bit greyscale or palette label maps, any filter-0 rows. */
import { crc32, deflateSync } from 'node:zlib';

function chunk(type: string, body: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  const tb = Buffer.concat([Buffer.from(type, 'latin1'), body]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(tb));
  return Buffer.concat([len, tb, crc]);
}

export function encodeLabelPng(data: Uint8Array, width: number, height: number, palette: boolean): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = palette ? 3 : 0;
  const raw = Buffer.alloc(height * (width + 1));
  for (let y = 0; y < height; y++) {
    // Alternate filters 0 (none) and 1 (sub) to exercise the decoder.
    const f = y % 2;
    raw[y * (width + 1)] = f;
    for (let x = 0; x < width; x++) {
      const v = data[y * width + x];
      raw[y * (width + 1) + 1 + x] = f === 1 && x > 0 ? (v - data[y * width + x - 1]) & 0xff : v;
    }
  }
  const parts = [Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr)];
  if (palette) parts.push(chunk('PLTE', Buffer.from(Array.from({ length: 256 * 3 }, (_, i) => (i * 37) % 256))));
  parts.push(chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0)));
  return Buffer.concat(parts);
}
