/** Access to the reference fixture in ../shared (read-only ground truth; never copied here). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const FIXTURE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../shared/fixtures/capi-ref-tiny');
export const HAVE_FIXTURE = fs.existsSync(path.join(FIXTURE_DIR, 'manifest.json'));
if (!HAVE_FIXTURE) console.warn(`reference fixture not found at ${FIXTURE_DIR}: parity tests are skipped`);

export function fixturePath(name: string): string {
  return path.join(FIXTURE_DIR, name);
}

export function readF32(name: string): Float32Array {
  const b = fs.readFileSync(fixturePath(`${name}.bin`));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
}

export function readF64(name: string): Float64Array {
  const b = fs.readFileSync(fixturePath(`${name}.bin`));
  return new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
}

export function readI64(name: string): Int32Array {
  const b = fs.readFileSync(fixturePath(`${name}.bin`));
  return Int32Array.from(new BigInt64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length)), Number);
}

export function readJson<T>(name: string): T {
  return JSON.parse(fs.readFileSync(fixturePath(name), 'utf8')) as T;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
