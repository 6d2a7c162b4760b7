/**
 * The .pth reader against the fixture's checkpoints, the writer's round trip, strict key and
 * shape checks, and one-line errors for damaged files.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { backboneShapes, initBackbone } from '../../../src/model/capi.js';
import { loadEncoder } from '../../../src/model/io/load.js';
import { flattenStateDict, readPth } from '../../../src/model/io/pth.js';
import { writePth } from '../../../src/model/io/pth-writer.js';
import { fromReferenceStateDict, toReferenceStateDict } from '../../../src/model/io/reference.js';
import { Rng } from '../../../src/runtime/rng.js';
import { fixturePath, HAVE_FIXTURE, readJson } from '../../fixture.js';
import { TINY_REF_CONFIG } from '../reference-model.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'capi-pth-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface Manifest {
  checkpoints?: Record<string, { keys: { name: string; dtype: string; shape: number[] }[] }>;
}

/** float32 -> bfloat16 -> float32 with round-to-nearest-even (independent of the reader). */
function bf16(x: number): number {
  const u = new Uint32Array(new Float32Array([x]).buffer)[0];
  const rounded = (u + 0x7fff + ((u >>> 16) & 1)) & 0xffff0000;
  return new Float32Array(new Uint32Array([rounded >>> 0]).buffer)[0];
}

describe.skipIf(!HAVE_FIXTURE)('reading the reference checkpoints', () => {
  it('model.pth: every key of the manifest with its shape, in order', async () => {
    const sd = flattenStateDict(readPth(fixturePath('model.pth')));
    const manifest = readJson<Manifest & Record<string, unknown>>('manifest.json');
    const listed = JSON.stringify(manifest);
    expect(sd.size).toBe(42);
    const keys = [...sd.keys()];
    expect(keys[0]).toBe('backbone.mask_token');
    expect(keys[1]).toBe('backbone.registers');
    expect(keys.slice(-2)).toEqual(['head.last_layer.weight_g', 'head.last_layer.weight_v']);
    for (const [k, t] of sd) {
      expect(listed).toContain(k);
      expect(t.sourceDtype).toBe('float32');
      expect(t.data.length).toBe(t.shape.reduce((a, b) => a * b, 1));
    }
    expect(sd.get('backbone.patch_embed.weight')!.shape).toEqual([64, 3, 4, 4]);
    expect(sd.get('backbone.decoder.blocks.1.residual1.fn.k_proj.weight')!.shape).toEqual([64, 64]);
    expect(sd.get('head.last_layer.weight_g')!.shape).toEqual([32, 1]);
  });

  it('model_bf16.pth holds exactly the bfloat16 rounding of model.pth', async () => {
    const f32 = flattenStateDict(readPth(fixturePath('model.pth')));
    const b16 = flattenStateDict(readPth(fixturePath('model_bf16.pth')));
    expect([...b16.keys()]).toEqual([...f32.keys()]);
    for (const [k, t] of b16) {
      expect(t.sourceDtype).toBe('bfloat16');
      const ref = f32.get(k)!.data;
      for (let i = 0; i < ref.length; i++) expect(t.data[i]).toBe(bf16(ref[i]));
    }
  });

  it('heads.pth: student and clustering heads', async () => {
    const sd = flattenStateDict(readPth(fixturePath('heads.pth')));
    expect([...sd.keys()].sort()).toEqual([
      'student.head.last_layer.weight_g',
      'student.head.last_layer.weight_v',
      'teacher.head.layer.bias',
      'teacher.head.layer.weight',
    ]);
    const model = flattenStateDict(readPth(fixturePath('model.pth')));
    expect(Array.from(sd.get('student.head.last_layer.weight_v')!.data)).toEqual(Array.from(model.get('head.last_layer.weight_v')!.data));
  });

  it('loadEncoder infers the architecture from the file and loads strictly', async () => {
    const enc = await loadEncoder(fixturePath('model.pth'), { imageSize: 16, evalOnly: false });
    expect(enc.config).toMatchObject(TINY_REF_CONFIG);
    tf.dispose(Object.values(enc.params));
  });
});

describe('writing reference-layout checkpoints', () => {
  it('capi-ts -> reference .pth -> capi-ts gives identical weights', async () => {
    const params = initBackbone(TINY_REF_CONFIG, new Rng(3));
    const file = path.join(tmp, 'roundtrip.pth');
    const sd = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const [k, t] of toReferenceStateDict(params)) sd.set(k, { shape: t.shape, data: t.dataSync() as Float32Array });
    writePth(file, sd);
    const back = fromReferenceStateDict(flattenStateDict(readPth(file)), TINY_REF_CONFIG, file);
    expect(back.missing).toEqual([]);
    expect(back.unexpected).toEqual([]);
    for (const [name] of backboneShapes(TINY_REF_CONFIG)) {
      expect(Array.from(back.params[name].dataSync()), name).toEqual(Array.from(params[name].dataSync()));
    }
    tf.dispose([...Object.values(params), ...Object.values(back.params)]);
  });

  it.skipIf(!HAVE_FIXTURE)('re-writing the fixture checkpoint reproduces every tensor', () => {
    const orig = flattenStateDict(readPth(fixturePath('model.pth')));
    const file = path.join(tmp, 'rewrite.pth');
    writePth(file, new Map([...orig].map(([k, t]) => [k, { shape: t.shape, data: t.data as Float32Array }])));
    const again = flattenStateDict(readPth(file));
    expect([...again.keys()]).toEqual([...orig.keys()]);
    for (const [k, t] of again) expect(Array.from(t.data)).toEqual(Array.from(orig.get(k)!.data));
  });
});

describe.skipIf(!HAVE_FIXTURE)('damaged or mismatched checkpoints give one-line errors', () => {
  const bytes = HAVE_FIXTURE ? fs.readFileSync(fixturePath('model.pth')) : Buffer.alloc(0);
  const write = (name: string, b: Buffer) => {
    const f = path.join(tmp, name);
    fs.writeFileSync(f, b);
    return f;
  };
  const oneLine = async (f: () => unknown) => {
    try {
      await f();
    } catch (e) {
      const msg = (e as Error).message;
      expect(msg.includes('\n')).toBe(false);
      return msg;
    }
    throw new Error('expected an error');
  };

  it('truncated file', async () => {
    const f = write('truncated.pth', bytes.subarray(0, Math.floor(bytes.length / 2)));
    expect(await oneLine(() => readPth(f))).toMatch(/truncated\.pth: not a readable checkpoint zip \(no end-of-central-directory record/);
  });

  it('corrupted pickle: an unknown opcode is named', async () => {
    const corrupted = Buffer.from(bytes);
    // data.pkl is the first record: its pickle starts right after the local header (0x80 0x02).
    const start = corrupted.indexOf(Buffer.from([0x80, 0x02]));
    corrupted[start + 2] = 0xff;
    const f = write('corrupted.pth', corrupted);
    expect(await oneLine(() => readPth(f))).toMatch(/corrupted\.pth: cannot read checkpoint pickle \(unsupported pickle opcode 0xff/);
  });

  it('not a checkpoint at all', async () => {
    const f = write('text.pth', Buffer.from('hello world, definitely not a zip file'));
    expect(await oneLine(() => readPth(f))).toContain('text.pth: not a readable checkpoint zip');
  });

  it('wrong architecture for the requested preset', async () => {
    expect(await oneLine(() => loadEncoder(fixturePath('model.pth'), { preset: 'vit-s14' }))).toMatch(
      /model\.pth: backbone\.mask_token has shape \[1,64\] but the model expects \[1,384\]: wrong architecture/,
    );
  });

  it('missing and unexpected keys', async () => {
    const orig = flattenStateDict(readPth(fixturePath('model.pth')));
    const dropped = new Map([...orig].filter(([k]) => k !== 'backbone.encoder.blocks.1.residual2.fn.fc2.weight'));
    const f1 = path.join(tmp, 'missing.pth');
    writePth(f1, new Map([...dropped].map(([k, t]) => [k, { shape: t.shape, data: t.data as Float32Array }])));
    expect(await oneLine(() => loadEncoder(f1, { evalOnly: false }))).toBe(
      `${f1}: missing keys: encoder.blocks.1.residual2.fn.fc2.weight; is this a CAPI checkpoint of the expected architecture?`,
    );
    const extra = new Map([
      ...orig,
      [
        'backbone.encoder.blocks.0.residual1.fn.q_proj.bias',
        { shape: [64], data: new Float32Array(64), dtype: 'float32' as const, sourceDtype: 'float32' },
      ],
    ]);
    const f2 = path.join(tmp, 'extra.pth');
    writePth(f2, new Map([...extra].map(([k, t]) => [k, { shape: t.shape, data: t.data as Float32Array }])));
    expect(await oneLine(() => loadEncoder(f2, { evalOnly: false }))).toContain(
      'unexpected keys: backbone.encoder.blocks.0.residual1.fn.q_proj.bias',
    );
  });
});
