/**
 * Seedable PRNG (sfc32) with a serialisable state, so that masking, augmentation, drop-path and
 * shuffling are reproducible and resume exactly from a checkpoint.
 */
export class Rng {
  private s: Uint32Array;

  constructor(seed: number | readonly number[]) {
    if (typeof seed === 'number') {
      // splitmix32 to spread a small integer seed over the four words.
      let x = seed >>> 0;
      const next = () => {
        x = (x + 0x9e3779b9) >>> 0;
        let z = x;
        z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
        z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
        return (z ^ (z >>> 16)) >>> 0;
      };
      this.s = Uint32Array.from([next(), next(), next(), next()]);
      for (let i = 0; i < 12; i++) this.nextUint32();
    } else {
      this.s = Uint32Array.from(seed);
    }
  }

  /** A generator seeded from several integers (e.g. seed, step, stream), well mixed. */
  static derive(...keys: number[]): Rng {
    let h = 0x811c9dc5;
    for (const k of keys) {
      h = Math.imul(h ^ (k >>> 0), 0x01000193) >>> 0;
      h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 0;
      h = Math.imul(h ^ Math.floor(k / 4294967296), 0x297a2d39) >>> 0;
    }
    return new Rng(h);
  }

  state(): number[] {
    return Array.from(this.s);
  }

  /** An independent stream derived from this one (advances this one by 4 draws). */
  fork(): Rng {
    return new Rng([this.nextUint32(), this.nextUint32(), this.nextUint32(), this.nextUint32() | 1]);
  }

  nextUint32(): number {
    const s = this.s;
    const t = (((s[0] + s[1]) >>> 0) + s[3]) >>> 0;
    s[3] = (s[3] + 1) >>> 0;
    s[0] = s[1] ^ (s[1] >>> 9);
    s[1] = (s[2] + (s[2] << 3)) >>> 0;
    s[2] = (s[2] << 21) | (s[2] >>> 11);
    s[2] = (s[2] + t) >>> 0;
    return t;
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform in [lo, hi). */
  uniformIn(lo: number, hi: number): number {
    return lo + (hi - lo) * this.uniform();
  }

  /** Integer uniform in [lo, hi], both ends included (Python's random.randint). */
  randint(lo: number, hi: number): number {
    return lo + Math.floor(this.uniform() * (hi - lo + 1));
  }

  normal(): number {
    let u = 0;
    while (u === 0) u = this.uniform();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.uniform());
  }

  /** A uniformly random permutation of 0..n-1 (Fisher-Yates). */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(this.uniform() * (i + 1));
      const t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    return p;
  }
}

/**
 * Every random stream of the project, in one place: `Rng.derive(seed, [step or index,] STREAM.x)`
 * keeps the streams independent and each draw a pure function of its keys (so runs resume and
 * features cache exactly). Values are part of the results: changing one changes numbers.
 */
export const STREAM = {
  /** Pretraining: masks and drop-path of step t, data order of epoch e, augmentation of step t. */
  mask: 1,
  dropPath: 2,
  shuffle: 11,
  augment: 12,
  /** Pretraining diagnostics of step t (the position-cluster MI's shuffles); never the training's draws. */
  diagnostics: 13,
  /** fmnist-scenes canvases of the train and test splits. */
  scenesTrain: 1,
  scenesTest: 2,
  /** fmnist-canvas canvases of the train and test splits. */
  canvasTrain: 3,
  canvasTest: 4,
  /** Weight initialisation of a pretraining run. */
  init: 0xc0ffee,
  /** Augmented batches of the reference-mode probes ('prob'). */
  probeAugment: 0x70726f62,
} as const;
