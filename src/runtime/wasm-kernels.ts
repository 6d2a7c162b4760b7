/**
 * Kernels registered for the wasm backend (see shared notes "tfjs-on-node.md", patterns 3 and 7):
 *  - Slice, Unpack, SplitV: the stock kernels copy the whole input out of the wasm heap for every
 *    slice (`readSync`); these copy from a view of the heap instead.
 *  - Identity: the stock kernel copies; autodiff clones every tensor it saves for the backward
 *    pass, so share the buffer instead (tensor memory is immutable, as Reshape already relies on).
 *  - GatherV2: the stock kernel gathers element by element; this one copies whole rows.
 *  - UnsortedSegmentSum: missing on wasm, and it is the gradient of `gather`.
 * All copies move contiguous rows (`TypedArray.set`), never single elements in a JS loop,
 * except UnsortedSegmentSum, which adds rows.
 */
import * as tf from '@tensorflow/tfjs';

type TensorInfo = tf.TensorInfo;
interface WasmBackendLike {
  incRef(dataId: tf.DataId): void;
  typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array | Uint8Array;
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
}

function view(backend: WasmBackendLike, t: TensorInfo) {
  return backend.typedArrayFromHeap(t);
}

/** Copies the box [begin, begin+size) of x into a new tensor, one contiguous inner row at a time. */
function sliceBox(backend: WasmBackendLike, x: TensorInfo, begin: number[], size: number[]): TensorInfo {
  const out = backend.makeOutput(size, x.dtype);
  const total = size.reduce((a, b) => a * b, 1);
  if (total === 0) return out;
  const src = view(backend, x);
  const dst = view(backend, out);
  const rank = x.shape.length;
  const strides = tf.util.computeStrides(x.shape);
  // Merge trailing axes that are taken whole, so each copy is as long as possible.
  let inner = rank - 1;
  while (inner > 0 && begin[inner] === 0 && size[inner] === x.shape[inner]) inner--;
  const rowLen = size.slice(inner).reduce((a, b) => a * b, 1);
  const outer = size.slice(0, inner);
  const nRows = outer.reduce((a, b) => a * b, 1);
  const idx = new Array<number>(inner).fill(0);
  let base = 0;
  for (let a = 0; a < rank; a++) base += begin[a] * (a < rank - 1 ? strides[a] : 1);
  for (let r = 0; r < nRows; r++) {
    let off = base;
    for (let a = 0; a < inner; a++) off += idx[a] * strides[a];
    dst.set(src.subarray(off, off + rowLen), r * rowLen);
    for (let a = inner - 1; a >= 0; a--) {
      if (++idx[a] < outer[a]) break;
      idx[a] = 0;
    }
  }
  return out;
}

function registerOnce(config: tf.KernelConfig): void {
  tf.unregisterKernel(config.kernelName, 'wasm');
  tf.registerKernel(config);
}

let registered = false;

export function registerWasmKernels(): void {
  if (registered) return;
  registered = true;
  const existing = tf.getKernel('UnsortedSegmentSum', 'wasm');
  registerOnce({
    kernelName: 'Slice',
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const x = (inputs as { x: TensorInfo }).x;
      const { begin, size } = attrs as unknown as { begin: number[]; size: number[] };
      const [b, s] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size);
      return sliceBox(backend as unknown as WasmBackendLike, x, b, s);
    },
  });
  registerOnce({
    kernelName: 'Unpack',
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const { value } = inputs as { value: TensorInfo };
      const axis = (attrs as unknown as { axis: number }).axis;
      const n = value.shape[axis];
      const outShape = value.shape.filter((_, i) => i !== axis);
      const begin = value.shape.map(() => 0);
      const size = [...value.shape];
      size[axis] = 1;
      const wb = backend as unknown as WasmBackendLike;
      const outs: TensorInfo[] = [];
      for (let i = 0; i < n; i++) {
        begin[axis] = i;
        const part = sliceBox(wb, value, begin, size);
        part.shape = outShape;
        outs.push(part);
      }
      return outs;
    },
  });
  registerOnce({
    kernelName: 'SplitV',
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const { x } = inputs as { x: TensorInfo };
      const { numOrSizeSplits, axis } = attrs as unknown as { numOrSizeSplits: number | number[]; axis: number };
      const ax = tf.util.parseAxisParam(axis, x.shape)[0];
      const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, ax);
      const begin = x.shape.map(() => 0);
      const wb = backend as unknown as WasmBackendLike;
      return sizes.map((s) => {
        const size = [...x.shape];
        size[ax] = s;
        const part = sliceBox(wb, x, [...begin], size);
        begin[ax] += s;
        return part;
      });
    },
  });
  registerOnce({
    kernelName: 'Identity',
    backendName: 'wasm',
    kernelFunc: ({ inputs, backend }) => {
      const { x } = inputs as { x: TensorInfo };
      if (x.dtype === 'string') throw new Error('Identity on string tensors is not supported on wasm');
      (backend as unknown as WasmBackendLike).incRef(x.dataId);
      return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
    },
  });
  registerOnce({
    kernelName: 'GatherV2',
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs, backend }) => {
      const { x, indices } = inputs as { x: TensorInfo; indices: TensorInfo };
      const { axis, batchDims } = attrs as unknown as { axis: number; batchDims: number };
      if (batchDims !== 0) throw new Error('GatherV2 with batchDims != 0 is not supported on wasm');
      const ax = tf.util.parseAxisParam(axis, x.shape)[0];
      const wb = backend as unknown as WasmBackendLike;
      const outer = x.shape.slice(0, ax).reduce((a, b) => a * b, 1);
      const dim = x.shape[ax];
      const slice = x.shape.slice(ax + 1).reduce((a, b) => a * b, 1);
      // makeOutput may grow the heap, which detaches earlier views: take views after it.
      const out = wb.makeOutput([...x.shape.slice(0, ax), ...indices.shape, ...x.shape.slice(ax + 1)], x.dtype);
      const idx = view(wb, indices);
      const nIdx = idx.length;
      const src = view(wb, x);
      const dst = view(wb, out);
      for (let o = 0; o < outer; o++) {
        for (let i = 0; i < nIdx; i++) {
          const j = idx[i];
          if (j < 0 || j >= dim) throw new Error(`GatherV2: the index value ${j} is not in [0, ${dim - 1}]`);
          const from = (o * dim + j) * slice;
          dst.set(src.subarray(from, from + slice), (o * nIdx + i) * slice);
        }
      }
      return out;
    },
  });
  if (!existing) {
    tf.registerKernel({
      kernelName: 'UnsortedSegmentSum',
      backendName: 'wasm',
      kernelFunc: ({ inputs, attrs, backend }) => {
        const { x, segmentIds } = inputs as { x: TensorInfo; segmentIds: TensorInfo };
        const numSegments = (attrs as unknown as { numSegments: number }).numSegments;
        const wb = backend as unknown as WasmBackendLike;
        // segmentIds index the leading axes of x; each maps a row of `rowLen` values.
        const nIds = segmentIds.shape.reduce((a, b) => a * b, 1);
        const rowShape = x.shape.slice(segmentIds.shape.length);
        const rowLen = rowShape.reduce((a, b) => a * b, 1);
        const out = wb.makeOutput([numSegments, ...rowShape], x.dtype);
        const dst = view(wb, out);
        dst.fill(0);
        const src = view(wb, x);
        const ids = view(wb, segmentIds);
        // The first row into a segment is copied; only repeated segments need adding.
        const seen = new Uint8Array(numSegments);
        for (let i = 0; i < nIds; i++) {
          const s = ids[i];
          if (s < 0 || s >= numSegments) continue;
          const o = s * rowLen;
          const so = i * rowLen;
          if (!seen[s]) {
            dst.set(src.subarray(so, so + rowLen), o);
            seen[s] = 1;
          } else {
            for (let j = 0; j < rowLen; j++) dst[o + j] += src[so + j];
          }
        }
        return out;
      },
    });
  }
}
