/** The dense protocol's engine: in memory while its rows fit (the 512 MiB budget, and on a GPU one buffer binding), else out of core. */
import { describe, expect, it } from 'vitest';
import { denseEngine } from '../../src/eval/segmentation.js';

describe('dense engine', () => {
  const MiB = 2 ** 20;
  it('auto: in memory up to 512 MiB of rows; on a GPU only while they fit one binding; a forced tfjs beyond it is refused', () => {
    const rows = 65536; // x 1024 dims x 4 bytes = 256 MiB
    expect(denseEngine({ denseEngine: 'auto' }, rows, 1024, undefined)).toBe('tfjs');
    expect(denseEngine({ denseEngine: 'auto' }, 3 * rows, 1024, undefined)).toBe('cpu'); // 768 MiB
    expect(denseEngine({ denseEngine: 'auto' }, rows, 1024, 128 * MiB)).toBe('cpu');
    expect(denseEngine({ denseEngine: 'auto' }, rows / 4, 1024, 128 * MiB)).toBe('tfjs');
    expect(denseEngine({ denseEngine: 'cpu' }, rows, 1024, 128 * MiB)).toBe('cpu');
    expect(() => denseEngine({ denseEngine: 'tfjs' }, rows, 1024, 128 * MiB)).toThrow(
      /^--dense-engine tfjs: the 65536 training rows of 1024 take 256 MiB, over the WebGPU adapter's 128 MiB binding limit: pass --dense-engine cpu/,
    );
  });
});
