/**
 * The native CPU path (capi-native): its kernels (BatchMatMul, erf/exp/sin/cos, fused GELU) and the
 * layer forms it selects equal the stock wasm path on random
 * shapes (transposes, batch broadcasting, odd and zero sizes), train steps give the wasm
 * path's losses within 1e-4 relative, nothing leaks, and without the addon capi-ts falls back to
 * wasm. Skipped where the addon is not built (no libopenblas-dev): CI builds it.
 */
import * as os from 'node:os';
import { spawnSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs';
import { afterAll, describe, expect, it } from 'vitest';
import { sinkhornKnopp } from '../../src/model/heads.js';
import { applyRope, gelu } from '../../src/model/layers.js';
import { disposeState, initState, trainStep } from '../../src/pretrain/step.js';
import * as fs from 'node:fs';
import {
  disableNativeKernels,
  enableNativeKernels,
  loadNativeAddon,
  nativeMatmulActive,
  openblasCoreType,
} from '../../src/runtime/native.js';
import { machineName } from '../../src/runtime/backend.js';
import { Rng } from '../../src/runtime/rng.js';
import { randomBatch, tinyConfig } from '../pretrain/helpers.js';

const built = loadNativeAddon().addon !== undefined;
const wasNative = nativeMatmulActive();
afterAll(() => {
  if (wasNative) enableNativeKernels(2);
  else disableNativeKernels();
});

/** Runs `f` with the stock wasm kernel and with the native one. */
function both<T>(f: () => T): { stock: T; native: T } {
  disableNativeKernels();
  const stock = f();
  enableNativeKernels(2);
  const native = f();
  return { stock, native };
}

/** both() for a computation that reads its tensors asynchronously. */
async function bothAsync<T>(f: () => Promise<T>): Promise<{ stock: T; native: T }> {
  disableNativeKernels();
  const stock = await f();
  enableNativeKernels(2);
  const native = await f();
  return { stock, native };
}

const maxRelErr = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let scale = 1e-6;
  let err = 0;
  for (let i = 0; i < a.length; i++) scale = Math.max(scale, Math.abs(a[i]));
  for (let i = 0; i < a.length; i++) err = Math.max(err, Math.abs(a[i] - b[i]));
  return err / scale;
};

describe.skipIf(!built)('native BatchMatMul', () => {
  const rng = new Rng(11);
  const rand = (shape: number[]) =>
    tf.tensor(
      Float32Array.from({ length: shape.reduce((x, y) => x * y, 1) }, () => rng.normal()),
      shape,
    );
  const cases: [number[], number[], boolean, boolean][] = [
    [[1, 1], [1, 1], false, false],
    [[7, 13], [13, 5], false, false],
    [[13, 7], [13, 5], true, false],
    [[7, 13], [5, 13], false, true],
    [[13, 7], [5, 13], true, true],
    [[3, 2, 17, 9], [3, 2, 9, 33], false, false], // rank 4
    [[4, 6, 10], [10, 3], false, false], // b broadcast over the batch
    [[6, 10], [4, 10, 3], false, false], // a broadcast
    [[4, 10, 6], [1, 3, 10], true, true],
    [[0, 5], [5, 4], false, false], // zero-size output
    [[3, 0], [0, 4], false, false], // zero inner dimension: zeros
    [[2, 257, 129], [2, 129, 65], false, false],
  ];
  for (const [sa, sb, ta, tb] of cases) {
    it(`[${sa}]${ta ? 'ᵀ' : ''} x [${sb}]${tb ? 'ᵀ' : ''}`, () => {
      const a = rand(sa);
      const b = rand(sb);
      const { stock, native } = both(() => {
        const c = tf.matMul(a, b, ta, tb);
        const out = { shape: c.shape, data: c.dataSync().slice() };
        c.dispose();
        return out;
      });
      expect(native.shape).toEqual(stock.shape);
      const k = ta ? sa[sa.length - 2] : sa[sa.length - 1];
      // An empty sum is 0 (the stock kernel leaves such an output uninitialised).
      if (k === 0) expect(Array.from(native.data).every((v) => v === 0)).toBe(true);
      else expect(maxRelErr(stock.data, native.data)).toBeLessThan(1e-5);
      tf.dispose([a, b]);
    });
  }

  it('flushes denormal operands to zero in every thread of a product (FTZ/DAZ: no microcode assists)', () => {
    // 512 rows: OpenBLAS splits them over its threads, so every row range checks one thread's mode.
    const a = rand([512, 512]);
    const tiny = tf.tidy(() => tf.mul(rand([512, 64]), 1e-39));
    const { stock, native } = both(() => tf.tidy(() => tf.matMul(a, tiny).dataSync().slice()));
    expect(stock.some((v) => v !== 0)).toBe(true); // sums of 512 denormal terms reach the normal range
    expect(native.every((v) => v === 0)).toBe(true);
    tf.dispose([a, tiny]);
  });

  const UNARY = { erf: tf.erf, exp: tf.exp, sin: tf.sin, cos: tf.cos };
  for (const [op, f] of Object.entries(UNARY)) {
    it(`${op} equals the stock kernel (odd sizes, zero-size, NaN and infinities)`, () => {
      for (const n of [0, 1, 17, 1000]) {
        const x = tf.tensor(
          Float32Array.from({ length: n }, (_, i) => (i === 3 ? Number.NaN : i === 5 ? Number.POSITIVE_INFINITY : 4 * rng.normal())),
        );
        const { stock, native } = both(() => {
          const y = f(x);
          const out = y.dataSync().slice();
          y.dispose();
          return out;
        });
        expect(native.length).toBe(n);
        for (let i = 0; i < n; i++) {
          if (Number.isNaN(stock[i])) expect(native[i], `${op}(${x.dataSync()[i]})`).toBeNaN();
          else if (!Number.isFinite(stock[i])) expect(native[i], `${op}(${x.dataSync()[i]})`).toBe(stock[i]);
          else
            expect(Math.abs(native[i] - stock[i]), `${op}(${x.dataSync()[i]})`).toBeLessThanOrEqual(2e-6 * Math.max(1, Math.abs(stock[i])));
        }
        x.dispose();
      }
    });
  }

  it('the fused GELU and its gradient equal the stock composition (odd sizes, zero-size, large |x|)', () => {
    for (const n of [0, 1, 17, 1000]) {
      const x = tf.tensor(Float32Array.from({ length: n }, (_, i) => (i === 2 ? 30 : i === 4 ? -30 : 3 * rng.normal())));
      const w = tf.tensor(Float32Array.from({ length: n }, () => rng.normal()));
      const { stock, native } = both(() => {
        // dy ~ N(0, 1): the stock erf's own error (~1e-7, Abramowitz-Stegun) stays below the tolerance.
        const [y, [dx]] = [gelu(x), tf.grads((t: tf.Tensor) => tf.sum(tf.mul(gelu(t), w)))([x])];
        const out = { y: y.dataSync().slice(), dx: dx.dataSync().slice() };
        tf.dispose([y, dx]);
        return out;
      });
      expect(native.y.length).toBe(n);
      for (let i = 0; i < n; i++) {
        expect(Math.abs(native.y[i] - stock.y[i])).toBeLessThanOrEqual(2e-6 * Math.max(1, Math.abs(stock.y[i])));
        expect(Math.abs(native.dx[i] - stock.dx[i])).toBeLessThanOrEqual(2e-6 * Math.max(1, Math.abs(stock.dx[i])));
      }
      tf.dispose([x, w]);
    }
  });

  it('rotate-half as a signed-permutation matmul and SK sums as ones-products equal the stock forms', () => {
    const x = rand([3, 2, 5, 8]);
    const cos = rand([3, 1, 5, 8]);
    const sin = rand([3, 1, 5, 8]);
    const logits = rand([4, 6, 5]);
    const { stock, native } = both(() => {
      const outs = [
        applyRope(x, cos, sin, 'reference'),
        applyRope(x, cos, sin, 'axial'),
        sinkhornKnopp(logits, { positionwise: true, temperature: 0.5, iterations: 3 }),
      ];
      const data = outs.map((t) => t.dataSync().slice());
      tf.dispose(outs);
      return data;
    });
    stock.forEach((s, i) => expect(maxRelErr(s, native[i]), `output ${i}`).toBeLessThan(1e-5));
    tf.dispose([x, cos, sin, logits]);
  });

  it('gradients through matMul with transposes equal the stock path', () => {
    const a = rand([5, 8, 6]);
    const b = rand([5, 7, 6]);
    const { stock, native } = both(() => {
      const g = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.square(tf.matMul(x, y, false, true))))([a, b]);
      const out = g.map((t) => t.dataSync().slice());
      tf.dispose(g);
      return out;
    });
    stock.forEach((s, i) => expect(maxRelErr(s, native[i])).toBeLessThan(1e-5));
    tf.dispose([a, b]);
  });

  it('train steps (layers in their native forms) give the wasm losses within 1e-4 relative, and leak nothing', async () => {
    const cfg = tinyConfig();
    const { stock, native } = await bothAsync(async () => {
      const state = initState(cfg);
      const losses: number[] = [];
      const counts: number[] = [];
      for (let t = 0; t < 4; t++) {
        const m = await trainStep(state, randomBatch(cfg, t), cfg, 10);
        losses.push(m.capiLoss, m.clusteringLoss);
        counts.push(tf.memory().numTensors);
      }
      disposeState(state);
      return { losses, counts };
    });
    native.losses.forEach((l, i) => expect(Math.abs(l - stock.losses[i]) / Math.abs(stock.losses[i])).toBeLessThan(1e-4));
    expect(native.counts[3]).toBe(native.counts[1]);
  });
});

describe('OpenBLAS core', () => {
  it("the core type follows the CPU's vector extensions in /proc/cpuinfo's flags", () => {
    const cpuinfo = (flags: string) => `processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: ${flags}\nbugs\t\t: spectre_v1\n`;
    expect(openblasCoreType(cpuinfo('fpu sse sse2 avx avx2 fma avx512f avx512dq avx512cd avx512bw avx512vl avx512_bf16'))).toBe('SkylakeX');
    expect(openblasCoreType(cpuinfo('fpu sse sse2 avx avx2 fma avx512f'))).toBe('Haswell'); // AVX-512 without BW/VL: not SkylakeX's
    expect(openblasCoreType(cpuinfo('fpu sse sse2 avx fma'))).toBeUndefined();
    expect(openblasCoreType(cpuinfo(''))).toBeUndefined();
    expect(openblasCoreType('no flags line')).toBeUndefined();
  });

  it.skipIf(!built || process.platform !== 'linux')(
    "a fresh process loads the core this CPU's flags choose, and a user's OPENBLAS_CORETYPE wins",
    () => {
      const core = (env: NodeJS.ProcessEnv) => {
        const r = spawnSync(
          process.execPath,
          ['--import', 'tsx', '-e', "import('./src/runtime/native.ts').then((n) => console.log(n.loadNativeAddon().addon.coreName()))"],
          { encoding: 'utf8', env, timeout: 60_000 },
        );
        expect(r.status, r.stderr).toBe(0);
        return r.stdout.trim();
      };
      const { OPENBLAS_CORETYPE: _, ...unset } = process.env;
      const chosen = openblasCoreType(fs.readFileSync('/proc/cpuinfo', 'utf8'));
      if (chosen) expect(core(unset)).toBe(chosen);
      expect(core({ ...unset, OPENBLAS_CORETYPE: 'Prescott' })).toBe('Prescott');
    },
  );
});

describe('fallback', () => {
  it('with the addon hidden (CAPI_NATIVE=off), auto picks plain wasm and says so', () => {
    const r = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        '-e',
        "import('./src/runtime/backend.ts').then(async (b) => { const i = await b.initBackend('auto', 2); console.log(JSON.stringify(i)); })",
      ],
      { encoding: 'utf8', env: { ...process.env, CAPI_NATIVE: 'off', CAPI_BACKEND: '' }, timeout: 60_000 },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim().split('\n').at(-1)!)).toMatchObject({
      backend: 'wasm',
      provider: 'tfjs-backend-wasm',
      machine: machineName(), // recorded with every result and run
    });
    expect(r.stderr).toMatch(/backend: wasm \(tfjs-backend-wasm, 2 threads(; webgpu: [^;]*)?; capi-native off: CAPI_NATIVE=off\)/);
  });

  it("the machine's name carries the CPU's family and model number where /proc/cpuinfo has them", () => {
    const cpuinfo =
      'processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 207\nmodel name\t: Intel(R) Xeon(R) Processor\n';
    const named = `${os.cpus()[0].model.trim()}`;
    expect(machineName(cpuinfo)).toBe(`${named} (family 6 model 207), ${os.cpus().length} cores`);
    expect(machineName('')).toBe(`${named}, ${os.cpus().length} cores`);
  });

  it('the install step skips with one line where OpenBLAS is missing, and exits 0', () => {
    const r = spawnSync(process.execPath, ['native/build.mjs'], {
      encoding: 'utf8',
      env: { ...process.env, CAPI_NATIVE_CBLAS_H: '/nonexistent/cblas.h' },
    });
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(
      'capi-native: skipped: OpenBLAS not found (apt-get install libopenblas-dev for the native CPU path); capi-ts runs on the wasm backend',
    );
  });
});
