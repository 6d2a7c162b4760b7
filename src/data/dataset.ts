/** What every image source provides: a size and decoded 8-bit images by index. */
export interface RawImage {
  /** HWC, 8-bit. */
  data: Uint8Array;
  height: number;
  width: number;
  channels: 1 | 3;
}

export interface ImageDataset {
  /** Human-readable description (path, split) for logs and saved configs. */
  description: string;
  size: number;
  load(index: number): Promise<RawImage>;
  /** Content identity (a hash), where cheap to compute: a resumed run checks it is unchanged. */
  fingerprint?: string;
}

export interface LabeledDataset extends ImageDataset {
  numClasses: number;
  classNames: string[];
  label(index: number): number;
}
