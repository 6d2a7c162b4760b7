/**
 * A folder of images (JPEG, PNG, WebP, any size), decoded with sharp. Used to pretrain on a
 * user's own images; class sub-folders (ImageNet style) give labels.
 */
import { createHash } from 'node:crypto';
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

/** An image file that cannot be decoded, with sharp's reason. */
export class BadImageError extends Error {
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`cannot read image ${file}: ${problem}`);
  }
}

/**
 * Decodes an image to 8-bit RGB, resized so that its shorter side is `shortSide` (0: as is).
 * A file sharp cannot read gives a one-line error naming it (a BadImageError).
 */
export async function decodeImage(file: string, shortSide = 0): Promise<RawImage> {
  try {
    let img = sharp(file, { failOn: 'error' }).removeAlpha().toColourspace('srgb');
    if (shortSide > 0) img = img.resize(shortSide, shortSide, { fit: 'outside', kernel: 'cubic' });
    const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), height: info.height, width: info.width, channels: 3 };
  } catch (e) {
    throw new BadImageError(file, (e as Error).message.split('\n')[0]);
  }
}

/**
 * Folders up to this many images are decoded whole before training (a truncated body passes a
 * header check); larger ones get a header check, and a file that fails to decode later is named
 * at the step that reads it.
 */
export const FULL_DECODE_CHECK_MAX = 20_000;

/** Accepted image sizes: smaller images carry no patch to learn from, larger ones are decode bombs. */
export const IMAGE_BOUNDS = { minSide: 8, maxPixels: 50e6 };

export interface ImageCheck {
  file: string;
  problem?: string;
}

/**
 * A pass over the files: readable by sharp, within IMAGE_BOUNDS, and (`decode`) decodable to the
 * end (shrunk on load, which still reads the whole file). Returns the problem of each bad file.
 */
export async function checkImages(
  files: string[],
  onProgress?: (done: number, total: number) => void,
  decode = false,
): Promise<ImageCheck[]> {
  const out: ImageCheck[] = [];
  for (let i = 0; i < files.length; i++) {
    const file = files[i];
    try {
      const m = await sharp(file, { failOn: 'error', limitInputPixels: false }).metadata();
      const w = m.width ?? 0;
      const h = m.height ?? 0;
      if (Math.min(w, h) < IMAGE_BOUNDS.minSide)
        out.push({ file, problem: `${w}x${h} is smaller than ${IMAGE_BOUNDS.minSide} px on a side` });
      else if (w * h > IMAGE_BOUNDS.maxPixels) out.push({ file, problem: `${w}x${h} is over ${IMAGE_BOUNDS.maxPixels / 1e6} megapixels` });
      else {
        if (decode) await sharp(file, { failOn: 'error' }).resize(32, 32, { fit: 'inside' }).raw().toBuffer();
        out.push({ file });
      }
    } catch (e) {
      out.push({ file, problem: `unreadable (${(e as Error).message.split('\n')[0]})` });
    }
    if (i % 256 === 255 || i === files.length - 1) onProgress?.(i + 1, files.length);
  }
  return out;
}

export interface OpenedImageFolder {
  dataset: LabeledDataset;
  /** Files left out by `skipBad`, with why. */
  skipped: ImageCheck[];
  /** Hash of the file list with sizes and modification times: changes when the folder does. */
  fingerprint: string;
}

/**
 * Every image under `dir`, checked first (checkImages); the label is the first-level
 * sub-folder (sorted), or 0 when images sit directly in `dir`. A bad file stops with its name,
 * unless `skipBad`. `shortSide` bounds decode cost for large photos.
 */
export async function openImageFolder(
  dir: string,
  opts: { shortSide?: number; skipBad?: boolean; onProgress?: (done: number, total: number) => void; fullDecodeMax?: number } = {},
): Promise<OpenedImageFolder> {
  const listed = listFolder(dir);
  const checks = await checkImages(listed, opts.onProgress, listed.length <= (opts.fullDecodeMax ?? FULL_DECODE_CHECK_MAX));
  const bad = checks.filter((c) => c.problem);
  if (bad.length && !opts.skipBad) {
    const more = bad.length > 1 ? ` (and ${bad.length - 1} more bad files)` : '';
    throw new Error(`${bad[0].file}: ${bad[0].problem}${more}; fix or remove it, or pass --skip-bad-images to leave bad files out`);
  }
  const files = checks.filter((c) => !c.problem).map((c) => c.file);
  if (!files.length) throw new Error(`no usable images under ${dir} (${bad.length} bad files)`);
  const h = createHash('sha256');
  for (const f of files) {
    const st = fs.statSync(f);
    h.update(`${path.relative(dir, f)}\0${st.size}\0${st.mtimeMs}\n`);
  }
  return { dataset: folderDataset(dir, files, opts.shortSide ?? 0), skipped: bad, fingerprint: h.digest('hex').slice(0, 16) };
}

function listFolder(dir: string): string[] {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new Error(`image folder not found: ${dir} (pass --data DIR with images or class sub-folders)`);
  }
  const files = listImages(dir);
  if (files.length === 0) throw new Error(`no images (jpg, png, webp, bmp, tif) found under ${dir}`);
  return files;
}

/** Every image under `dir` without a check (evaluation splits, whose files are read as they are used). */
export function imageFolder(dir: string, shortSide = 0): LabeledDataset {
  return folderDataset(dir, listFolder(dir), shortSide);
}

function folderDataset(dir: string, files: string[], shortSide: number): LabeledDataset {
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
