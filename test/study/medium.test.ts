/**
 * Plan medium's structure in its test-sized form (`--plan medium-tiny`): learning-curve points
 * (each run stopped at 2 and 4 epochs and evaluated there, teacher and student), then its end.
 * Interrupted (SIGINT) with --hand-off, its run folders then lost (a fresh clone has only the
 * committed results), and run again: it continues the interrupted run from the checkpoint kept with
 * the results, and every result equals an uninterrupted study's.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'capi-medium-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function study(out: string, runs: string, extra: string[] = [], stopWhen?: (err: string) => boolean) {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/cli/study.ts', '--plan', 'medium-tiny', '--out', out, '--runs', runs, ...extra],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let err = '';
  let sent = false;
  child.stderr.on('data', (d) => {
    err += d;
    if (stopWhen && !sent && stopWhen(err)) {
      sent = true;
      child.kill('SIGINT');
    }
  });
  return new Promise<{ code: number | null; err: string }>((r) => child.on('close', (code) => r({ code, err })));
}

/** Every result's metrics by task and file. */
function metrics(dir: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const task of fs.readdirSync(dir).filter((t) => t.startsWith('fmnist')))
    for (const f of fs.readdirSync(path.join(dir, task)).filter((x) => x.endsWith('.json')))
      out[`${task}/${f}`] = JSON.parse(fs.readFileSync(path.join(dir, task, f), 'utf8')).metrics;
  return out;
}

describe('study --plan medium-tiny', () => {
  it('evaluates each run at its learning-curve points; handed over mid-run, a fresh checkout continues it exactly', async () => {
    const whole = path.join(tmp, 'whole');
    const w = await study(whole, path.join(tmp, 'whole-runs'));
    expect(w.code, w.err).toBe(0);
    const rows = Object.keys(metrics(whole));
    for (const row of [
      'canvas-capi-s0_2ep',
      'canvas-capi-s0_2ep-student',
      'canvas-capi-s0_4ep',
      'canvas-capi-s0',
      'canvas-capi-s0-student',
    ])
      expect(rows).toContain(`fmnist-canvas/${row}.json`);
    expect(rows).toContain('fmnist-canvas-dense/canvas-capi-s0_4ep.json');
    expect(rows).toContain('fmnist-canvas/floor_majority_class.json');
    // Each evaluation with trained weights runs once; a later pass that only adds rows needing none says so.
    const evaluated = [...w.err.matchAll(/study: evaluating (\S+) on (\S+) \(/g)].map((m) => `${m[1]} on ${m[2]}`);
    expect(evaluated.length).toBeGreaterThan(0);
    expect(new Set(evaluated).size).toBe(evaluated.length);
    expect(w.err).toMatch(
      /study: writing the rows floor: majority class of canvas-capi-s0@2ep's evaluation on fmnist-canvas \(its own row exists\)/,
    );
    // The predictor's fit to its targets, measured where the run stopped: each learning-curve point and its end.
    const record = path.join(whole, 'runs', 'canvas-capi-s0');
    const fits = JSON.parse(fs.readFileSync(path.join(record, 'prediction-fit.json'), 'utf8'));
    const total = JSON.parse(fs.readFileSync(path.join(record, 'config.json'), 'utf8')).totalSteps;
    expect(Object.keys(fits).map(Number)).toEqual([total / 3, (2 * total) / 3, total]); // 2, 4 and 6 epochs
    for (const f of Object.values(fits) as { kl: number; marginalKl: number }[]) {
      expect(Number.isFinite(f.kl)).toBe(true);
      expect(f.marginalKl).toBeGreaterThanOrEqual(0);
    }
    // The report gives every claim at each learning-curve point beside the end.
    const report = fs.readFileSync(path.join(whole, 'REPORT.md'), 'utf8');
    expect(report).toMatch(/### Claims along the learning curve.*\n\n\| claim \| 2 epochs \| 4 epochs \| end \(\d+ epochs\) \|/);
    expect(report).toMatch(/\| CAPI > pixels \(canvas linear\) \| [-+]\d/);
    // ... and the same evaluations as a picture.
    expect(report).toContain('![evaluations along the learning curve](curves/evaluations.png)');
    expect(
      fs
        .readFileSync(path.join(whole, 'curves', 'evaluations.png'))
        .subarray(1, 4)
        .toString(),
    ).toBe('PNG');

    // Interrupted while the second seed's run trains past its first point, with --hand-off.
    const out = path.join(tmp, 'handed');
    const runs = path.join(tmp, 'handed-runs');
    const first = await study(out, runs, ['--hand-off'], (err) =>
      /resuming canvas-capi-s1 to epoch 4[\s\S]*pretrain canvas-capi-s1 \[/.test(err),
    );
    expect(first.code).toBe(130);
    expect(first.err).toContain("study: canvas-capi-s1's checkpoint is kept in");
    expect(fs.existsSync(path.join(out, 'runs', 'canvas-capi-s1', 'checkpoint.safetensors'))).toBe(true);
    fs.rmSync(runs, { recursive: true }); // a fresh clone: the committed results alone
    const second = await study(out, runs);
    expect(second.code, second.err).toBe(0);
    expect(second.err).toContain('study: canvas-capi-s1 continues from the checkpoint kept with the results');
    expect(fs.existsSync(path.join(out, 'runs', 'canvas-capi-s1', 'checkpoint.safetensors'))).toBe(false); // finished: dropped
    expect(metrics(out)).toEqual(metrics(whole));

    // Stopped during a finished run's end evaluation (no checkpoint step: the process just ends):
    // with --hand-off its weights were kept with the results when it finished, so a fresh checkout
    // evaluates its own rows without training it again; once they exist, the weights go.
    const late = path.join(tmp, 'late');
    const lateRuns = path.join(tmp, 'late-runs');
    const third = await study(late, lateRuns, ['--hand-off'], (err) => /study: evaluating canvas-capi-s0 on fmnist-canvas \(/.test(err));
    expect(third.code).not.toBe(0);
    for (const kept of ['checkpoint.safetensors', 'teacher/model.json'])
      expect(fs.existsSync(path.join(late, 'runs', 'canvas-capi-s0', kept)), kept).toBe(true);
    fs.rmSync(lateRuns, { recursive: true });
    const fourth = await study(late, lateRuns, ['--hand-off']);
    expect(fourth.code, fourth.err).toBe(0);
    expect(fourth.err).not.toMatch(/pretraining canvas-capi-s0|resuming canvas-capi-s0/);
    expect(fs.existsSync(path.join(late, 'runs', 'canvas-capi-s0', 'checkpoint.safetensors'))).toBe(false);
    expect(metrics(late)).toEqual(metrics(whole));
  }, 900_000);
});
