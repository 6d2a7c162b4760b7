/**
 * Per-image PCA feature maps (eval spec 4): whitened principal components of an image's patch
 * features, signs fixed so each component's skewness is >= 0, components 1-3 mapped linearly
 * from [-2.3, 2.3] to RGB, nearest-upsampled; saved next to the input image as one PNG.
 */
import { renameSync, rmSync } from 'node:fs';
import { Matrix, SingularValueDecomposition } from 'ml-matrix';
import sharp from 'sharp';

/** Whitened projections [N, comps] of x [N, D]. */
export function pcaProjections(x: Float32Array, n: number, d: number, comps: number): Float64Array {
  const m = new Matrix(n, d);
  for (let j = 0; j < d; j++) {
    let mean = 0;
    for (let i = 0; i < n; i++) mean += x[i * d + j] / n;
    for (let i = 0; i < n; i++) m.set(i, j, x[i * d + j] - mean);
  }
  const svd = new SingularValueDecomposition(m, { autoTranspose: true });
  const u = svd.leftSingularVectors; // [N, r]; whitened scores are U * sqrt(N)
  const out = new Float64Array(n * comps);
  for (let c = 0; c < comps; c++) {
    const col = Array.from({ length: n }, (_, i) => (c < u.columns ? u.get(i, c) * Math.sqrt(n) : 0));
    const skew = col.reduce((a, v) => a + v ** 3, 0);
    const sign = skew < 0 ? -1 : 1;
    col.forEach((v, i) => (out[i * comps + c] = sign * v));
  }
  return out;
}

/** RGB bytes [gh*scale, gw*scale, 3] of components 1-3. */
export function pcaRgb(proj: Float64Array, gh: number, gw: number, scale: number): Uint8Array {
  const out = new Uint8Array(gh * scale * gw * scale * 3);
  const w = gw * scale;
  for (let y = 0; y < gh * scale; y++) {
    for (let x = 0; x < w; x++) {
      const t = Math.floor(y / scale) * gw + Math.floor(x / scale);
      for (let c = 0; c < 3; c++) {
        const v = ((proj[t * 3 + c] + 2.3) / 4.6) * 255;
        out[(y * w + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
  return out;
}

/** Saves [input | PCA RGB] side by side. `image` is RGB or grey bytes of side `size`. */
export async function savePcaPicture(
  file: string,
  image: Uint8Array,
  channels: number,
  size: number,
  feats: Float32Array,
  grid: number,
  dim: number,
): Promise<void> {
  const proj = pcaProjections(feats, grid * grid, dim, 3);
  const scale = Math.max(1, Math.round(size / grid));
  const side = grid * scale;
  const rgb = pcaRgb(proj, grid, grid, scale);
  const input = await sharp(Buffer.from(image), { raw: { width: size, height: size, channels: channels as 1 | 3 } })
    .toColourspace('srgb')
    .resize(side, side, { kernel: 'nearest' })
    .removeAlpha()
    .raw()
    .toBuffer();
  const rgbInput = input.length === side * side ? Buffer.from(Array.from(input).flatMap((v) => [v, v, v])) : input;
  const canvas = Buffer.alloc(side * 2 * side * 3);
  for (let y = 0; y < side; y++) {
    rgbInput.copy(canvas, y * side * 2 * 3, y * side * 3, (y + 1) * side * 3);
    Buffer.from(rgb.buffer, rgb.byteOffset + y * side * 3, side * 3).copy(canvas, (y * side * 2 + side) * 3);
  }
  const tmp = `${file}.tmp-${process.pid}.png`;
  try {
    await sharp(canvas, { raw: { width: side * 2, height: side, channels: 3 } })
      .png()
      .toFile(tmp);
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new Error(`cannot write ${file}: ${(e as Error).message.split('\n')[0]}`);
  }
}
