/**
 * Image transforms on the CPU (method spec 9): RandomResizedCrop (torchvision's sampling),
 * bicubic resampling (PyTorch's a = -0.75 kernel), horizontal flip, [0, 1] scaling and ImageNet
 * normalisation. Grey images are repeated to 3 channels (the models take RGB).
 */
import type { Rng } from '../runtime/rng.js';
import type { RawImage } from './dataset.js';

export const IMAGENET_MEAN = [0.485, 0.456, 0.406];
export const IMAGENET_STD = [0.229, 0.224, 0.225];

export interface CropBox {
  top: number;
  left: number;
  height: number;
  width: number;
}

/** torchvision RandomResizedCrop.get_params: 10 tries of area/log-aspect sampling, then centre crop. */
export function randomResizedCropBox(
  rng: Rng,
  h: number,
  w: number,
  scale: [number, number],
  ratio: [number, number] = [3 / 4, 4 / 3],
): CropBox {
  const area = h * w;
  const logRatio = [Math.log(ratio[0]), Math.log(ratio[1])];
  for (let i = 0; i < 10; i++) {
    const target = area * rng.uniformIn(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniformIn(logRatio[0], logRatio[1]));
    const cw = Math.round(Math.sqrt(target * aspect));
    const ch = Math.round(Math.sqrt(target / aspect));
    if (cw > 0 && cw <= w && ch > 0 && ch <= h) {
      return { top: rng.randint(0, h - ch), left: rng.randint(0, w - cw), height: ch, width: cw };
    }
  }
  const inRatio = w / h;
  let cw = w,
    ch = h;
  if (inRatio < ratio[0]) ch = Math.round(w / ratio[0]);
  else if (inRatio > ratio[1]) cw = Math.round(h * ratio[1]);
  return { top: Math.floor((h - ch) / 2), left: Math.floor((w - cw) / 2), height: ch, width: cw };
}

/** Centre crop box of the largest square, after which a resize gives the eval transform. */
export function centerCropBox(h: number, w: number, fraction = 1): CropBox {
  const s = Math.round(Math.min(h, w) * fraction);
  return { top: Math.floor((h - s) / 2), left: Math.floor((w - s) / 2), height: s, width: s };
}

function cubic(x: number): number {
  const a = -0.75;
  x = Math.abs(x);
  if (x <= 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
  return 0;
}

/**
 * Taps and weights to resample the `inLen` samples starting at `start` onto `outLen`
 * (align_corners=False); taps are clamped to the crop, as torchvision's crop-then-resize does.
 */
function resampleTaps(start: number, inLen: number, outLen: number) {
  const idx = new Int32Array(outLen * 4);
  const wts = new Float32Array(outLen * 4);
  const scale = inLen / outLen;
  for (let o = 0; o < outLen; o++) {
    const src = (o + 0.5) * scale - 0.5;
    const f = Math.floor(src);
    const t = src - f;
    for (let k = 0; k < 4; k++) {
      idx[o * 4 + k] = start + Math.min(inLen - 1, Math.max(0, f - 1 + k));
      wts[o * 4 + k] = cubic(t + 1 - k);
    }
  }
  return { idx, wts };
}

export interface ImageTransform {
  /** Output side in pixels. */
  size: number;
  box: CropBox;
  flip: boolean;
}

/**
 * Crops `box` from `img`, resizes it bicubically to size x size, optionally flips, scales to
 * [0, 1], normalises, and writes CHW float32 (3 channels) into `out` at `offset`.
 */
export function renderImage(img: RawImage, t: ImageTransform, out: Float32Array, offset: number): void {
  const { size, box } = t;
  const c = img.channels;
  const cols = resampleTaps(box.left, box.width, size);
  const rows = resampleTaps(box.top, box.height, size);
  const tmp = new Float32Array(img.height * size * c); // horizontal pass over the crop's rows
  for (let y = box.top; y < box.top + box.height; y++) {
    for (let x = 0; x < size; x++) {
      const xo = t.flip ? size - 1 - x : x;
      for (let ch = 0; ch < c; ch++) {
        let acc = 0;
        for (let k = 0; k < 4; k++) acc += cols.wts[x * 4 + k] * img.data[(y * img.width + cols.idx[x * 4 + k]) * c + ch];
        tmp[(y * size + xo) * c + ch] = acc;
      }
    }
  }
  const plane = size * size;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let v = 0;
      for (let ch = 0; ch < 3; ch++) {
        // A grey image's one channel is resampled once and written to all three.
        if (ch < c) {
          let acc = 0;
          for (let k = 0; k < 4; k++) acc += rows.wts[y * 4 + k] * tmp[(rows.idx[y * 4 + k] * size + x) * c + ch];
          v = Math.min(255, Math.max(0, acc)) / 255;
        }
        out[offset + ch * plane + y * size + x] = (v - IMAGENET_MEAN[ch]) / IMAGENET_STD[ch];
      }
    }
  }
}

/** RandomResizedCrop(scale) + horizontal flip(p), drawn from `rng`: pretraining (method spec 9) and reference-mode probes (eval spec 1.4). */
export function randomResizedCropFlip(rng: Rng, img: RawImage, size: number, scale: [number, number], flipP: number): ImageTransform {
  const box = randomResizedCropBox(rng, img.height, img.width, scale);
  return { size, box, flip: rng.uniform() < flipP };
}
