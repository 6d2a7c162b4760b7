/**
 * Patchify on the CPU (pixels never need gradients): NCHW images -> [B, N, C*p*p] with each patch
 * flattened as (c, i, j), the order of a flattened conv weight [d, C, p, p]. Tokens are row-major
 * over the patch grid (spec 2.1).
 */
export function patchify(images: Float32Array, b: number, c: number, h: number, w: number, p: number): Float32Array {
  const gh = Math.floor(h / p);
  const gw = Math.floor(w / p);
  const patchLen = c * p * p;
  const out = new Float32Array(b * gh * gw * patchLen);
  let o = 0;
  for (let n = 0; n < b; n++) {
    for (let r = 0; r < gh; r++) {
      for (let q = 0; q < gw; q++) {
        for (let ch = 0; ch < c; ch++) {
          const plane = (n * c + ch) * h * w;
          for (let i = 0; i < p; i++) {
            // A plain copy: a subarray view per patch row cost more than the copy (6 px rows).
            const row = plane + (r * p + i) * w + q * p;
            for (let j = 0; j < p; j++) out[o++] = images[row + j];
          }
        }
      }
    }
  }
  return out;
}

/** Selects per image the patches at `positions` (same count per image): [B, n, L]. */
export function selectPatches(patches: Float32Array, nTokens: number, patchLen: number, positions: Int32Array[]): Float32Array {
  const n = positions[0]?.length ?? 0;
  const out = new Float32Array(positions.length * n * patchLen);
  positions.forEach((pos, b) => {
    pos.forEach((t, j) => {
      const src = (b * nTokens + t) * patchLen;
      out.set(patches.subarray(src, src + patchLen), (b * n + j) * patchLen);
    });
  });
  return out;
}
