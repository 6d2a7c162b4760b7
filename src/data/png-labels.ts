/**
 * Label maps from 8-bit PNGs as stored indices: palette PNGs (Pascal VOC's SegmentationClass)
 * give their palette index, greyscale PNGs (ADE20K annotations, Cityscapes labelTrainIds) their
 * value. Image libraries convert palettes to RGB, which loses the class index, hence this reader.
 */
import * as fs from 'node:fs';
import { inflateSync } from 'node:zlib';

export interface LabelMap {
  data: Uint8Array;
  height: number;
  width: number;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a),
    pb = Math.abs(p - b),
    pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

export function readLabelPng(file: string): LabelMap {
  const buf = fs.readFileSync(file);
  const fail = (why: string): never => {
    throw new Error(`${file}: cannot read label map (${why})`);
  };
  if (buf.length < 8 || buf.readUInt32BE(0) !== 0x89504e47) fail('not a PNG file');
  let o = 8;
  let width = 0,
    height = 0,
    bitDepth = 0,
    colorType = 0,
    interlace = 0;
  const idat: Buffer[] = [];
  while (o + 8 <= buf.length) {
    const len = buf.readUInt32BE(o);
    const type = buf.toString('latin1', o + 4, o + 8);
    const body = buf.subarray(o + 8, o + 8 + len);
    if (type === 'IHDR') {
      width = body.readUInt32BE(0);
      height = body.readUInt32BE(4);
      bitDepth = body[8];
      colorType = body[9];
      interlace = body[12];
    } else if (type === 'IDAT') idat.push(body);
    else if (type === 'IEND') break;
    o += 12 + len;
  }
  if (bitDepth !== 8 || (colorType !== 0 && colorType !== 3)) {
    fail(`bit depth ${bitDepth}, colour type ${colorType}: expected an 8-bit palette or greyscale label PNG`);
  }
  if (interlace !== 0) fail('interlaced PNGs are not supported');
  let raw: Buffer;
  try {
    raw = inflateSync(Buffer.concat(idat));
  } catch {
    return fail('corrupt image data');
  }
  if (raw.length < height * (width + 1)) fail('truncated image data');
  const data = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (width + 1)];
    const line = raw.subarray(y * (width + 1) + 1, (y + 1) * (width + 1));
    const row = data.subarray(y * width, (y + 1) * width);
    const prev = y > 0 ? data.subarray((y - 1) * width, y * width) : new Uint8Array(width);
    for (let x = 0; x < width; x++) {
      const a = x > 0 ? row[x - 1] : 0;
      const b = prev[x];
      const c = x > 0 ? prev[x - 1] : 0;
      const v = line[x];
      switch (f) {
        case 0:
          row[x] = v;
          break;
        case 1:
          row[x] = v + a;
          break;
        case 2:
          row[x] = v + b;
          break;
        case 3:
          row[x] = v + ((a + b) >> 1);
          break;
        case 4:
          row[x] = v + paeth(a, b, c);
          break;
        default:
          fail(`unknown PNG filter ${f}`);
      }
    }
  }
  return { data, height, width };
}
