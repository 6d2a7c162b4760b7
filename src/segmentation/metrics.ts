/**
 * Segmentation metrics (eval spec 3.8): pixels whose ground truth is in the ignore set are
 * removed; mIoU over all remaining pixels (global, not per image), macro-averaged over the
 * classes present in ground truth or predictions (a predicted class absent from the ground truth
 * counts with IoU 0); pixel accuracy.
 */
export interface SegScores {
  mIoU: number;
  accuracy: number;
  /** IoU per label that entered the mean. */
  perClass: Map<number, number>;
  pixels: number;
}

export function segmentationScores(gt: ArrayLike<number>, pred: ArrayLike<number>, ignore: readonly number[]): SegScores {
  if (gt.length !== pred.length) throw new Error(`segmentationScores: ${gt.length} labels vs ${pred.length} predictions`);
  const ignored = new Set(ignore);
  const tp = new Map<number, number>();
  const gtCount = new Map<number, number>();
  const predCount = new Map<number, number>();
  let correct = 0;
  let pixels = 0;
  const inc = (m: Map<number, number>, k: number) => m.set(k, (m.get(k) ?? 0) + 1);
  for (let i = 0; i < gt.length; i++) {
    const g = gt[i];
    if (ignored.has(g)) continue;
    const p = pred[i];
    pixels++;
    inc(gtCount, g);
    inc(predCount, p);
    if (g === p) {
      correct++;
      inc(tp, g);
    }
  }
  const perClass = new Map<number, number>();
  for (const c of new Set([...gtCount.keys(), ...predCount.keys()])) {
    const t = tp.get(c) ?? 0;
    perClass.set(c, t / ((gtCount.get(c) ?? 0) + (predCount.get(c) ?? 0) - t));
  }
  const ious = [...perClass.values()];
  return {
    mIoU: ious.length ? ious.reduce((a, b) => a + b, 0) / ious.length : 0,
    accuracy: pixels ? correct / pixels : 0,
    perClass,
    pixels,
  };
}

/**
 * The bootstrap's draws over `images` test images: uniform, with replacement, from a small LCG
 * seeded by `seed` (the draws only need to be reproducible and uniform enough for a bootstrap).
 * The r-th resample depends on (images, seed, r) alone, so every result on one test set is
 * resampled with the same images and two results' replicates pair one by one.
 */
export function imageResampler(images: number, seed = 0): () => number {
  let state = (seed * 2654435761 + 1) >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return Math.floor((state / 4294967296) * images);
  };
}

/** The mIoU's bootstrap: its standard error and the replicates it was computed from (fractions). */
export interface MIoUBootstrap {
  se: number;
  /** The mIoU of each resample, in the order `imageResampler` draws them. */
  replicates: Float64Array;
}

/**
 * The mIoU's bootstrap over test images (the unit that is sampled: pixels of one image are not
 * independent): per-image true-positive / ground-truth / prediction counts per label, `resamples`
 * draws of the images with replacement (`imageResampler`), the std of the resampled mIoUs.
 */
export function bootstrapMIoU(
  gt: ArrayLike<number>,
  pred: ArrayLike<number>,
  pixelImage: (pixel: number) => number,
  images: number,
  ignore: readonly number[],
  numLabels: number,
  resamples = 1000,
  seed = 0,
): MIoUBootstrap {
  const ignored = new Set(ignore);
  const tp = new Float64Array(images * numLabels);
  const gc = new Float64Array(images * numLabels);
  const pc = new Float64Array(images * numLabels);
  for (let i = 0; i < gt.length; i++) {
    const g = gt[i];
    if (ignored.has(g)) continue;
    const base = pixelImage(i) * numLabels;
    gc[base + g]++;
    pc[base + pred[i]]++;
    if (pred[i] === g) tp[base + g]++;
  }
  const draw = imageResampler(images, seed);
  const t = new Float64Array(numLabels);
  const g = new Float64Array(numLabels);
  const p = new Float64Array(numLabels);
  const replicates = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    t.fill(0);
    g.fill(0);
    p.fill(0);
    for (let k = 0; k < images; k++) {
      const base = draw() * numLabels;
      for (let c = 0; c < numLabels; c++) {
        t[c] += tp[base + c];
        g[c] += gc[base + c];
        p[c] += pc[base + c];
      }
    }
    let sum = 0;
    let n = 0;
    for (let c = 0; c < numLabels; c++) {
      if (g[c] + p[c] === 0) continue;
      sum += t[c] / (g[c] + p[c] - t[c]);
      n++;
    }
    replicates[r] = n ? sum / n : 0;
  }
  const mean = replicates.reduce((a, b) => a + b, 0) / resamples;
  const se = Math.sqrt(replicates.reduce((a, v) => a + (v - mean) ** 2, 0) / Math.max(1, resamples - 1));
  return { se, replicates };
}

/** Mean IoU over the labels except `background` (the paper's mIoU counts the background too). */
export function foregroundIoU(perClass: Map<number, number>, background: number): number {
  const ious = [...perClass.entries()].filter(([c]) => c !== background).map(([, v]) => v);
  return ious.length ? ious.reduce((a, b) => a + b, 0) / ious.length : 0;
}

/** What a dense task's scores mean: chance-like floors and the patch-size ceiling, from test labels alone. */
export interface DenseReferences {
  /** Every pixel predicted as the most frequent (non-ignored) label. */
  majority: SegScores;
  /** Background (`background` label) where the ground truth is background, else the most frequent other label. */
  backgroundOracle: SegScores;
  /** Every pixel predicted as its patch's mode label: the best a per-patch classifier can do. */
  patchOracle: SegScores;
}

/**
 * Floors and ceiling of a dense task (what separates models lies between them) from its test
 * pixel labels [patches, p] (patch-major, as PatchSet.pixels) and each patch's mode.
 */
export function denseReferences(
  pixels: Int32Array,
  modes: Int32Array,
  pixelsPerPatch: number,
  ignore: readonly number[],
  background: number | undefined,
): DenseReferences {
  const ignored = new Set(ignore);
  const counts = new Map<number, number>();
  for (const v of pixels) if (!ignored.has(v)) counts.set(v, (counts.get(v) ?? 0) + 1);
  const byCount = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0]);
  const majority = byCount[0]?.[0] ?? 0;
  const foreground = byCount.find(([v]) => v !== background)?.[0] ?? majority;
  const fill = (f: (gt: number, i: number) => number) => Int32Array.from(pixels, f);
  return {
    majority: segmentationScores(
      pixels,
      fill(() => majority),
      ignore,
    ),
    backgroundOracle: segmentationScores(
      pixels,
      fill((g) => (g === background ? background : foreground)),
      ignore,
    ),
    patchOracle: segmentationScores(
      pixels,
      fill((_, i) => modes[Math.floor(i / pixelsPerPatch)]),
      ignore,
    ),
  };
}
