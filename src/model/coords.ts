/**
 * Token coordinates (method spec 2.2, 2.3): patches on an evenly spaced grid over [0, 1] (row,
 * col), registers walking the border of the unit square, optionally mapped into the bounding box
 * of each image's visible patches. All values are float32, as in the reference.
 */

/** torch.linspace(0, 1, n) in float32, which computes the upper half from the end (2/3 -> 0.66666663). */
export function torchLinspace01(n: number): Float32Array {
  const out = new Float32Array(n);
  if (n === 1) return out;
  const step = Math.fround(1 / (n - 1));
  const half = Math.floor(n / 2);
  for (let i = 0; i < n; i++) {
    out[i] = i < half ? Math.fround(i * step) : Math.fround(1 - Math.fround((n - 1 - i) * step));
  }
  return out;
}

/** Edge coordinates of R registers (R divisible by 4), [R, 2] flattened. */
export function registerEdgeCoords(r: number): Float32Array {
  const out = new Float32Array(2 * r);
  const s = r / 4;
  for (let j = 0; j < s; j++) {
    const t = j / s;
    const put = (i: number, u: number, v: number) => {
      out[2 * i] = u;
      out[2 * i + 1] = v;
    };
    put(j, t, 0);
    put(s + j, 1, t);
    put(2 * s + j, 1 - t, 1);
    put(3 * s + j, 0, 1 - t);
  }
  return out;
}

/** Coordinates [B, R + n, 2] for registers followed by the given patch positions of each image. */
export function tokenCoords(
  gridH: number,
  gridW: number,
  registers: number,
  positions: Int32Array[],
  scaleToVisible: boolean,
): Float32Array {
  const rows = torchLinspace01(gridH);
  const cols = torchLinspace01(gridW);
  const reg = registerEdgeCoords(registers);
  const b = positions.length;
  const n = positions[0]?.length ?? 0;
  const t = registers + n;
  const out = new Float32Array(b * t * 2);
  for (let i = 0; i < b; i++) {
    const base = i * t * 2;
    let uMin = Infinity,
      uMax = -Infinity,
      vMin = Infinity,
      vMax = -Infinity;
    positions[i].forEach((pos, j) => {
      const u = rows[Math.floor(pos / gridW)];
      const v = cols[pos % gridW];
      out[base + 2 * (registers + j)] = u;
      out[base + 2 * (registers + j) + 1] = v;
      uMin = Math.min(uMin, u);
      uMax = Math.max(uMax, u);
      vMin = Math.min(vMin, v);
      vMax = Math.max(vMax, v);
    });
    for (let k = 0; k < registers; k++) {
      let u = reg[2 * k];
      let v = reg[2 * k + 1];
      if (scaleToVisible && n > 0) {
        u = Math.fround(uMin + Math.fround(u * Math.fround(uMax - uMin)));
        v = Math.fround(vMin + Math.fround(v * Math.fround(vMax - vMin)));
      }
      out[base + 2 * k] = u;
      out[base + 2 * k + 1] = v;
    }
  }
  return out;
}

/** Coordinates [B, n, 2] of the given positions without registers (predictor queries). */
export function patchCoords(gridH: number, gridW: number, positions: Int32Array[]): Float32Array {
  return tokenCoords(gridH, gridW, 0, positions, false);
}

/** 0..N-1 for each of B images. */
export function allPositions(b: number, n: number): Int32Array[] {
  return Array.from({ length: b }, () => Int32Array.from({ length: n }, (_, i) => i));
}
