/**
 * The feature store: a model's features of one dataset split, written shard by shard (a few
 * hundred images a shard) under `<cacheDir>/<key>/`, so that an extraction killed midway continues
 * from its last finished shard and a job can own a range of shards (Slurm array tasks). The key
 * names what the features are (weights, dataset, resolution, transform), never how they were
 * sharded or subsampled. Every shard records what made it and a checksum of its data, and a reader
 * checks both: a damaged or foreign shard is named and extracted again, never used.
 *
 * A shard is a safetensors file (patch [count * tokens, D], global [count, G], avg [count, D]);
 * the store's manifest.json holds the shape every shard must have.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeSafetensors } from '../model/io/safetensors.js';
import { removeStaleTempFiles, writeFileAtomic } from '../runtime/atomic.js';

export const STORE_FORMAT = 'capi-ts/features/1';

/** What the features are: the fields a shard's provenance must match. */
export interface StoreIdentity {
  /** The feature model's key (weights fingerprint, or a baseline's recipe). */
  model: string;
  /** The dataset split (its description names the split). */
  dataset: string;
  images: number;
  size: number;
  transform: string;
}

export interface StoreManifest extends StoreIdentity {
  format: string;
  key: string;
  tokens: number;
  grid: number;
  patchDim: number;
  globalDim: number;
  dtype: 'float32';
  /** Images a shard (the last may have fewer); recorded, not part of the key. */
  shardImages: number;
}

export interface FeatureShard {
  index: number;
  /** First image of the shard, and how many. */
  first: number;
  count: number;
  /** [count * tokens, patchDim], [count, globalDim], [count, patchDim] */
  patch: Float32Array;
  global: Float32Array;
  avg: Float32Array;
}

export interface FeatureStore {
  dir: string;
  manifest: StoreManifest;
  shards: number;
}

/** The store key: what the features are, not how they are sharded (v3: the sharded store). */
export const storeKey = (id: StoreIdentity): string =>
  createHash('sha256')
    .update(JSON.stringify(['v3', id.model, id.dataset, id.images, id.size, id.transform]))
    .digest('hex')
    .slice(0, 24);

/** Images a shard: about 256 MiB of patch features, between 16 and 1024 images. */
export function defaultShardImages(tokens: number, patchDim: number): number {
  return Math.max(16, Math.min(1024, Math.floor(2 ** 28 / (tokens * patchDim * 4))));
}

const shardFile = (store: FeatureStore, i: number) => path.join(store.dir, `shard-${String(i).padStart(6, '0')}.safetensors`);

export function shardRange(store: FeatureStore, i: number): { first: number; count: number } {
  const first = i * store.manifest.shardImages;
  return { first, count: Math.min(store.manifest.shardImages, store.manifest.images - first) };
}

const IDENTITY_FIELDS = ['model', 'dataset', 'images', 'size', 'transform'] as const;

/**
 * Opens (or creates) the store of `manifest`'s features under `cacheDir`. An existing manifest
 * must describe the same features and shapes; its shard size wins (the key does not depend on it).
 */
export function openFeatureStore(cacheDir: string, wanted: Omit<StoreManifest, 'format' | 'key'>): FeatureStore {
  const key = storeKey(wanted);
  const dir = path.join(cacheDir, key);
  const file = path.join(dir, 'manifest.json');
  let manifest: StoreManifest = { format: STORE_FORMAT, key, ...wanted };
  if (fs.existsSync(file)) {
    let saved: StoreManifest;
    try {
      saved = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch {
      throw new Error(`${file}: not readable JSON; remove ${dir} to extract these features again`);
    }
    const differs = [...IDENTITY_FIELDS, 'tokens', 'patchDim', 'globalDim', 'format'].find(
      (k) => saved[k as keyof StoreManifest] !== manifest[k as keyof StoreManifest],
    );
    if (differs)
      throw new Error(
        `${file} describes other features (${differs}: ${JSON.stringify(saved[differs as keyof StoreManifest])} vs ${JSON.stringify(manifest[differs as keyof StoreManifest])}); remove ${dir} to extract them again`,
      );
    manifest = saved;
  } else {
    writeFileAtomic(file, JSON.stringify(manifest, null, 2));
  }
  removeStaleTempFiles(dir);
  return { dir, manifest, shards: Math.ceil(manifest.images / manifest.shardImages) };
}

/** The provenance a shard records, as safetensors metadata strings. */
function provenance(store: FeatureStore, i: number): Record<string, string> {
  const m = store.manifest;
  const { first, count } = shardRange(store, i);
  // In the order a mismatch is best explained in: what made it first.
  return {
    model: m.model,
    dataset: m.dataset,
    size: String(m.size),
    transform: m.transform,
    first: String(first),
    count: String(count),
    dtype: m.dtype,
    key: m.key,
    format: STORE_FORMAT,
  };
}

const checksum = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

const asBytes = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Writes shard `i` atomically, with its provenance and the checksum of its data. */
export function writeShard(store: FeatureStore, i: number, patch: Float32Array, global: Float32Array, avg: Float32Array): void {
  const m = store.manifest;
  const { count } = shardRange(store, i);
  const expected = [count * m.tokens * m.patchDim, count * m.globalDim, count * m.patchDim];
  if (patch.length !== expected[0] || global.length !== expected[1] || avg.length !== expected[2])
    throw new Error(`writeShard ${i}: arrays of ${patch.length}, ${global.length}, ${avg.length} values, expected ${expected.join(', ')}`);
  const hash = createHash('sha256');
  for (const a of [patch, global, avg]) hash.update(asBytes(a));
  writeSafetensors(
    shardFile(store, i),
    new Map([
      ['patch', { shape: [count * m.tokens, m.patchDim], data: patch }],
      ['global', { shape: [count, m.globalDim], data: global }],
      ['avg', { shape: [count, m.patchDim], data: avg }],
    ]),
    { ...provenance(store, i), checksum: hash.digest('hex') },
  );
}

/** Why a shard cannot be used (absent, damaged or foreign), or undefined if it can. */
export type ShardProblem = { kind: 'absent' } | { kind: 'damaged' | 'foreign'; file: string; why: string };

/** Shards whose checksum was verified by this process (file, size, mtime): read again without hashing. */
const verified = new Set<string>();
const stamp = (file: string) => {
  const st = fs.statSync(file);
  return `${file}\0${st.size}\0${st.mtimeMs}`;
};

/**
 * A read buffer that readers of many shards pass to readShard: the shard's arrays are then views
 * into it, valid until its next read. Reading into memory already touched is ~3x faster than a
 * fresh readFileSync of a 256 MiB shard, whose pages fault in on the first write (measured with
 * the dense protocol's stream: 6 shards in 0.7-0.9 s against 2.1-3.0 s).
 */
export interface ShardBuffer {
  bytes: Buffer;
}

export const shardBuffer = (): ShardBuffer => ({ bytes: Buffer.alloc(0) });

/** The whole file, read into `into` (grown when too small), or a new buffer without one. */
function readWhole(file: string, into?: ShardBuffer): Buffer {
  if (!into) return fs.readFileSync(file);
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    if (into.bytes.length < size) into.bytes = Buffer.allocUnsafe(size);
    let done = 0;
    while (done < size) {
      const got = fs.readSync(fd, into.bytes, done, size - done, done);
      if (got === 0) break;
      done += got;
    }
    return into.bytes.subarray(0, done);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Reads shard `i`, checking its provenance against the store and its data against its checksum;
 * returns the shard or what is wrong with it. With `into`, the shard's arrays are views into that
 * buffer (see ShardBuffer).
 */
export function readShard(store: FeatureStore, i: number, into?: ShardBuffer): FeatureShard | ShardProblem {
  const file = shardFile(store, i);
  if (!fs.existsSync(file)) return { kind: 'absent' };
  const damaged = (why: string): ShardProblem => ({ kind: 'damaged', file, why });
  const buf = readWhole(file, into);
  if (buf.length < 8) return damaged('shorter than its header');
  const headerLen = Number(buf.readBigUInt64LE(0));
  if (8 + headerLen > buf.length) return damaged('truncated header');
  let header: Record<string, { shape: number[]; data_offsets: [number, number] }> & { __metadata__?: Record<string, string> };
  try {
    header = JSON.parse(buf.toString('utf8', 8, 8 + headerLen));
  } catch {
    return damaged('unreadable header');
  }
  const meta = header.__metadata__ ?? {};
  const want = provenance(store, i);
  const wrong = Object.keys(want).find((k) => meta[k] !== want[k]);
  if (wrong)
    return { kind: 'foreign', file, why: `${wrong} is ${JSON.stringify(meta[wrong])}, this store's is ${JSON.stringify(want[wrong])}` };
  const base = 8 + headerLen;
  const data = buf.subarray(base);
  const key = stamp(file);
  if (!verified.has(key)) {
    if (checksum(data) !== meta.checksum) return damaged('its data does not match its checksum');
    verified.add(key);
  }
  const m = store.manifest;
  const { first, count } = shardRange(store, i);
  const view = (name: string, length: number): Float32Array | undefined => {
    const t = header[name];
    if (!t || t.data_offsets[1] - t.data_offsets[0] !== length * 4 || base + t.data_offsets[1] > buf.length) return undefined;
    const bytes = buf.subarray(base + t.data_offsets[0], base + t.data_offsets[1]);
    // A view when aligned (the header is padded to 8 bytes), else a copy.
    return bytes.byteOffset % 4 === 0
      ? new Float32Array(bytes.buffer, bytes.byteOffset, length)
      : new Float32Array(Uint8Array.from(bytes).buffer);
  };
  const patch = view('patch', count * m.tokens * m.patchDim);
  const global = view('global', count * m.globalDim);
  const avg = view('avg', count * m.patchDim);
  if (!patch || !global || !avg) return damaged('a tensor has the wrong size');
  return { index: i, first, count, patch, global, avg };
}

export const isShard = (r: FeatureShard | ShardProblem): r is FeatureShard => 'patch' in r;

/**
 * Shard `i`, or an error naming the file and what is wrong (for readers that cannot extract it
 * again themselves).
 */
export function requireShard(store: FeatureStore, i: number, into?: ShardBuffer): FeatureShard {
  const r = readShard(store, i, into);
  if (isShard(r)) return r;
  if (r.kind === 'absent') throw new Error(`${shardFile(store, i)} is missing: extract the features first`);
  throw new Error(`${r.file}: ${r.kind} (${r.why}); extract these features again`);
}

/** The shards that need extracting (absent, damaged or foreign), each problem but absence said by `log`. */
export function shardsToExtract(store: FeatureStore, select: (shard: number) => boolean, log: (line: string) => void): number[] {
  const todo: number[] = [];
  const buffer = shardBuffer();
  for (let i = 0; i < store.shards; i++) {
    if (!select(i)) continue;
    const r = readShard(store, i, buffer);
    if (isShard(r)) continue;
    if (r.kind !== 'absent') log(`${r.file}: ${r.kind} (${r.why}); extracting it again`);
    todo.push(i);
  }
  return todo;
}

/**
 * The store's patch rows as a stream of blocks of at most `maxRows` kept rows (rows r with
 * r % stride == 0, numbered as kept), read shard by shard into one reused buffer: what the
 * out-of-core dense protocol reads (src/segmentation/out-of-core.ts PatchRows). A block never
 * spans two shards; at stride 1 it is a view of the read buffer (no copy), else the kept rows
 * copied into a block of their own.
 */
export function storeRows(store: FeatureStore, stride = 1) {
  const m = store.manifest;
  const d = m.patchDim;
  return {
    rows: Math.ceil((m.images * m.tokens) / stride),
    dim: d,
    forEachBlock(maxRows: number, f: (start: number, feats: Float32Array, count: number) => void): void {
      const buffer = shardBuffer();
      let kept = 0;
      for (let i = 0; i < store.shards; i++) {
        const sh = requireShard(store, i, buffer);
        const r0 = sh.first * m.tokens;
        const rows: number[] = [];
        for (let t = 0; t < sh.count * m.tokens; t++) if ((r0 + t) % stride === 0) rows.push(t);
        for (let b = 0; b < rows.length; b += maxRows) {
          const count = Math.min(maxRows, rows.length - b);
          let feats: Float32Array;
          if (stride === 1) feats = sh.patch.subarray(rows[b] * d, (rows[b] + count) * d);
          else {
            feats = new Float32Array(count * d);
            for (let j = 0; j < count; j++) feats.set(sh.patch.subarray(rows[b + j] * d, (rows[b + j] + 1) * d), j * d);
          }
          f(kept, feats, count);
          kept += count;
        }
      }
    },
  };
}
