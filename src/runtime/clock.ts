/**
 * The clock every recorded time reads: monotonic milliseconds less the time the process did not
 * run at all (stopped with SIGSTOP / Ctrl-Z, or the machine suspended). The guide has us pause a
 * study with SIGSTOP while we measure speed; on the wall clock those pauses became "training time"
 * (the supervised ceiling's clock grew ~158 min for ~31-60 min of steps).
 *
 * Nothing in a stopped process runs, and the main thread blocks for whole train steps, so only an
 * independent ticker can see a stop: a worker thread wakes every TICK_MS and adds any gap over
 * GAP_MS between its wakes to a shared counter. A thread that asks for no CPU for a tenth of a
 * second is not kept waiting a whole second by a busy machine (the study beside a CI run woke it
 * within tens of ms), so such gaps are stops. The counter is a duration (the worker's
 * performance.now() has its own origin), read with Atomics.
 */
import { Worker } from 'node:worker_threads';

const TICK_MS = 100;
const GAP_MS = 1000;

/** Plain JS (not TypeScript): it runs as given, whatever loader started the main thread. */
const TICKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const suspendedUs = new BigInt64Array(workerData);
let last = performance.now();
setInterval(() => {
  const now = performance.now();
  const gap = now - last;
  if (gap > ${GAP_MS}) Atomics.add(suspendedUs, 0, BigInt(Math.round(1000 * (gap - ${TICK_MS}))));
  last = now;
}, ${TICK_MS});
`;

let suspendedUs: BigInt64Array | undefined;

function counter(): BigInt64Array {
  if (!suspendedUs) {
    const shared = new SharedArrayBuffer(8);
    suspendedUs = new BigInt64Array(shared);
    // No execArgv: the ticker is CommonJS whatever flags (--input-type, loaders) started the process.
    const ticker = new Worker(TICKER_SOURCE, { eval: true, workerData: shared, execArgv: [] });
    ticker.on('error', (e) => process.stderr.write(`running clock: its ticker failed (${e.message}); times include stops from now on\n`));
    ticker.unref();
  }
  return suspendedUs;
}

/** Seconds this process has been stopped since the clock started (the first call to it or to runningMs). */
export function suspendedSeconds(): number {
  return Number(Atomics.load(counter(), 0)) / 1e6;
}

/** Milliseconds on a monotonic clock that stands still while the process is stopped. */
export function runningMs(): number {
  const stopped = suspendedSeconds();
  return performance.now() - 1000 * stopped;
}
