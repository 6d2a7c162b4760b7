import { runningMs } from '../runtime/clock.js';

/** Seconds of progress before an ETA is shown ('--:--' until then). */
const MIN_RATE_SECONDS = 0.5;

/** A one-line progress bar on stderr (a plain line every few seconds when not a TTY). */
export class ProgressBar {
  private lastPlain = 0;
  private first?: { at: number; done: number };

  constructor(
    private readonly total: number,
    private readonly label: string,
    private readonly initial = 0,
  ) {}

  update(done: number, info = ''): void {
    // The rate is measured from the first update on: a bar made just before its first update (as
    // most are) would otherwise divide by a near-zero time and promise an ETA of 0:00. On the
    // running clock: a job stopped for a while (SIGSTOP) resumes with the ETA of its real rate.
    const now = runningMs();
    this.first ??= { at: now, done };
    const elapsed = (now - this.first.at) / 1000;
    const rate = elapsed >= MIN_RATE_SECONDS && done > this.first.done ? (done - this.first.done) / elapsed : 0;
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
  if (s >= 48 * 3600) return `${Math.floor(s / 86400).toLocaleString('en-US')}d ${Math.floor((s % 86400) / 3600)}h`;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}
