/**
 * Writes a flat state dict as a PyTorch checkpoint (`torch.save`'s zip format, pickle protocol 2,
 * float32 storages), so a model trained here loads in the reference code with torch.load.
 * The layout follows torch: `<stem>/data.pkl`, `<stem>/data/<n>`, `<stem>/version`,
 * `<stem>/byteorder`; records stored uncompressed, data aligned to 64 bytes.
 */
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import { writeFileAtomic } from '../../runtime/atomic.js';

class PickleWriter {
  private parts: Buffer[] = [];

  op(code: number, payload?: Buffer): this {
    this.parts.push(Buffer.from([code]));
    if (payload) this.parts.push(payload);
    return this;
  }

  global(module: string, name: string): this {
    return this.op(0x63, Buffer.from(`${module}\n${name}\n`, 'latin1'));
  }

  str(s: string): this {
    const b = Buffer.from(s, 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32LE(b.length);
    return this.op(0x58, Buffer.concat([len, b]));
  }

  int(v: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    return this.op(0x4a, b);
  }

  mark(): this {
    return this.op(0x28);
  }

  tuple(values: number[]): this {
    this.mark();
    for (const v of values) this.int(v);
    return this.op(0x74);
  }

  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

export interface FloatTensor {
  shape: number[];
  data: Float32Array;
}

function statePickle(entries: [string, FloatTensor][]): Buffer {
  const w = new PickleWriter();
  w.op(0x80, Buffer.from([2])); // PROTO 2
  w.global('collections', 'OrderedDict').op(0x29).op(0x52); // OrderedDict()
  w.mark();
  entries.forEach(([key, t], i) => {
    const strides = t.shape.map((_, d) => t.shape.slice(d + 1).reduce((a, b) => a * b, 1));
    w.str(key);
    w.global('torch._utils', '_rebuild_tensor_v2');
    w.mark();
    // persistent id ('storage', torch.FloatStorage, key, 'cpu', numel)
    w.mark().str('storage').global('torch', 'FloatStorage').str(String(i)).str('cpu').int(t.data.length).op(0x74).op(0x51);
    w.int(0).tuple(t.shape).tuple(strides).op(0x89); // storage_offset, size, stride, requires_grad=False
    w.global('collections', 'OrderedDict').op(0x29).op(0x52); // backward_hooks
    w.op(0x74).op(0x52); // TUPLE, REDUCE
  });
  w.op(0x75); // SETITEMS
  w.op(0x2e); // STOP
  return w.bytes();
}

interface Record {
  name: string;
  data: Buffer;
}

/** A stored (uncompressed) zip, each record's data aligned to 64 bytes via an extra field. */
function zipStored(records: Record[]): Buffer {
  const chunks: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const r of records) {
    const name = Buffer.from(r.name, 'utf8');
    const crc = crc32(r.data);
    const headerLen = 30 + name.length;
    const pad = (64 - ((offset + headerLen + 4) % 64)) % 64;
    const extra = Buffer.alloc(4 + pad);
    extra.writeUInt16LE(0x4246, 0); // 'FB': torch's padding field
    extra.writeUInt16LE(pad, 2);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed
    local.writeUInt16LE(0, 6); // flags
    local.writeUInt16LE(0, 8); // stored
    local.writeUInt32LE(0, 10); // time/date
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(r.data.length, 18);
    local.writeUInt32LE(r.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(extra.length, 28);
    chunks.push(local, name, extra, r.data);
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE(20, 4);
    cd.writeUInt16LE(20, 6);
    cd.writeUInt16LE(0, 8);
    cd.writeUInt16LE(0, 10);
    cd.writeUInt32LE(0, 12);
    cd.writeUInt32LE(crc, 16);
    cd.writeUInt32LE(r.data.length, 20);
    cd.writeUInt32LE(r.data.length, 24);
    cd.writeUInt16LE(name.length, 28);
    cd.writeUInt16LE(0, 30);
    cd.writeUInt16LE(0, 32);
    cd.writeUInt32LE(offset, 42);
    central.push(cd, name);
    offset += local.length + name.length + extra.length + r.data.length;
  }
  const cdBuf = Buffer.concat(central);
  if (offset + cdBuf.length > 0xffffffff) throw new Error('checkpoint larger than 4 GiB: ZIP64 writing is not supported');
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(records.length, 8);
  end.writeUInt16LE(records.length, 10);
  end.writeUInt32LE(cdBuf.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...chunks, cdBuf, end]);
}

/** Writes `tensors` (name -> float32 tensor) as a torch.save checkpoint at `file`, atomically. */
export function writePth(file: string, tensors: Map<string, FloatTensor>): void {
  const stem = path.basename(file).replace(/\.[^.]*$/, '') || 'archive';
  const entries = [...tensors.entries()];
  const records: Record[] = [{ name: `${stem}/data.pkl`, data: statePickle(entries) }];
  entries.forEach(([, t], i) =>
    records.push({ name: `${stem}/data/${i}`, data: Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength) }),
  );
  records.push({ name: `${stem}/version`, data: Buffer.from('3\n') }, { name: `${stem}/byteorder`, data: Buffer.from('little') });
  writeFileAtomic(file, zipStored(records));
}
