/** The progress bar's ETA: none until a rate is measured (never a false 0:00), then the remaining work at that rate. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { formatDuration, ProgressBar } from '../../src/cli/progress.js';

afterEach(() => vi.restoreAllMocks());

describe('ProgressBar', () => {
  it('shows no ETA on its first line, then (total - done) / rate from the first update on', () => {
    let now = 1000;
    vi.spyOn(performance, 'now').mockImplementation(() => now);
    const lines: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((s) => {
      lines.push(String(s));
      return true;
    });
    // A resumed run: the bar is made as step 100's record arrives, out of 1,100.
    const bar = new ProgressBar(1100, 'pretrain', 100);
    bar.update(101);
    expect(lines.at(-1)).toContain('ETA --:--');
    now += 20_000; // 20 s for 40 more steps: 2 steps/s, 959 to go
    bar.update(141);
    expect(lines.at(-1)).toContain(`ETA ${formatDuration(959 / 2)}`);
  });

  it('formats long durations in days', () => {
    expect(formatDuration(59)).toBe('0:59');
    expect(formatDuration(3 * 3600 + 62)).toBe('3:01:02');
    expect(formatDuration(1e8 * 3600)).toBe('4,166,666d 16h');
  });
});
