/**
 * A folder of images (JPEG, PNG, WebP, any size), decoded with sharp. Used to pretrain on a
 * user's own images; class sub-folders (ImageNet style) give labels.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import type { LabeledDataset, RawImage } from './dataset.js';

const IMAGE_EXT = new Set(['.jpg', '.jpeg', '.png', '.webp', '.bmp', '.tif', '.tiff']);

function listImages(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (IMAGE_EXT.has(path.extname(e.name).toLowerCase())) out.push(p);
    }
  };
  walk(dir);
  return out;
}

/**
 * Decodes an image to 8-bit RGB, resized so that its shorter side is `shortSide` (0: as is).
 * A file sharp cannot read gives a one-line error naming it.
 */
export async function decodeImage(file: string, shortSide = 0): Promise<RawImage> {
  try {
    let img = sharp(file, { failOn: 'error' }).removeAlpha().toColourspace('srgb');
    if (shortSide > 0) img = img.resize(shortSide, shortSide, { fit: 'outside', kernel: 'cubic' });
    const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), height: info.height, width: info.width, channels: 3 };
  } catch (e) {
    throw new Error(`cannot read image ${file}: ${(e as Error).message.split('\n')[0]}`);
  }
}

/**
 * Every image under `dir`; the label is the first-level sub-folder (sorted), or 0 when images
 * sit directly in `dir`. `shortSide` bounds decode cost for large photos.
 */
export function imageFolder(dir: string, shortSide = 0): LabeledDataset {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new Error(`image folder not found: ${dir} (pass --data DIR with images or class sub-folders)`);
  }
  const files = listImages(dir);
  if (files.length === 0) throw new Error(`no images (jpg, png, webp, bmp, tif) found under ${dir}`);
  const classNames = [
    ...new Set(
      files
        .map((f) => path.relative(dir, f).split(path.sep))
        .filter((p) => p.length > 1)
        .map((p) => p[0]),
    ),
  ].sort();
  const classIndex = new Map(classNames.map((c, i) => [c, i]));
  const labels = files.map((f) => classIndex.get(path.relative(dir, f).split(path.sep)[0]) ?? 0);
  return {
    description: `image-folder:${dir}`,
    size: files.length,
    numClasses: Math.max(1, classNames.length),
    classNames: classNames.length ? classNames : ['images'],
    label: (i) => labels[i],
    load: (i) => decodeImage(files[i], shortSide),
  };
}
