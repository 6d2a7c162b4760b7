/** Conversions of 16-bit float storages (checkpoints) to float32. */

export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

/** bfloat16 is the upper half of a float32. */
export function bfloat16ToFloat32(src: Uint16Array): Float32Array {
  const u32 = new Uint32Array(src.length);
  for (let i = 0; i < src.length; i++) u32[i] = src[i] << 16;
  return new Float32Array(u32.buffer);
}

export function float16ToFloat32(src: Uint16Array): Float32Array {
  return Float32Array.from(src, halfToFloat);
}
