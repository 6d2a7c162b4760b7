/** A one-line progress bar on stderr (a plain line every few seconds when not a TTY). */
export class ProgressBar {
  private lastPlain = 0;
  private readonly start = performance.now();

  constructor(
    private readonly total: number,
    private readonly label: string,
    private readonly initial = 0,
  ) {}

  update(done: number, info = ''): void {
    const elapsed = (performance.now() - this.start) / 1000;
    const rate = (done - this.initial) / Math.max(elapsed, 1e-9);
    const eta = rate > 0 ? (this.total - done) / rate : Infinity;
    const frac = this.total > 0 ? done / this.total : 1;
    const width = 24;
    const filled = Math.round(frac * width);
    const bar = `${'#'.repeat(filled)}${'-'.repeat(width - filled)}`;
    const line = `${this.label} [${bar}] ${done}/${this.total} ${info} ETA ${formatDuration(eta)}`;
    if (process.stderr.isTTY) {
      process.stderr.write(`\r${line.slice(0, (process.stderr.columns ?? 120) - 1)}\x1b[K`);
      if (done >= this.total) process.stderr.write('\n');
    } else if (performance.now() - this.lastPlain > 10_000 || done >= this.total || done === this.initial + 1) {
      this.lastPlain = performance.now();
      process.stderr.write(`${line}\n`);
    }
  }

  finish(): void {
    if (process.stderr.isTTY) process.stderr.write('\n');
  }
}

export function formatDuration(sec: number): string {
  if (!Number.isFinite(sec)) return '--:--';
  const s = Math.round(sec);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}
