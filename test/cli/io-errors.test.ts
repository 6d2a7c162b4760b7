/**
 * Commands check their outputs before any work, name the file in every IO error, clean up the
 * temp files of killed writes, and read relative paths from the folder the user is in.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCommand } from '../../src/cli/command.js';
import { EVAL_COMMAND } from '../../src/cli/eval.js';
import { PRETRAIN_COMMAND } from '../../src/cli/pretrain.js';
import { readResults } from '../../src/report/results.js';
import { ioError } from '../../src/runtime/atomic.js';
import { tinyFlags } from '../pretrain/helpers.js';

const SLICE = path.resolve('data/fmnist-slice');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'capi-io-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const TINY = tinyFlags({ depth: 1, numClusters: 16, batchSize: 8, numPredictions: 2 });
const run = path.join(tmp, 'run');

function cli(script: string, args: string[], opts: { cwd?: string } = {}) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.resolve(script), ...args], {
    encoding: 'utf8',
    timeout: 300_000,
    ...opts,
  });
  const errors = r.stderr.split('\n').filter((l) => l.startsWith('error:'));
  return {
    code: r.status,
    stderr: r.stderr,
    error: errors.length === 1 ? errors[0] : `(${errors.length} error lines) ${r.stderr.slice(-500)}`,
  };
}

beforeAll(() => {
  const r = cli('src/cli/pretrain.ts', [
    '--out',
    run,
    ...TINY,
    '--batch-size',
    '8',
    '--num-predictions',
    '2',
    '--steps',
    '2',
    '--data-dir',
    SLICE,
  ]);
  expect(r.code, r.stderr).toBe(0);
});

describe('outputs are checked before any work', () => {
  it('eval: an --out that is a file, and a tracked result without --overwrite', () => {
    const file = path.join(tmp, 'a-file');
    fs.writeFileSync(file, '');
    const t0 = performance.now();
    let r = cli('src/cli/eval.ts', ['--task', 'fmnist', '--checkpoint', run, '--out', file]);
    expect(r.code).toBe(1);
    expect(r.error).toContain('cannot write to');
    expect(r.error).toContain('ENOTDIR');
    // Results tracked by git (committed results, as in this repository's results/): refused.
    const repo = path.join(tmp, 'repo');
    fs.mkdirSync(path.join(repo, 'results', 'fmnist'), { recursive: true });
    for (const f of ['random-init.json', 'pixels.json']) fs.writeFileSync(path.join(repo, 'results', 'fmnist', f), '{}');
    const git = (...a: string[]) => spawnSync('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@t', ...a], { encoding: 'utf8' });
    git('init', '-q');
    git('add', '.');
    expect(git('commit', '-qm', 'results').status).toBe(0);
    r = cli('src/cli/eval.ts', ['--task', 'fmnist', '--checkpoint', run, '--out', path.join(repo, 'results'), '--name', 'some-run']);
    expect(r.error).toBe(
      `error: eval would replace ${path.join(repo, 'results/fmnist/random-init.json')} and 1 more, tracked by git: pass --overwrite, or choose another --out`,
    );
    expect(performance.now() - t0).toBeLessThan(30_000); // no features were extracted
    // The default output is a folder of its own, never the committed results/.
    expect(parseCommand(EVAL_COMMAND, ['--task', 'fmnist', '--checkpoint', run])).toMatchObject({ config: { out: 'eval-results' } });
  });

  it('pretrain: an --out below a file', () => {
    const file = path.join(tmp, 'b-file');
    fs.writeFileSync(file, '');
    const r = cli('src/cli/pretrain.ts', ['--out', path.join(file, 'run'), '--steps', '1', '--data-dir', SLICE]);
    expect(r.code).toBe(1);
    expect(r.error).toMatch(/^error: cannot write to .*b-file\/run: ENOTDIR .*; choose another --out$/);
  });
});

describe('IO errors name the file', () => {
  it('a truncated teacher weights file, a torn model.json', () => {
    const broken = path.join(tmp, 'broken');
    fs.cpSync(run, broken, { recursive: true });
    const weights = fs.readdirSync(path.join(broken, 'teacher')).find((f) => f.endsWith('.bin'))!;
    const wfile = path.join(broken, 'teacher', weights);
    fs.truncateSync(wfile, 3088);
    let r = cli('src/cli/export.ts', ['--checkpoint', broken, '--out', path.join(tmp, 'x.pth')]);
    expect(r.error).toContain(`${wfile} has 3088 bytes but`);
    expect(r.error).toContain('truncated or replaced');
    fs.writeFileSync(path.join(broken, 'teacher', 'model.json'), '{"format": "capi-ts/1", "kin');
    r = cli('src/cli/export.ts', ['--checkpoint', broken, '--out', path.join(tmp, 'x.pth')]);
    expect(r.error).toContain(`${path.join(broken, 'teacher', 'model.json')}: not readable JSON`);
  });

  it('a torn or empty result in tables', () => {
    const results = path.join(tmp, 'results', 'fmnist');
    fs.mkdirSync(results, { recursive: true });
    fs.writeFileSync(path.join(results, 'empty.json'), '');
    expect(() => readResults(path.dirname(results))).toThrow(`${path.join(results, 'empty.json')}: not a readable result`);
    fs.writeFileSync(path.join(results, 'empty.json'), '{"task": "fmnist"}');
    expect(() => readResults(path.dirname(results))).toThrow(`${path.join(results, 'empty.json')}: not an eval result`);
  });

  it('disk full and permission errors say what to do', () => {
    const e = (code: string) => Object.assign(new Error('x'), { code });
    expect(ioError(e('ENOSPC'), 'write /x/y').message).toBe(
      'cannot write /x/y: ENOSPC (the disk is full: free some space or write elsewhere)',
    );
    expect(ioError(e('EROFS'), 'write /x/y').message).toContain('read-only');
    expect(ioError(e('EACCES'), 'write /x/y').message).toContain('no permission');
  });
});

describe('leftovers and paths', () => {
  it('removes temp files of a killed write on the next start; export creates its folder', () => {
    const stale = [path.join(run, 'checkpoint.safetensors.tmp-999999'), path.join(run, 'teacher', 'weights-9.bin.tmp-999998')];
    for (const f of stale) fs.writeFileSync(f, 'partial');
    const r = cli('src/cli/pretrain.ts', ['--out', run, '--resume']);
    expect(r.code, r.stderr).toBe(0);
    for (const f of stale) expect(fs.existsSync(f), f).toBe(false);
    const out = path.join(tmp, 'new-folder', 'deeper', 'm.safetensors');
    const e = cli('src/cli/export.ts', ['--checkpoint', run, '--out', out]);
    expect(e.code, e.stderr).toBe(0);
    expect(fs.statSync(out).size).toBeGreaterThan(0);
  });

  it('under npm run, a relative --out is the shell folder’s, not the package root’s', () => {
    const shell = path.join(tmp, 'shell');
    fs.mkdirSync(shell);
    const r = spawnSync('npm', ['run', '-s', '--prefix', path.resolve('.'), 'export', '--', '--checkpoint', run, '--out', 'rel/m.pth'], {
      cwd: shell,
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(r.status, r.stderr).toBe(0);
    expect(fs.existsSync(path.join(shell, 'rel', 'm.pth'))).toBe(true);
    expect(fs.existsSync(path.resolve('rel'))).toBe(false);
  });
});

describe('values that must be refused name their own option', () => {
  const one = (spec: typeof EVAL_COMMAND | typeof PRETRAIN_COMMAND, argv: string[]) => {
    try {
      parseCommand(spec as typeof EVAL_COMMAND, argv);
    } catch (e) {
      return (e as Error).message;
    }
    return 'accepted';
  };
  const evalArgs = ['--task', 'fmnist', '--checkpoint', 'x'];
  it.each([
    [EVAL_COMMAND, [...evalArgs, '--limit-train', '-5'], "invalid --limit-train '-5': expected an integer >= 0"],
    [EVAL_COMMAND, [...evalArgs, '--epochs', '-1'], "invalid --epochs '-1': expected a number > 0"],
    [EVAL_COMMAND, [...evalArgs, '--epochs', '0'], "invalid --epochs '0': expected a number > 0"],
    [EVAL_COMMAND, [...evalArgs, '--batch-size', '0'], "invalid --batch-size '0': expected an integer >= 1"],
    [PRETRAIN_COMMAND, ['--mask-ratio', '1'], "invalid --mask-ratio '1': expected a number >= 0 and < 1"],
    [PRETRAIN_COMMAND, ['--lr', '-1'], "invalid --lr '-1': expected a number > 0"],
    [PRETRAIN_COMMAND, ['stray'], "Unexpected argument 'stray'"],
  ] as const)('%#', (spec, argv, message) => {
    expect(one(spec, [...argv])).toContain(message);
  });
});
