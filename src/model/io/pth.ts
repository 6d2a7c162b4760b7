/**
 * Reader for PyTorch checkpoints (`torch.save`'s zip format): a pickle describing the object
 * (dicts of tensors) whose tensors point at raw little-endian storages `<stem>/data/<key>`.
 * Pure TypeScript; no Python. Supports float32, bfloat16 and float16 storages (converted to
 * float32) and int64/int32 (converted to int32 when they fit). Unknown opcodes or storage types
 * raise an error that names them.
 */
import * as fs from 'node:fs';
import { bfloat16ToFloat32, float16ToFloat32 } from './dtypes.js';
import { readZipDirectory, readZipEntry } from './zip.js';

/** A tensor read from a checkpoint, always materialised as float32 or int32. */
export interface LoadedTensor {
  dtype: 'float32' | 'int32';
  /** dtype of the storage in the file (e.g. 'bfloat16'). */
  sourceDtype: string;
  shape: number[];
  data: Float32Array | Int32Array;
}

interface StorageRef {
  kind: 'storage';
  dtype: string;
  key: string;
  numel: number;
}
interface TensorRef {
  kind: 'tensor';
  storage: StorageRef;
  offset: number;
  shape: number[];
  stride: number[];
}
interface Global {
  kind: 'global';
  module: string;
  name: string;
}
/** An object of a class the reader does not model (e.g. an argparse Namespace); kept opaque. */
interface Opaque {
  kind: 'opaque';
  cls: string;
  args: unknown;
  state?: unknown;
}

const STORAGE_DTYPES: Record<string, string> = {
  FloatStorage: 'float32',
  BFloat16Storage: 'bfloat16',
  HalfStorage: 'float16',
  DoubleStorage: 'float64',
  LongStorage: 'int64',
  IntStorage: 'int32',
};

const MARK = Symbol('mark');

/** Unpickles `data`, resolving persistent ids (storages) with `persistent`. */
function unpickle(data: Buffer, file: string): unknown {
  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  let pos = 0;
  const fail = (why: string): never => {
    throw new Error(`${file}: cannot read checkpoint pickle (${why} at byte ${pos})`);
  };
  const u8 = () => {
    if (pos >= data.length) fail('unexpected end');
    return data[pos++];
  };
  const take = (n: number) => {
    if (pos + n > data.length) fail('unexpected end');
    const b = data.subarray(pos, pos + n);
    pos += n;
    return b;
  };
  const line = () => {
    const e = data.indexOf(0x0a, pos);
    if (e < 0) fail('unterminated line');
    const s = data.toString('latin1', pos, e);
    pos = e + 1;
    return s;
  };
  const popMark = () => {
    const items: unknown[] = [];
    for (;;) {
      if (stack.length === 0) fail('MARK not found');
      const x = stack.pop();
      if (x === MARK) return items.reverse();
      items.push(x);
    }
  };
  const setItem = (d: unknown, k: unknown, v: unknown) => {
    if (d instanceof Map) d.set(k, v);
    else fail('SETITEM on a non-dict');
  };
  const call = (fn: unknown, args: unknown): unknown => {
    const g = fn as Global;
    if (g?.kind !== 'global') return fail('REDUCE on a non-callable');
    const a = args as unknown[];
    const full = `${g.module}.${g.name}`;
    if (full === 'collections.OrderedDict') return new Map();
    if (full === 'torch._utils._rebuild_tensor_v2' || full === 'torch._utils._rebuild_tensor') {
      const [storage, offset, shape, stride] = a as [StorageRef, number, number[], number[]];
      return { kind: 'tensor', storage, offset, shape: [...shape], stride: [...stride] } satisfies TensorRef;
    }
    if (full === 'torch._utils._rebuild_parameter' || full === 'torch._utils._rebuild_parameter_with_state') return a[0];
    return { kind: 'opaque', cls: full, args } satisfies Opaque;
  };

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80:
        u8();
        break; // PROTO
      case 0x95:
        take(8);
        break; // FRAME
      case 0x2e:
        return stack.pop(); // STOP
      case 0x63: {
        const module = line();
        const name = line();
        stack.push({ kind: 'global', module, name });
        break;
      } // GLOBAL
      case 0x93: {
        const name = stack.pop() as string;
        const module = stack.pop() as string;
        stack.push({ kind: 'global', module, name });
        break;
      }
      case 0x71:
        memo.set(u8(), stack[stack.length - 1]);
        break; // BINPUT
      case 0x72:
        memo.set(take(4).readUInt32LE(0), stack[stack.length - 1]);
        break; // LONG_BINPUT
      case 0x94:
        memo.set(memo.size, stack[stack.length - 1]);
        break; // MEMOIZE
      case 0x68:
        stack.push(memo.get(u8()));
        break; // BINGET
      case 0x6a:
        stack.push(memo.get(take(4).readUInt32LE(0)));
        break; // LONG_BINGET
      case 0x28:
        stack.push(MARK);
        break; // MARK
      case 0x29:
        stack.push([]);
        break; // EMPTY_TUPLE
      case 0x74:
        stack.push(popMark());
        break; // TUPLE
      case 0x85:
        stack.push([stack.pop()]);
        break; // TUPLE1
      case 0x86: {
        const b = stack.pop();
        const a = stack.pop();
        stack.push([a, b]);
        break;
      }
      case 0x87: {
        const c = stack.pop();
        const b = stack.pop();
        const a = stack.pop();
        stack.push([a, b, c]);
        break;
      }
      case 0x7d:
        stack.push(new Map());
        break; // EMPTY_DICT
      case 0x5d:
        stack.push([]);
        break; // EMPTY_LIST
      case 0x61: {
        const v = stack.pop();
        (stack[stack.length - 1] as unknown[]).push(v);
        break;
      } // APPEND
      case 0x65: {
        const items = popMark();
        (stack[stack.length - 1] as unknown[]).push(...items);
        break;
      } // APPENDS
      case 0x73: {
        const v = stack.pop();
        const k = stack.pop();
        setItem(stack[stack.length - 1], k, v);
        break;
      } // SETITEM
      case 0x75: {
        const items = popMark();
        const d = stack[stack.length - 1];
        for (let i = 0; i < items.length; i += 2) setItem(d, items[i], items[i + 1]);
        break;
      }
      case 0x58: {
        const n = take(4).readUInt32LE(0);
        stack.push(take(n).toString('utf8'));
        break;
      } // BINUNICODE
      case 0x8c: {
        const n = u8();
        stack.push(take(n).toString('utf8'));
        break;
      } // SHORT_BINUNICODE
      case 0x8d: {
        const n = Number(take(8).readBigUInt64LE(0));
        stack.push(take(n).toString('utf8'));
        break;
      }
      case 0x42: {
        const n = take(4).readUInt32LE(0);
        stack.push(Buffer.from(take(n)));
        break;
      } // BINBYTES
      case 0x43: {
        const n = u8();
        stack.push(Buffer.from(take(n)));
        break;
      } // SHORT_BINBYTES
      case 0x55: {
        const n = u8();
        stack.push(take(n).toString('latin1'));
        break;
      } // SHORT_BINSTRING
      case 0x4b:
        stack.push(u8());
        break; // BININT1
      case 0x4d:
        stack.push(take(2).readUInt16LE(0));
        break; // BININT2
      case 0x4a:
        stack.push(take(4).readInt32LE(0));
        break; // BININT
      case 0x8a: {
        // LONG1
        const n = u8();
        const b = take(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
        if (n > 0 && b[n - 1] & 0x80) v -= 1n << BigInt(8 * n);
        stack.push(Number(v));
        break;
      }
      case 0x47:
        stack.push(take(8).readDoubleBE(0));
        break; // BINFLOAT
      case 0x4e:
        stack.push(null);
        break; // NONE
      case 0x88:
        stack.push(true);
        break; // NEWTRUE
      case 0x89:
        stack.push(false);
        break; // NEWFALSE
      case 0x52: {
        const args = stack.pop();
        const fn = stack.pop();
        stack.push(call(fn, args));
        break;
      } // REDUCE
      case 0x81: {
        const args = stack.pop();
        const cls = stack.pop() as Global;
        stack.push({ kind: 'opaque', cls: `${cls.module}.${cls.name}`, args });
        break;
      } // NEWOBJ
      case 0x62: {
        // BUILD: state for OrderedDict metadata or opaque objects; ignored for dicts
        const state = stack.pop();
        const obj = stack[stack.length - 1] as Opaque | Map<unknown, unknown>;
        if (!(obj instanceof Map) && obj && (obj as Opaque).kind === 'opaque') (obj as Opaque).state = state;
        break;
      }
      case 0x51: {
        // BINPERSID: ('storage', StorageType, key, location, numel)
        const pid = stack.pop() as unknown[];
        const type = pid[1] as Global;
        if (pid[0] !== 'storage' || !type || type.kind !== 'global') fail('unsupported persistent id');
        const dtype = STORAGE_DTYPES[type.name];
        if (!dtype) fail(`unsupported storage type ${type.module}.${type.name}`);
        stack.push({ kind: 'storage', dtype, key: String(pid[2]), numel: Number(pid[4]) } satisfies StorageRef);
        break;
      }
      default:
        fail(`unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')} ('${String.fromCharCode(op)}')`);
    }
  }
}

const BYTES: Record<string, number> = { float32: 4, bfloat16: 2, float16: 2, float64: 8, int64: 8, int32: 4 };

/** Decodes a whole storage into float32 or int32 values. */
function decodeStorage(raw: Buffer, dtype: string, numel: number, where: string): Float32Array | Int32Array {
  const need = numel * BYTES[dtype];
  if (raw.length < need) throw new Error(`${where}: storage has ${raw.length} bytes, expected ${need} (truncated file?)`);
  const bytes = new Uint8Array(raw.buffer, raw.byteOffset, need).slice(); // aligned copy
  switch (dtype) {
    case 'float32':
      return new Float32Array(bytes.buffer, 0, numel);
    case 'float64':
      return Float32Array.from(new Float64Array(bytes.buffer, 0, numel));
    case 'int32':
      return new Int32Array(bytes.buffer, 0, numel);
    case 'int64':
      return Int32Array.from(new BigInt64Array(bytes.buffer, 0, numel), (v) => Number(v));
    case 'bfloat16':
      return bfloat16ToFloat32(new Uint16Array(bytes.buffer, 0, numel));
    case 'float16':
      return float16ToFloat32(new Uint16Array(bytes.buffer, 0, numel));
    default:
      throw new Error(`${where}: unsupported storage dtype ${dtype}`);
  }
}

/** Copies a strided view of `src` into a new contiguous array. */
function materialise(src: Float32Array | Int32Array, offset: number, shape: number[], stride: number[]): Float32Array | Int32Array {
  const size = shape.reduce((a, b) => a * b, 1);
  const out = src instanceof Float32Array ? new Float32Array(size) : new Int32Array(size);
  const contiguous = shape.every((_, i) => shape[i] === 1 || stride[i] === shape.slice(i + 1).reduce((a, b) => a * b, 1));
  if (contiguous) {
    out.set(src.subarray(offset, offset + size));
    return out;
  }
  const idx = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < size; i++) {
    let o = offset;
    for (let a = 0; a < shape.length; a++) o += idx[a] * stride[a];
    out[i] = src[o];
    for (let a = shape.length - 1; a >= 0; a--) {
      if (++idx[a] < shape[a]) break;
      idx[a] = 0;
    }
  }
  return out;
}

/** Any nested value of a checkpoint: dicts as Map, tensors as LoadedTensor. */
export type CheckpointValue = LoadedTensor | Map<string, CheckpointValue> | CheckpointValue[] | string | number | boolean | null | object;

/** Reads a `.pth` file; dicts come back as Maps, tensors as LoadedTensor. */
export function readPth(file: string): CheckpointValue {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw new Error(`${file}: cannot read checkpoint (${(e as NodeJS.ErrnoException).code ?? e})`);
  }
  if (buf.length >= 2 && buf[0] === 0x80) {
    throw new Error(`${file}: legacy (non-zip) torch.save format is not supported; re-save with torch>=1.6 defaults`);
  }
  const entries = readZipDirectory(buf, file);
  const pkl = [...entries.keys()].find((n) => n.endsWith('/data.pkl') || n === 'data.pkl');
  if (!pkl) throw new Error(`${file}: no data.pkl record; not a torch.save checkpoint`);
  const stem = pkl.slice(0, pkl.length - 'data.pkl'.length);
  const tree = unpickle(readZipEntry(buf, entries.get(pkl)!, file), file);
  const storages = new Map<string, Float32Array | Int32Array>();
  const convert = (v: unknown): CheckpointValue => {
    if (v instanceof Map) {
      const m = new Map<string, CheckpointValue>();
      for (const [k, x] of v) m.set(String(k), convert(x));
      return m;
    }
    if (Array.isArray(v)) return v.map(convert);
    const t = v as TensorRef;
    if (t && typeof t === 'object' && t.kind === 'tensor') {
      const { storage } = t;
      let values = storages.get(storage.key);
      if (!values) {
        const name = `${stem}data/${storage.key}`;
        const entry = entries.get(name);
        if (!entry) throw new Error(`${file}: storage record ${name} is missing (truncated or corrupted file)`);
        values = decodeStorage(readZipEntry(buf, entry, file), storage.dtype, storage.numel, `${file}:${name}`);
        storages.set(storage.key, values);
      }
      const data = materialise(values, t.offset, t.shape, t.stride);
      return { dtype: data instanceof Float32Array ? 'float32' : 'int32', sourceDtype: storage.dtype, shape: t.shape, data };
    }
    return v as CheckpointValue;
  };
  return convert(tree);
}

export function isLoadedTensor(v: unknown): v is LoadedTensor {
  return !!v && typeof v === 'object' && 'data' in v && 'shape' in v && 'sourceDtype' in v;
}

/**
 * Finds the flat `name -> tensor` state dict inside a checkpoint: the top-level dict, or a
 * nested one under a usual key ("model", "teacher", "state_dict", ...), keys joined with '.'.
 */
export function flattenStateDict(value: CheckpointValue, prefix = ''): Map<string, LoadedTensor> {
  const out = new Map<string, LoadedTensor>();
  const walk = (v: CheckpointValue, p: string) => {
    if (isLoadedTensor(v)) out.set(p, v);
    else if (v instanceof Map) for (const [k, x] of v) walk(x, p ? `${p}.${k}` : k);
  };
  walk(value, prefix);
  return out;
}
