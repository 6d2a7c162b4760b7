/**
 * The sharded feature store: what it reads back is what an in-memory extraction gives; a damaged
 * or foreign shard is named and extracted again, never used; the key does not depend on the
 * sharding; and an extraction SIGKILLed midway and run again leaves a store identical to an
 * uninterrupted one.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadFashionMnist } from '../../src/data/fashion-mnist.js';
import { extractFeatures } from '../../src/features/extract.js';
import { pixelFeatureModel } from '../../src/features/models.js';
import { openFeatureStore, readShard, storeRows } from '../../src/features/store.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'capi-store-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const SLICE = path.resolve('data/fmnist-slice');
const images = (() => {
  const d = loadFashionMnist(SLICE, 'train');
  return { ...d, size: 100, description: `${d.description} (first 100)` };
})();
const opts = { size: 28, transform: 'resize' as const, batchSize: 8, maxBytes: 2 ** 30 };

const shards = (dir: string) =>
  fs
    .readdirSync(dir)
    .filter((f) => f.startsWith('shard-'))
    .sort();

describe('feature store', () => {
  it('reads back exactly what an in-memory extraction gives, shard by shard (16 images a shard)', async () => {
    const model = pixelFeatureModel(4);
    const cacheDir = path.join(tmp, 'roundtrip');
    const mem = await extractFeatures(model, images, { ...opts, cacheDir: '' });
    const stored = await extractFeatures(model, images, { ...opts, cacheDir, shardImages: 16 });
    const dir = path.join(cacheDir, fs.readdirSync(cacheDir)[0]);
    expect(shards(dir).length).toBe(7); // 100 images, 16 a shard
    expect(stored.patch).toEqual(mem.patch);
    expect(stored.global).toEqual(mem.global);
    expect(stored.avg).toEqual(mem.avg);
    // The key names the features, not the sharding: another shard size finds the same store.
    const again = await extractFeatures(model, images, { ...opts, cacheDir, shardImages: 32 });
    expect(again.fromCache).toBe(true);
    expect(fs.readdirSync(cacheDir).length).toBe(1);
  });

  it('streams the rows of every stride block by block, through one reused read buffer, as they are in memory', async () => {
    const model = pixelFeatureModel(4);
    const cacheDir = path.join(tmp, 'stream');
    const mem = await extractFeatures(model, images, { ...opts, cacheDir: '' });
    await extractFeatures(model, images, { ...opts, cacheDir, shardImages: 16 }); // the last shard is smaller (4 images)
    const key = fs.readdirSync(cacheDir)[0];
    const store = openFeatureStore(cacheDir, JSON.parse(fs.readFileSync(path.join(cacheDir, key, 'manifest.json'), 'utf8')));
    const d = store.manifest.patchDim;
    for (const stride of [1, 3]) {
      const rows = storeRows(store, stride);
      const got = new Float32Array(rows.rows * d);
      let next = 0;
      rows.forEachBlock(37, (start, feats, count) => {
        expect(start).toBe(next);
        got.set(feats.subarray(0, count * d), start * d);
        feats.fill(Number.NaN); // a caller may change its block: the next one is read afresh
        next += count;
      });
      expect(next).toBe(rows.rows);
      const want = Float32Array.from({ length: rows.rows * d }, (_, i) => mem.patch[Math.floor(i / d) * stride * d + (i % d)]);
      expect(got).toEqual(want);
    }
  });

  it('names a damaged shard and a foreign one, extracts them again, and never uses them', async () => {
    const model = pixelFeatureModel(4);
    const cacheDir = path.join(tmp, 'damaged');
    const clean = await extractFeatures(model, images, { ...opts, cacheDir, shardImages: 16 });
    const dir = path.join(cacheDir, fs.readdirSync(cacheDir)[0]);
    const files = shards(dir).map((f) => path.join(dir, f));
    // Damage: overwrite data bytes of shard 2 with noise (its header stays readable).
    const bytes = fs.readFileSync(files[2]);
    for (let i = bytes.length - 4000; i < bytes.length; i++) bytes[i] = (i * 31) % 256;
    fs.writeFileSync(files[2], bytes);
    // Foreign: shard 4 of another model's store with the same shapes put in its place.
    const other = pixelFeatureModel(4);
    other.key = 'another-model';
    const otherDir = path.join(tmp, 'other');
    await extractFeatures(other, images, { ...opts, cacheDir: otherDir, shardImages: 16 });
    const otherStore = path.join(otherDir, fs.readdirSync(otherDir)[0]);
    fs.copyFileSync(path.join(otherStore, path.basename(files[4])), files[4]);
    const store = openFeatureStore(cacheDir, JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')));
    expect(readShard(store, 2)).toMatchObject({ kind: 'damaged', why: 'its data does not match its checksum' });
    expect(readShard(store, 4)).toMatchObject({ kind: 'foreign', why: expect.stringContaining('"another-model"') });
    const logs: string[] = [];
    const repaired = await extractFeatures(model, images, { ...opts, cacheDir, shardImages: 16, log: (l) => logs.push(l) });
    expect(logs).toEqual([
      `${files[2]}: damaged (its data does not match its checksum); extracting it again`,
      expect.stringMatching(new RegExp(`^${files[4].replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: foreign \\(model is "another-model"`)),
    ]);
    expect(repaired.fromCache).toBe(false);
    expect(repaired.patch).toEqual(clean.patch);
  });

  it('an extraction SIGKILLed midway and run again leaves a store identical to an uninterrupted one', async () => {
    const script = (cacheDir: string) => `
      import { loadFashionMnist } from './src/data/fashion-mnist.ts';
      import { extractFeatures } from './src/features/extract.ts';
      import { randomCapiFeatureModel } from './src/features/models.ts';
      import { MODEL_PRESETS } from './src/model/config.ts';
      import { initBackend } from './src/runtime/backend.ts';
      await initBackend('auto', 2, () => {});
      const model = randomCapiFeatureModel({ ...MODEL_PRESETS['fmnist-tiny'], dim: 64, depth: 2, heads: 1, predDim: 64, predHeads: 1 }, 5);
      const data = loadFashionMnist(${JSON.stringify(SLICE)}, 'train');
      await extractFeatures(model, data, { size: 28, transform: 'resize', batchSize: 8, maxBytes: 2 ** 30, cacheDir: ${JSON.stringify(cacheDir)}, shardImages: 8 });`;
    const run = (cacheDir: string) =>
      spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script(cacheDir)], { stdio: 'inherit' });
    const exit = (p: ReturnType<typeof run>) => new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
    // Uninterrupted.
    const whole = path.join(tmp, 'whole');
    expect(await exit(run(whole))).toBe(0);
    // Killed once a few shards are written, then run again.
    const killed = path.join(tmp, 'killed');
    const p = run(killed);
    const done = exit(p);
    let seen = 0;
    for (let i = 0; i < 2000 && seen < 5; i++) {
      await new Promise((r) => setTimeout(r, 20));
      const dirs = fs.existsSync(killed) ? fs.readdirSync(killed) : [];
      seen = dirs.length ? shards(path.join(killed, dirs[0])).length : 0;
    }
    p.kill('SIGKILL');
    await done;
    const dir = (root: string) => path.join(root, fs.readdirSync(root)[0]);
    expect(shards(dir(killed)).length).toBeLessThan(125); // 1000 images, 8 a shard: it was stopped midway
    expect(await exit(run(killed))).toBe(0);
    expect(shards(dir(killed))).toEqual(shards(dir(whole)));
    for (const f of [...shards(dir(whole)), 'manifest.json'])
      expect(fs.readFileSync(path.join(dir(killed), f)).equals(fs.readFileSync(path.join(dir(whole), f))), f).toBe(true);
  });
});
