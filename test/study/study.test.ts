/**
 * `npm run study -- --plan tiny` end to end: killed midway (SIGKILL, the worst case) and rerun,
 * it skips what was finished, continues the rest, and writes a REPORT.md with every section and
 * table, its tables/ and its curves.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PLANS } from '../../src/study/plans.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'capi-study-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const out = path.join(tmp, 'results');
const runs = path.join(tmp, 'runs');
const args = ['--import', 'tsx', 'src/cli/study.ts', '--plan', 'tiny', '--out', out, '--runs', runs, '--cache-dir', ''];

/** Starts the study and SIGKILLs it as soon as stderr shows `line`; resolves with what it printed. */
function runUntil(line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => {
      err += d;
      if (err.includes(line)) child.kill('SIGKILL');
    });
    child.on('exit', (code, signal) =>
      signal === 'SIGKILL' ? resolve(err) : reject(new Error(`study exited ${code} before '${line}':\n${err}`)),
    );
  });
}

describe('plan order', () => {
  it("the default arm's seeds run before the other arms (whose SE borrows their spread), the ceiling after the first run", () => {
    for (const plan of [PLANS.small(), PLANS.medium()]) {
      const at = (pick: (r: (typeof plan.runs)[number]) => boolean) => plan.runs.flatMap((r, i) => (pick(r) ? [i] : []));
      const seeds = at((r) => r.arm === 'capi');
      const arms = at((r) => r.arm !== 'capi' && r.arm !== 'supervised');
      expect(Math.max(...seeds), plan.name).toBeLessThan(Math.min(...arms));
      expect(plan.runs[0].arm).toBe('capi');
      const laterSeeds = at((r) => r.arm === 'capi' && r.seed !== plan.runs[0].seed);
      expect(Math.max(...at((r) => r.arm === 'supervised')), plan.name).toBeLessThan(Math.min(...laterSeeds));
    }
  });
});

describe('study --plan paper --dry-run', () => {
  it('writes the paper-scale configuration (ViT-L/14, 500k steps of 16,384) without running anything', () => {
    const dir = path.join(tmp, 'paper');
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/study.ts', '--plan', 'paper', '--dry-run', '--out', dir], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status, r.stderr).toBe(0);
    const plan = JSON.parse(fs.readFileSync(path.join(dir, 'plan.json'), 'utf8'));
    expect(plan.preset).toBe('vit-l14');
    expect(plan.runs[0].fields).toMatchObject({ steps: 500000, batchSize: 16384 });
    expect(new Set(plan.evals.map((e: { task: string }) => e.task))).toEqual(new Set(['imagenet', 'ade20k']));
    expect(fs.readdirSync(dir)).toEqual(['plan.json']);
  });
});

describe('study --plan tiny', () => {
  it('is killed midway, resumed, and reports every section', async () => {
    const plan = PLANS.tiny();
    // A stale result from another run in the results folder is not taken for the study's own.
    const stale = path.join(out, 'fmnist', 'random-init.json');
    fs.mkdirSync(path.dirname(stale), { recursive: true });
    fs.writeFileSync(
      stale,
      JSON.stringify({
        task: 'fmnist',
        model: 'random-init',
        kind: 'baseline',
        metrics: { 'knn(avg).top1': 99 },
        config: { checkpoint: 'runs/elsewhere' },
      }),
    );
    const killedAt = plan.runs[4].id;
    const first = await runUntil(`study: pretraining ${killedAt}`);
    const doneBefore = plan.runs.slice(0, 4).map((r) => r.id);
    for (const id of doneBefore) expect(first).toMatch(new RegExp(`(pretraining|training the supervised ceiling) ${id}`));

    const second = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 600_000 });
    expect(second.status, second.stderr).toBe(0);
    for (const id of doneBefore) {
      expect(second.stderr).not.toMatch(new RegExp(`(pretraining|supervised ceiling) ${id}\n`));
      expect(second.stderr).not.toContain(`evaluating ${id} `);
    }
    expect(second.stderr).toMatch(new RegExp(`(pretraining|resuming) ${killedAt}`));
    expect(second.stderr).toContain('study tiny complete');

    const report = fs.readFileSync(path.join(out, 'REPORT.md'), 'utf8');
    for (const section of [
      '## Classification (Table 2)',
      '## Dense task (Table 3)',
      '## Ablations (Table 1)',
      '## Predictor pooling (Table 5)',
      '## Pretraining runs and diagnostics',
      '## Claims',
      '## Discussion of the claims that do not hold',
      '## How it was made',
    ])
      expect(report).toContain(section);
    expect(report).toContain(`the plan is complete: ${plan.runs.length} pretraining runs`);
    expect(report).toContain('floor: background oracle');
    // The fmnist family's runs carry the monitor's k-NN (every 2 steps and the last), the scenes family's none.
    expect(report).toMatch(/\| fmnist-capi-s0 \| 3 \/ 3 \|.*\| 2: \d+\.\d, 3: \d+\.\d \|/);
    expect(report).toMatch(/\| scenes-capi-s0 \| 3 \/ 3 \|.*\| - \|/);
    expect(report).toContain('ceiling: oracle patch labels');
    expect(report).toMatch(/\| ceiling: supervised \(same encoder and steps, labels\) \| \d/);
    expect(report).not.toMatch(/\| not run \|.*\| not run \|.*\| not run \|.*\| not run \|.*\| not run \|/); // every Table 1 arm has numbers
    for (const t of ['table1-ablations', 'table2-classification', 'table3-segmentation', 'table5-pooling', 'diagnostics', 'claims'])
      for (const ext of ['md', 'csv']) expect(fs.existsSync(path.join(out, 'tables', `${t}.${ext}`)), `${t}.${ext}`).toBe(true);
    for (const f of ['fmnist', 'scenes']) {
      const png = fs.readFileSync(path.join(out, 'curves', `${f}.png`));
      expect(png.subarray(1, 4).toString()).toBe('PNG');
    }
    expect(JSON.parse(fs.readFileSync(stale, 'utf8')).config.checkpoint).toBe(path.join(runs, plan.runs[0].id));
    // Each result names the command that made it: the study, not an eval command line.
    expect(JSON.parse(fs.readFileSync(stale, 'utf8')).command).toBe('npm run study -- --plan tiny');
    // A third run finds everything done.
    const third = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 120_000 });
    expect(third.status).toBe(0);
    expect(third.stderr).not.toMatch(/pretraining|evaluating/);
    // On another machine only the results folder is there (checked out from git, say): nothing
    // is redone, and the report still has every run's diagnostics, from the records kept there.
    for (const r of plan.runs) expect(fs.existsSync(path.join(out, 'runs', r.id, 'metrics.jsonl')), r.id).toBe(true);
    // ... and git keeps all of it: no file the study writes is ignored at the default results/.
    const written = (fs.readdirSync(out, { recursive: true }) as string[]).filter((f) => fs.statSync(path.join(out, f)).isFile());
    const ignored = spawnSync('git', ['check-ignore', '--no-index', '--stdin'], {
      input: written.map((f) => path.join('results', f)).join('\n'),
      encoding: 'utf8',
    });
    expect(ignored.stdout.trim(), 'files under results/ that .gitignore drops').toBe('');
    fs.rmSync(runs, { recursive: true });
    fs.rmSync(path.join(out, 'REPORT.md'));
    // Baselines left unfinished there are evaluated from the run's record: no weights, no retraining, the same numbers.
    const baseline = (n: string) => path.join(out, 'fmnist', `${n}.json`);
    const metricsOf = (n: string) => JSON.parse(fs.readFileSync(baseline(n), 'utf8')).metrics;
    const lost = { init: metricsOf('init'), pixels: metricsOf('pixels') };
    for (const n of Object.keys(lost)) fs.rmSync(baseline(n));
    const elsewhere = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 300_000 });
    expect(elsewhere.status, elsewhere.stderr).toBe(0);
    expect(elsewhere.stderr).not.toMatch(/pretraining|training the supervised/);
    expect(elsewhere.stderr).not.toMatch(/study: evaluating/);
    expect(elsewhere.stderr.match(/study: writing the rows .*/g)).toEqual([
      `study: writing the rows init, pixels of ${plan.runs[0].id}'s evaluation on fmnist (its own row exists)`,
    ]);
    for (const [n, m] of Object.entries(lost)) expect(metricsOf(n), n).toEqual(m);
    expect(fs.existsSync(runs) ? fs.readdirSync(runs) : []).toEqual([]);
    const again = fs.readFileSync(path.join(out, 'REPORT.md'), 'utf8');
    // --report-only rebuilds the report and touches nothing else.
    fs.rmSync(path.join(out, 'REPORT.md'));
    const only = spawnSync(process.execPath, [...args, '--report-only'], { encoding: 'utf8', timeout: 120_000 });
    expect(only.status, only.stderr).toBe(0);
    expect(only.stderr).toContain('report rebuilt');
    expect(only.stderr).not.toMatch(/pretraining|evaluating/);
    expect(fs.readFileSync(path.join(out, 'REPORT.md'), 'utf8').replace(/^.*(started|commit).*$/gm, '')).toBe(
      again.replace(/^.*(started|commit).*$/gm, ''),
    );
    expect(again).toContain(`the plan is complete: ${plan.runs.length} pretraining runs`);
    expect(again.replace(/^.*(started|commit).*$/gm, '')).toBe(report.replace(/^.*(started|commit).*$/gm, ''));
  }, 900_000); // end to end: ~80 s alone on the native path, several minutes on plain wasm beside other work
});
