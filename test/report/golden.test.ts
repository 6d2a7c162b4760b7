/**
 * The committed plan-small results are the report's golden fixture: rebuilt from a copy of them
 * (--report-only), REPORT.md and every table are byte for byte the committed ones.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { backendInfo } from '../../src/runtime/backend.js';
import { PLANS } from '../../src/study/plans.js';
import { runStudy } from '../../src/study/run.js';

const RESULTS = path.resolve('results');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'capi-golden-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('the study report on the committed results', () => {
  it('rebuilt with --report-only, REPORT.md and the tables are the committed files', async () => {
    const copy = path.join(tmp, 'results');
    fs.cpSync(RESULTS, copy, { recursive: true });
    const generated = ['REPORT.md', ...fs.readdirSync(path.join(RESULTS, 'tables')).map((f) => path.join('tables', f))];
    for (const f of generated) fs.rmSync(path.join(copy, f));
    await runStudy({
      plan: PLANS.small(),
      runsDir: path.join(tmp, 'runs'),
      resultsDir: copy,
      backend: backendInfo(),
      cacheDir: '',
      log: () => {},
      progress: () => ({ update: () => {} }),
      reportOnly: true,
    });
    for (const f of generated) {
      expect(fs.readFileSync(path.join(copy, f), 'utf8'), f).toBe(fs.readFileSync(path.join(RESULTS, f), 'utf8'));
    }
  });
});
