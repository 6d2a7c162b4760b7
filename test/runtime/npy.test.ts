/**
 * The .npy files we write are NumPy's format 1.0 (magic, version, a header padded so the data
 * starts on a 64-byte boundary, ending in a newline) and read back as written; the reader also
 * takes NumPy's int64 labels.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readNpy, writeNpy } from '../../src/runtime/npy.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'capi-npy-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('npy', () => {
  it('float32 [3, 5] and int32 [7]: the format 1.0 layout, read back as written, no temp file left', () => {
    const x = Float32Array.from({ length: 15 }, (_, i) => i / 3 - 2);
    const y = Int32Array.from([3, -1, 0, 2 ** 31 - 1, 5, 6, 7]);
    writeNpy(path.join(tmp, 'x.npy'), x, [3, 5]);
    writeNpy(path.join(tmp, 'y.npy'), y, [7]);
    const bytes = fs.readFileSync(path.join(tmp, 'x.npy'));
    expect(bytes.subarray(0, 8)).toEqual(Buffer.from([0x93, ...Buffer.from('NUMPY'), 1, 0]));
    const headerLength = bytes.readUInt16LE(8);
    expect((10 + headerLength) % 64).toBe(0);
    const header = bytes.toString('latin1', 10, 10 + headerLength);
    expect(header).toMatch(/^\{'descr': '<f4', 'fortran_order': False, 'shape': \(3, 5\), \} *\n$/);
    expect(bytes.length).toBe(10 + headerLength + 4 * 15);
    expect(readNpy(path.join(tmp, 'x.npy'))).toEqual({ data: x, shape: [3, 5] });
    expect(readNpy(path.join(tmp, 'y.npy'))).toEqual({ data: y, shape: [7] });
    expect(fs.readFileSync(path.join(tmp, 'y.npy')).toString('latin1', 10, 128)).toContain("'shape': (7,)");
    expect(fs.readdirSync(tmp).sort()).toEqual(['x.npy', 'y.npy']);
  });

  it("reads NumPy's int64 labels as int32", () => {
    const header = "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }";
    const padded = `${header}${' '.repeat(64 - ((10 + header.length + 1) % 64))}\n`;
    const pre = Buffer.from([0x93, ...Buffer.from('NUMPY'), 1, 0, padded.length & 0xff, padded.length >> 8]);
    const body = Buffer.from(new BigInt64Array([4n, 9n]).buffer);
    fs.writeFileSync(path.join(tmp, 'z.npy'), Buffer.concat([pre, Buffer.from(padded, 'latin1'), body]));
    expect(readNpy(path.join(tmp, 'z.npy'))).toEqual({ data: Int32Array.from([4, 9]), shape: [2] });
  });
});
