/**
 * A long run must never lose work or lie: signals stop with a checkpoint and resume exactly; an
 * oversized batch is refused in seconds; a diverged run never overwrites its last finite
 * checkpoint and evaluation refuses non-finite weights; a torn metrics line does not block
 * resume; a checkpoint of another run, changed data and bad images are refused before anything
 * is written.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { loadEncoder } from '../../src/model/io/load.js';
import { readTrainState, writeTeacherExport } from '../../src/model/io/run-files.js';
import { readSafetensors, writeSafetensors } from '../../src/model/io/safetensors.js';
import type { RunOptions } from '../../src/pretrain/loop.js';
import { runPretraining } from '../../src/pretrain/loop.js';
import { disposeState } from '../../src/pretrain/step.js';
import { backendInfo } from '../../src/runtime/backend.js';
import { tinyConfig, tinyFlags } from './helpers.js';

const SLICE = path.resolve('data/fmnist-slice');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'capi-robust-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const RUN = [...tinyFlags({ batchSize: 32 }), '--steps', '40', '--checkpoint-every', '1000', '--data-dir', SLICE];

const opts = (out: string, o: Partial<RunOptions> = {}): RunOptions => ({
  out,
  resume: false,
  stopAfter: 0,
  backend: backendInfo(),
  log: () => {},
  ...o,
});

const metricsOf = (dir: string) =>
  fs
    .readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { step: number; capiLoss: number; clusteringLoss: number });

const trace = (dir: string) => metricsOf(dir).map((m) => [m.step, m.capiLoss, m.clusteringLoss]);

function exited(p: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  let stderr = '';
  p.stderr?.on('data', (d) => {
    stderr += d;
  });
  return new Promise((resolve) => p.on('close', (code, signal) => resolve({ code, signal, stderr })));
}

async function untilSteps(dir: string, n: number): Promise<void> {
  const file = path.join(dir, 'metrics.jsonl');
  for (let i = 0; i < 1200; i++) {
    if (fs.existsSync(file) && fs.readFileSync(file, 'utf8').split('\n').length > n) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no ${n} steps in ${file}`);
}

let reference: number[][] | undefined;
/** The uninterrupted run's metrics, for comparison. */
async function referenceTrace(): Promise<number[][]> {
  if (!reference) {
    const dir = path.join(tmp, 'reference');
    const r = await runPretraining(tinyConfig({ dataDir: SLICE, batchSize: 32, steps: 40, checkpointEvery: 1000 }), opts(dir));
    disposeState(r.state);
    reference = trace(dir);
  }
  return reference;
}

function resume(dir: string) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/pretrain.ts', '--out', dir, '--resume'], {
    encoding: 'utf8',
    timeout: 300_000,
  });
}

/** The worker under an npm script (with `exec`, npm's own child). */
function workerOf(npmPid: number): number {
  const out = spawnSync('ps', ['-o', 'pid=', '--ppid', String(npmPid)], { encoding: 'utf8' }).stdout.trim();
  return Number(out.split('\n')[0]);
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('signals', () => {
  // What a job scheduler does (Slurm signals the job's process group, or the script's process).
  for (const [signal, target] of [
    ['SIGTERM', 'npm'],
    ['SIGTERM', 'group'],
    ['SIGINT', 'group'],
  ] as const) {
    it(`${signal} to ${target === 'npm' ? 'npm alone' : 'the process group'} under npm run: the worker checkpoints and is gone before npm exits with its status; resume is identical`, async () => {
      const dir = path.join(tmp, `npm-${signal}-${target}`);
      const p = spawn('npm', ['run', '-s', 'pretrain', '--', '--out', dir, ...RUN], {
        detached: true,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      const done = exited(p);
      await untilSteps(dir, 5);
      const worker = workerOf(p.pid!);
      expect(alive(worker)).toBe(true);
      process.kill(target === 'npm' ? p.pid! : -p.pid!, signal);
      const r = await done;
      // npm ends as its worker did: exit 128 + n, or killed by the same signal (it re-raises it).
      const code = signal === 'SIGINT' ? 130 : 143;
      expect(r.code === code || r.signal === signal, `code ${r.code} signal ${r.signal}: ${r.stderr}`).toBe(true);
      expect(alive(worker)).toBe(false);
      const step = Number(readTrainState(path.join(dir, 'checkpoint.safetensors')).meta.step);
      expect(step).toBeGreaterThanOrEqual(5);
      expect(step).toBeLessThan(40);
      expect(fs.existsSync(path.join(dir, '.capi-lock'))).toBe(false);
      const again = resume(dir);
      expect(again.status, again.stderr).toBe(0);
      expect(trace(dir)).toEqual(await referenceTrace());
    });
  }

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal} to the node process: checkpoint, message, exit ${signal === 'SIGINT' ? 130 : 143}; resume is identical`, async () => {
      const dir = path.join(tmp, signal);
      const p = spawn(process.execPath, ['--import', 'tsx', 'src/cli/pretrain.ts', '--out', dir, ...RUN], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      const done = exited(p);
      await untilSteps(dir, 5);
      p.kill(signal);
      const r = await done;
      expect(r.code).toBe(signal === 'SIGINT' ? 130 : 143);
      const line = r.stderr.split('\n').find((l) => l.includes('resume with'));
      expect(line).toContain(`npm run pretrain -- --out ${dir} --resume`);
      const again = resume(dir);
      expect(again.status, again.stderr).toBe(0);
      expect(trace(dir)).toEqual(await referenceTrace());
      // A finished run says so, and does nothing.
      const third = resume(dir);
      expect(third.status).toBe(0);
      expect(third.stderr).toContain('already complete (step 40 of 40)');
    });
  }
  it('a SIGSTOP (the guide pauses studies so) is not training time: the clock skips the 3 s stop', async () => {
    const dir = path.join(tmp, 'SIGSTOP');
    const p = spawn(process.execPath, ['--import', 'tsx', 'src/cli/pretrain.ts', '--out', dir, ...RUN], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const done = exited(p);
    await untilSteps(dir, 5);
    p.kill('SIGSTOP');
    await new Promise((r) => setTimeout(r, 3000));
    p.kill('SIGCONT');
    expect((await done).code).toBe(0);
    const clock = metricsOf(dir).map((m) => (m as unknown as { elapsedSec: number }).elapsedSec);
    const longest = Math.max(...clock.slice(1).map((e, i) => e - clock[i]!));
    // A step here takes well under a second; on the wall clock one of them would read >= 3 s.
    expect(longest).toBeLessThan(1);
    expect(trace(dir)).toEqual(await referenceTrace());
  });
});

describe('one writer per run folder', () => {
  it('a second pretrain in the same --out is refused, naming the first; the first run is untouched', async () => {
    const dir = path.join(tmp, 'two-writers');
    const first = spawn(process.execPath, ['--import', 'tsx', 'src/cli/pretrain.ts', '--out', dir, ...RUN], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const done = exited(first);
    await untilSteps(dir, 3);
    const second = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/pretrain.ts', '--out', dir, ...RUN, '--seed', '7'], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(second.status).toBe(1);
    expect(second.stderr.trim().split('\n').at(-1)).toMatch(
      new RegExp(
        `^error: .*two-writers is in use by another training run: PID ${first.pid} on .* since .*; wait for it to finish, or pass --take-over`,
      ),
    );
    expect((await done).code).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')).train.seed).toBe(0);
    expect(trace(dir)).toEqual(await referenceTrace());
  });
});

describe('out of memory', () => {
  it('refuses an oversized batch on the 2-thread wasm backend within seconds, before writing anything', async () => {
    const dir = path.join(tmp, 'oom');
    const t0 = performance.now();
    const r = spawnSync(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/cli/pretrain.ts',
        '--out',
        dir,
        '--batch-size',
        '1000',
        '--steps',
        '2',
        '--data-dir',
        SLICE,
        '--threads',
        '2',
      ],
      {
        encoding: 'utf8',
        timeout: 120_000,
      },
    );
    expect(r.status).toBe(1);
    const line = r.stderr.trim().split('\n').at(-1)!;
    expect(line).toMatch(
      /^error: a step at batch 1000 needs about [\d.]+ GiB of the wasm backend's 4 GiB heap .* lower --batch-size to at most \d+$/,
    );
    expect(performance.now() - t0).toBeLessThan(60_000);
    expect(fs.existsSync(dir)).toBe(false); // nothing written, not even the folder
  });
});

describe('divergence', () => {
  it('never replaces the last finite checkpoint with a non-finite one, and eval refuses non-finite weights', async () => {
    const dir = path.join(tmp, 'nan');
    const cfg = tinyConfig({ dataDir: SLICE, batchSize: 32, steps: 20, lr: 1e6, teacherMomentum: 0.99, checkpointEvery: 1 });
    await expect(runPretraining(cfg, opts(dir))).rejects.toThrow(/training diverged: .* the checkpoint of step \d+ is kept/);
    const saved = readTrainState(path.join(dir, 'checkpoint.safetensors'));
    const enc = await loadEncoder(dir); // the teacher export of that step: finite, so it loads
    expect(Object.keys(enc.params).length).toBeGreaterThan(0);
    tf.dispose(Object.values(enc.params));
    expect(Number(saved.meta.step)).toBeGreaterThan(0);

    // An export with a NaN is refused by name.
    const bad = path.join(tmp, 'nan-export');
    const named: tf.NamedTensorMap = {};
    for (const [k, t] of Object.entries((await loadEncoder(dir)).params)) named[k] = k === 'mask_token' ? tf.fill(t.shape, Number.NaN) : t;
    await writeTeacherExport(bad, 1, named, enc.config, {});
    await expect(loadEncoder(bad)).rejects.toThrow(/weight tensors hold NaN or infinite values \(e.g. mask_token\): the run diverged/);
  });
});

describe('resume checks', () => {
  it('a torn last metrics line: resume repairs it and continues identically', async () => {
    const dir = path.join(tmp, 'torn');
    const cfg = tinyConfig({ dataDir: SLICE, batchSize: 32, steps: 40, checkpointEvery: 1000 });
    disposeState((await runPretraining(cfg, opts(dir, { stopAfter: 10 }))).state);
    fs.appendFileSync(path.join(dir, 'metrics.jsonl'), '{"step":10,"capiLo');
    const logs: string[] = [];
    disposeState((await runPretraining(cfg, opts(dir, { resume: true, log: (l) => logs.push(l) }))).state);
    expect(logs.some((l) => l.includes('dropped a torn last line'))).toBe(true);
    expect(trace(dir)).toEqual(await referenceTrace());
  });

  it("refuses another architecture's checkpoint, a different preset, and changed data; --force-resume overrides", async () => {
    const a = path.join(tmp, 'arch-a');
    const b = path.join(tmp, 'arch-b');
    const base = { dataDir: SLICE, batchSize: 32, steps: 4, checkpointEvery: 1000 };
    disposeState((await runPretraining(tinyConfig({ ...base }), opts(a, { stopAfter: 2 }))).state);
    disposeState((await runPretraining(tinyConfig({ ...base, dim: 32, predDim: 32 }), opts(b, { stopAfter: 2 }))).state);
    fs.copyFileSync(path.join(b, 'checkpoint.safetensors'), path.join(a, 'checkpoint.safetensors'));
    await expect(runPretraining(tinyConfig(base), opts(a, { resume: true }))).rejects.toThrow(
      /is not this run's checkpoint: its model differs .*\(dim: 64 vs 32\)/,
    );
    await expect(runPretraining(tinyConfig(base), opts(b, { resume: true, requestedPreset: 'vit-s14' }))).rejects.toThrow(
      /--preset vit-s14: the run in .* is a fmnist-tiny run/,
    );
    const forced = await runPretraining(tinyConfig(base), opts(a, { resume: true, forceResume: true }));
    expect(forced.state.step).toBe(4);
    disposeState(forced.state);

    // Changed data: a folder run whose images change between stop and resume.
    const images = path.join(tmp, 'changing');
    await writeImages(images, 40);
    const c = path.join(tmp, 'changed');
    const folderCfg = tinyConfig({ data: images, batchSize: 8, steps: 4, checkpointEvery: 1000 });
    disposeState((await runPretraining(folderCfg, opts(c, { stopAfter: 2 }))).state);
    await writeImages(images, 41);
    await expect(runPretraining(folderCfg, opts(c, { resume: true }))).rejects.toThrow(
      /the training images changed since this run started/,
    );
  });
});

describe('resume on changed code', () => {
  it('refuses a checkpoint whose training-step code differs, names the files; --force-resume continues and is recorded', async () => {
    const dir = path.join(tmp, 'code-changed');
    const cfg = tinyConfig({ dataDir: SLICE, batchSize: 32, steps: 4, checkpointEvery: 1000 });
    disposeState((await runPretraining(cfg, opts(dir, { stopAfter: 2 }))).state);
    const started = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    expect(started.code.commit).toMatch(/^([0-9a-f]{12}|none)$/);
    expect(Object.keys(started.trainingCode.files)).toContain('src/pretrain/step.ts');
    // The checkpoint as an earlier version of src/pretrain/schedules.ts would have written it.
    const file = path.join(dir, 'checkpoint.safetensors');
    const { tensors, metadata } = readSafetensors(file);
    const recorded = JSON.parse(metadata.trainingCode);
    recorded.files['src/pretrain/schedules.ts'] = '0000000000000000';
    const entries = new Map([...tensors].map(([k, t]) => [k, { shape: t.shape, data: t.data as Float32Array }]));
    writeSafetensors(file, entries, { ...metadata, trainingCode: JSON.stringify(recorded) });
    await expect(runPretraining(cfg, opts(dir, { resume: true }))).rejects.toThrow(
      /the training step's code changed since this checkpoint \(.* -> .*: src\/pretrain\/schedules\.ts\): .*pass --force-resume/,
    );
    const logs: string[] = [];
    const r = await runPretraining(cfg, opts(dir, { resume: true, forceResume: true, log: (l) => logs.push(l) }));
    disposeState(r.state);
    expect(r.state.step).toBe(4);
    expect(logs.some((l) => l.startsWith('--force-resume: the training step'))).toBe(true);
    const saved = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    expect(saved.code).toEqual(started.code); // the code that started the run stays recorded
    expect(saved.resumes).toEqual([{ step: 2, code: started.code, trainingCodeChanged: true, forced: true }]);
  });
});

async function writeImages(dir: string, n: number): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  for (let i = 0; i < n; i++) {
    const px = Buffer.alloc(32 * 32 * 3, (i * 37) % 256);
    await sharp(px, { raw: { width: 32, height: 32, channels: 3 } })
      .png()
      .toFile(path.join(dir, `img${String(i).padStart(3, '0')}.png`));
  }
}

describe('bad images', () => {
  it('a truncated JPEG body: named before the run in a folder that is decoded whole; named at its step in a larger one, then left out on resume with --skip-bad-images', async () => {
    const images = path.join(tmp, 'truncated');
    await writeImages(images, 40);
    const jpg = path.join(images, 'img007.jpg');
    const noise = Buffer.from(Array.from({ length: 256 * 256 * 3 }, (_, i) => (i * 7919) % 251));
    await sharp(noise, { raw: { width: 256, height: 256, channels: 3 } })
      .jpeg()
      .toFile(jpg);
    fs.truncateSync(jpg, Math.floor(fs.statSync(jpg).size * 0.6)); // the header stays readable
    // Seed 1 reads img007.jpg at step 2 (after two checkpoints).
    const cfg = tinyConfig({ data: images, batchSize: 8, steps: 12, checkpointEvery: 1, seed: 1 });
    const small = path.join(tmp, 'truncated-small');
    await expect(runPretraining(cfg, opts(small))).rejects.toThrow(
      /img007\.jpg: unreadable \(.*\); fix or remove it, or pass --skip-bad-images/,
    );
    expect(fs.existsSync(small)).toBe(false);
    // Past the whole-decode limit only headers are checked: the step that reads the file names it.
    const large = path.join(tmp, 'truncated-large');
    await expect(runPretraining(cfg, opts(large, { fullDecodeMax: 0 }))).rejects.toThrow(
      /img007\.jpg: cannot be decoded \(.*\) at step 2; the checkpoint of step 2 is kept: resume with --resume --skip-bad-images to leave it out/,
    );
    const logs: string[] = [];
    const r = await runPretraining(cfg, opts(large, { fullDecodeMax: 0, resume: true, skipBadImages: true, log: (l) => logs.push(l) }));
    disposeState(r.state);
    expect(r.state.step).toBe(12);
    expect(logs.some((l) => l.includes('img007.jpg cannot be decoded; left out (--skip-bad-images)'))).toBe(true);
    const skipped = metricsOf(large).flatMap((m) => (m as { skippedImages?: string[] }).skippedImages ?? []);
    expect(skipped.map((f) => path.basename(f))).toContain('img007.jpg');
  });

  it('are found before anything is written, named, and skipped only when asked (and counted)', async () => {
    const images = path.join(tmp, 'bad-images');
    await writeImages(images, 20);
    fs.writeFileSync(path.join(images, 'img005.png'), Buffer.from('not a png at all'));
    await sharp(Buffer.alloc(3, 9), { raw: { width: 1, height: 1, channels: 3 } })
      .png()
      .toFile(path.join(images, 'tiny.png'));
    const out = path.join(tmp, 'bad-run');
    const cfg = tinyConfig({ data: images, batchSize: 8, steps: 2 });
    await expect(runPretraining(cfg, opts(out))).rejects.toThrow(
      /img005\.png: unreadable .* \(and 1 more bad files\); fix or remove it, or pass --skip-bad-images/,
    );
    expect(fs.existsSync(out)).toBe(false); // nothing written, not even the folder
    const r = await runPretraining(cfg, opts(out, { skipBadImages: true }));
    disposeState(r.state);
    const saved = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
    expect(saved.datasetSize).toBe(19); // 21 files, 2 bad
    expect(saved.skippedImages.count).toBe(2);
    expect(saved.skippedImages.files.map((f: { file: string }) => path.basename(f.file)).sort()).toEqual(['img005.png', 'tiny.png']);
  });
});
