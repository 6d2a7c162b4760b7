/**
 * Decoded images kept in memory up to a byte budget, so that an evaluation decodes each image
 * once for all the models it evaluates (past the budget, images are decoded again when asked).
 */
import type { ImageDataset, RawImage } from './dataset.js';

export class ImageMemo {
  private readonly images = new Map<number, RawImage>();
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  get(index: number): RawImage | undefined {
    return this.images.get(index);
  }

  /** Keeps `image` if it fits the budget. */
  put(index: number, image: RawImage): void {
    if (this.images.has(index) || this.bytes + image.data.byteLength > this.maxBytes) return;
    this.images.set(index, image);
    this.bytes += image.data.byteLength;
  }
}

/** `d` with its loads served from (and stored in) `memo`. */
export function memoized<T extends ImageDataset>(d: T, memo: ImageMemo): T {
  return {
    ...d,
    load: async (i: number) => {
      const hit = memo.get(i);
      if (hit) return hit;
      const img = await d.load(i);
      memo.put(i, img);
      return img;
    },
  };
}
