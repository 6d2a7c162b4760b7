/** safetensors round trip, atomic writes, and clear errors on damaged files. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readSafetensors, writeSafetensors } from '../../../src/model/io/safetensors.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'capi-st-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('safetensors', () => {
  it('round-trips float32 and int32 tensors and metadata', () => {
    const file = path.join(tmp, 'a.safetensors');
    const w = Float32Array.from({ length: 12 }, (_, i) => i / 7 - 0.5);
    writeSafetensors(
      file,
      new Map([
        ['w', { shape: [3, 4], data: w }],
        ['idx', { shape: [2], data: Int32Array.from([5, -2]) }],
      ]),
      { step: '7' },
    );
    const r = readSafetensors(file);
    expect(r.metadata.step).toBe('7');
    expect(r.tensors.get('w')!.shape).toEqual([3, 4]);
    expect(Array.from(r.tensors.get('w')!.data)).toEqual(Array.from(w));
    expect(Array.from(r.tensors.get('idx')!.data)).toEqual([5, -2]);
    // Header padded so data starts 8-byte aligned, as the format recommends.
    expect(Number(fs.readFileSync(file).readBigUInt64LE(0)) % 8).toBe(0);
  });

  it('a failed write leaves the previous file intact and no temp file', () => {
    const file = path.join(tmp, 'b.safetensors');
    writeSafetensors(file, new Map([['x', { shape: [1], data: Float32Array.from([1]) }]]));
    const before = fs.readFileSync(file);
    const broken = {
      shape: [1],
      get data(): Float32Array {
        throw new Error('disk full');
      },
    };
    expect(() => writeSafetensors(file, new Map([['x', broken]]))).toThrow('disk full');
    expect(fs.readFileSync(file).equals(before)).toBe(true);
    expect(fs.readdirSync(tmp).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('truncated and garbage files give one-line errors naming the file', () => {
    const file = path.join(tmp, 'c.safetensors');
    writeSafetensors(file, new Map([['x', { shape: [64], data: new Float32Array(64) }]]));
    const bytes = fs.readFileSync(file);
    const cut = path.join(tmp, 'cut.safetensors');
    fs.writeFileSync(cut, bytes.subarray(0, bytes.length - 10));
    expect(() => readSafetensors(cut)).toThrow(/cut\.safetensors: not a readable safetensors file \(tensor x data out of range/);
    const junk = path.join(tmp, 'junk.safetensors');
    fs.writeFileSync(junk, Buffer.from('0123456789abcdef'));
    expect(() => readSafetensors(junk)).toThrow(/junk\.safetensors: not a readable safetensors file/);
  });
});
