/**
 * Patch-level views of dense labels (eval spec 3.1, 3.3): each patch carries its p x p pixel
 * labels (row-major inside the patch); its training target is their mode (ties -> smallest).
 */

/** Label maps [B, H, W] -> per-patch pixel labels [B * gh * gw, p * p] (patches row-major). */
export function patchPixelLabels(labels: Int32Array, b: number, h: number, w: number, p: number): Int32Array {
  const gh = Math.floor(h / p);
  const gw = Math.floor(w / p);
  const out = new Int32Array(b * gh * gw * p * p);
  let o = 0;
  for (let n = 0; n < b; n++) {
    for (let r = 0; r < gh; r++) {
      for (let c = 0; c < gw; c++) {
        for (let i = 0; i < p; i++) {
          const row = (n * h + r * p + i) * w + c * p;
          out.set(labels.subarray(row, row + p), o);
          o += p;
        }
      }
    }
  }
  return out;
}

/** Per-patch prediction arrays [B * gh * gw, p * p] back to label maps [B, H, W]. */
export function unpatchLabels(perPatch: Int32Array, b: number, h: number, w: number, p: number): Int32Array {
  const gh = Math.floor(h / p);
  const gw = Math.floor(w / p);
  const out = new Int32Array(b * h * w);
  let o = 0;
  for (let n = 0; n < b; n++) {
    for (let r = 0; r < gh; r++) {
      for (let c = 0; c < gw; c++) {
        for (let i = 0; i < p; i++) {
          out.set(perPatch.subarray(o, o + p), (n * h + r * p + i) * w + c * p);
          o += p;
        }
      }
    }
  }
  return out;
}

/** Mode of each row of `pixelLabels` [n, P] (ties -> smallest label). */
export function patchModes(pixelLabels: Int32Array, pixelsPerPatch: number, numLabels: number): Int32Array {
  const n = pixelLabels.length / pixelsPerPatch;
  const out = new Int32Array(n);
  const counts = new Int32Array(numLabels);
  for (let i = 0; i < n; i++) {
    const row = pixelLabels.subarray(i * pixelsPerPatch, (i + 1) * pixelsPerPatch);
    for (const l of row) counts[l]++;
    let best = 0;
    let bestCount = -1;
    for (const l of row) {
      if (counts[l] > bestCount || (counts[l] === bestCount && l < best)) {
        best = l;
        bestCount = counts[l];
      }
    }
    for (const l of row) counts[l] = 0;
    out[i] = best;
  }
  return out;
}

/** Nearest-neighbour resize of a label map to s x s (torch 'nearest': src = floor(dst * in / out)). */
export function resizeLabels(data: Uint8Array, h: number, w: number, s: number): Int32Array {
  const out = new Int32Array(s * s);
  for (let y = 0; y < s; y++) {
    const sy = Math.min(h - 1, Math.floor((y * h) / s));
    for (let x = 0; x < s; x++) out[y * s + x] = data[sy * w + Math.min(w - 1, Math.floor((x * w) / s))];
  }
  return out;
}

/** A split's pixel labels per kept patch row, independent of the model: computed once per evaluation. */
export interface PatchLabels {
  /** [rows, p * p] */
  pixels: Int32Array;
  /** [rows]: the image each row belongs to. */
  rowImage: Int32Array;
  images: number;
}

/**
 * Pixel labels of the patch rows that feature extraction keeps with `stride` (rows r of the
 * image-major [n * T] patch list with r % stride == 0), at the evaluation side `size`.
 */
export async function patchLabels(
  n: number,
  label: (i: number) => Promise<{ data: Uint8Array; height: number; width: number }>,
  size: number,
  p: number,
  stride = 1,
): Promise<PatchLabels> {
  const t = Math.floor(size / p) ** 2;
  const pp = p * p;
  const rows = Math.ceil((n * t) / stride);
  const pixels = new Int32Array(rows * pp);
  const rowImage = new Int32Array(rows);
  for (let i = 0; i < n; i++) {
    const l = await label(i);
    const perPatch = patchPixelLabels(resizeLabels(l.data, l.height, l.width, size), 1, size, size, p); // [T, p*p]
    for (let r = Math.ceil((i * t) / stride) * stride; r < (i + 1) * t; r += stride) {
      pixels.set(perPatch.subarray((r - i * t) * pp, (r - i * t + 1) * pp), (r / stride) * pp);
      rowImage[r / stride] = i;
    }
  }
  return { pixels, rowImage, images: n };
}
