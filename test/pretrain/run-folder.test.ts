/** A run folder's files through RunFolder: its state from checkpoint, config and metrics; a torn last metrics line dropped. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { RunFolder } from '../../src/pretrain/run-folder.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'capi-run-folder-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('RunFolder', () => {
  it('absent without a checkpoint; partial, then done, as metrics lines reach the config total', () => {
    const folder = new RunFolder(tmp);
    expect(folder.status()).toEqual({ status: 'absent', step: 0 });
    folder.writeConfig({ totalSteps: 3 });
    fs.writeFileSync(folder.checkpoint, '');
    folder.restartMetrics([]);
    folder.appendMetrics({ step: 0, capiLoss: 5 });
    folder.appendMetrics({ step: 1, capiLoss: 4 });
    expect(folder.status()).toEqual({ status: 'partial', step: 2 });
    folder.appendMetrics({ step: 2, capiLoss: 3 });
    expect(folder.status()).toEqual({ status: 'done', step: 3 });
    expect(folder.readConfig()?.totalSteps).toBe(3);
  });

  it('a torn last metrics line is dropped and said; kept lines are those before the step, as written', () => {
    const folder = new RunFolder(tmp);
    fs.appendFileSync(folder.metrics, '{"step": 3, "capi');
    expect(folder.readMetrics().map((m) => m.step)).toEqual([0, 1, 2]);
    const said: string[] = [];
    const kept = folder.keptMetrics(2, (l) => said.push(l));
    expect(kept.map((l) => JSON.parse(l).step)).toEqual([0, 1]);
    expect(said).toEqual([`${folder.metrics}: dropped a torn last line (17 bytes)`]);
  });
});
