/**
 * Inputs a hostile or careless user gives, each answered with the behaviour they would expect:
 * a bogus $CAPI_BACKEND, an export to a .txt, an --out holding the user's own files, an absurd
 * --steps, too few images for the probes, a divergence resumed with a lower lr, a finished run
 * whose teacher export is damaged, paths that need quoting, and what to do after a run.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPretraining } from '../../src/pretrain/loop.js';
import { disposeState } from '../../src/pretrain/step.js';
import { backendInfo } from '../../src/runtime/backend.js';
import { shellCommand, shellQuote } from '../../src/runtime/shell.js';
import { tinyConfig, tinyFlags } from '../pretrain/helpers.js';

const SLICE = path.resolve('data/fmnist-slice');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "capi-hostile 'q' "));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const TINY = tinyFlags({ depth: 1, numClusters: 16, batchSize: 8, numPredictions: 2 });
const run = path.join(tmp, 'a run');

function cli(script: string, args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.resolve(script), ...args], {
    encoding: 'utf8',
    timeout: 300_000,
    env: { ...process.env, ...env },
  });
  const errors = r.stderr.split('\n').filter((l) => l.startsWith('error:'));
  return {
    code: r.status,
    stderr: r.stderr,
    error: errors.length === 1 ? errors[0] : `(${errors.length} error lines) ${r.stderr.slice(-400)}`,
  };
}

beforeAll(() => {
  const r = cli('src/cli/pretrain.ts', ['--out', run, ...TINY, '--steps', '2', '--data-dir', SLICE]);
  expect(r.code, r.stderr).toBe(0);
  // The end of a run says what to do next, as a command that survives the path's space and quotes.
  const next = r.stderr.split('\n').find((l) => l.startsWith('next, evaluate it: '));
  expect(next).toBe(`next, evaluate it: ${shellCommand(['npm', 'run', 'eval', '--', '--task', 'fmnist', '--checkpoint', run])}`);
});

describe('hostile inputs', () => {
  it('printed commands quote paths with spaces and quotes so that a shell reads them back unchanged', () => {
    for (const arg of [run, "it's", 'plain/path-1.0', '$HOME `x`', '']) {
      const echoed = spawnSync('sh', ['-c', `printf '%s' ${shellQuote(arg)}`], { encoding: 'utf8' }).stdout;
      expect(echoed).toBe(arg);
    }
  });

  it('a bogus $CAPI_BACKEND is refused, not ignored', () => {
    const r = cli('src/cli/pretrain.ts', ['--out', path.join(tmp, 'x'), '--steps', '1'], { CAPI_BACKEND: 'bogus' });
    expect(r.code).toBe(1);
    expect(r.error).toMatch(/^error: CAPI_BACKEND=bogus is not a backend: set it to one of auto, .*, or unset it$/);
  });

  it('a failed evaluation leaves no output folder behind', () => {
    const out = path.join(tmp, 'never', 'results');
    const r = cli('src/cli/eval.ts', [
      '--task',
      'fmnist-scenes',
      '--checkpoint',
      path.join(tmp, 'no-such-run'),
      '--out',
      out,
      '--data-dir',
      SLICE,
    ]);
    expect(r.error).toMatch(/^error: checkpoint not found: /);
    expect(fs.existsSync(path.join(tmp, 'never'))).toBe(false);
  });

  it('export to a .txt names the allowed extensions', () => {
    const r = cli('src/cli/export.ts', ['--checkpoint', run, '--out', path.join(tmp, 'x.txt')]);
    expect(r.error).toBe(`error: invalid --out '${path.join(tmp, 'x.txt')}': a file name ending in .pth, .pt or .safetensors (see --help)`);
  });

  it("an --out holding the user's own config.json is refused and the file left as it was; --steps 1e12 is refused", () => {
    const mine = path.join(tmp, 'mine');
    fs.mkdirSync(mine);
    fs.writeFileSync(path.join(mine, 'config.json'), '{"my": "settings"}');
    let r = cli('src/cli/pretrain.ts', ['--out', mine, ...TINY, '--steps', '1', '--data-dir', SLICE]);
    expect(r.error).toBe(`error: --out ${mine} holds files that are not a capi-ts run's (config.json): choose an empty or new folder`);
    expect(fs.readFileSync(path.join(mine, 'config.json'), 'utf8')).toBe('{"my": "settings"}');
    r = cli('src/cli/pretrain.ts', ['--out', path.join(tmp, 'huge'), '--steps', '1e12']);
    expect(r.error).toMatch(/^error: invalid --steps '1000000000000': expected an integer >= 0 and <= 100000000/);
    expect(fs.existsSync(path.join(tmp, 'huge'))).toBe(false);
  });

  it('--limit-train 1 is refused before any feature is extracted (no held-out image to select on)', () => {
    const r = cli('src/cli/eval.ts', [
      '--task',
      'fmnist',
      '--checkpoint',
      run,
      '--data-dir',
      SLICE,
      '--limit-train',
      '1',
      '--probes',
      'linear',
      '--out',
      path.join(tmp, 'ev'),
    ]);
    expect(r.code).toBe(1);
    expect(r.error).toBe(
      "error: 1 training images leave no held-out image for the probes' selection (10% held out): evaluate on more (--limit-train)",
    );
    expect(r.stderr).not.toContain('features');
  });

  it('a finished run whose teacher export is damaged gets it back from its checkpoint on --resume', () => {
    const dir = path.join(tmp, 'damaged');
    fs.cpSync(run, dir, { recursive: true });
    const weights = fs.readdirSync(path.join(dir, 'teacher')).find((f) => f.endsWith('.bin'))!;
    fs.truncateSync(path.join(dir, 'teacher', weights), 100);
    let r = cli('src/cli/export.ts', ['--checkpoint', dir, '--out', path.join(tmp, 'x.pth')]);
    expect(r.error).toContain('truncated or replaced; the export is damaged: resume its run');
    r = cli('src/cli/pretrain.ts', ['--out', dir, '--resume']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('its teacher export was missing or damaged and is written again from the checkpoint');
    r = cli('src/cli/export.ts', ['--checkpoint', dir, '--out', path.join(tmp, 'x.pth')]);
    expect(r.code, r.stderr).toBe(0);
  });

  it('after a divergence the advice works: the kept checkpoint resumes with a lower lr (--force-resume), recorded', async () => {
    const dir = path.join(tmp, 'nan');
    const cfg = tinyConfig({ dataDir: SLICE, batchSize: 32, steps: 8, lr: 1e6, teacherMomentum: 0.99, checkpointEvery: 1 });
    const opts = { out: dir, resume: false, stopAfter: 0, backend: backendInfo(), log: () => {} };
    const err = await runPretraining(cfg, opts).then(
      () => undefined,
      (e: Error) => e.message,
    );
    expect(err).toMatch(
      /training diverged: .* the checkpoint of step \d+ is kept; continue from it with a lower learning rate: npm run pretrain -- --out .* --resume --force-resume --lr 250000/,
    );
    // The command the advice prints is accepted (before, --resume refused any override). Whether this
    // tiny run recovers from weights already blown up by lr 1e6 is not the point: the resume is taken and recorded.
    await runPretraining(cfg, { ...opts, resume: true, forceResume: true, resumeOverrides: { lr: 1e-4 } }).then(
      (r) => disposeState(r.state),
      (e: Error) => expect(e.message).toMatch(/^training diverged/),
    );
    const saved = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    expect(saved.train.lr).toBe(1e-4);
    expect(saved.resumes.at(-1)).toMatchObject({ forced: true, overrides: { lr: 1e-4 } });
  });
});
