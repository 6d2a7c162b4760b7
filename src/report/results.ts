/**
 * Evaluation results on disk: one JSON per (task, model) with config, seed, backend and timings,
 * plus its CSV and Markdown, all written atomically under results/<task>/.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { stringify } from 'csv-stringify/sync';
import type { EvalResult } from '../eval/result.js';
import type { MetricKey } from '../eval/metrics.js';
import { writeFileAtomic } from '../runtime/atomic.js';
import { markdownTable } from './table.js';

export type { EvalResult };

export const fmt = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '-' : v.toFixed(1));

/** Where a (task, model) result goes: <dir>/<task>/<model>.json (+ .csv, .md). */
export const resultFile = (dir: string, task: string, model: string) =>
  path.join(dir, task, `${model.replace(/[^A-Za-z0-9._-]+/g, '_')}.json`);

export function writeResult(dir: string, r: EvalResult): string {
  const base = resultFile(dir, r.task, r.model).replace(/\.json$/, '');
  writeFileAtomic(`${base}.json`, JSON.stringify(r, null, 2));
  const entries = Object.entries(r.metrics) as [MetricKey, number][];
  const rows = entries.map(([k, v]) => [r.task, r.model, k, v.toFixed(2), r.notes[k] ?? '']);
  writeFileAtomic(`${base}.csv`, stringify([['task', 'model', 'metric', 'value', 'how'], ...rows]));
  writeFileAtomic(
    `${base}.md`,
    `# ${r.task}: ${r.model}\n\nSource: ${r.source}. Seed ${r.seed}. Command: \`${r.command}\`\n\n` +
      markdownTable(
        ['metric', 'value', 'how'],
        entries.map(([k, v]) => [k, fmt(v), r.notes[k] ?? '']),
      ),
  );
  return `${base}.json`;
}

/** One result file, checked enough that a torn or foreign file is named rather than misread. */
export function readResult(file: string): EvalResult {
  let r: Partial<EvalResult>;
  try {
    r = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: not a readable result (${(e as Error).message.split('\n')[0]}); re-run its eval, or remove the file`);
  }
  if (
    !r ||
    typeof r !== 'object' ||
    typeof r.task !== 'string' ||
    typeof r.model !== 'string' ||
    typeof r.metrics !== 'object' ||
    !r.metrics
  ) {
    throw new Error(`${file}: not an eval result (needs task, model and metrics); re-run its eval, or remove the file`);
  }
  return r as EvalResult;
}

export function readResults(dir: string): EvalResult[] {
  if (!fs.existsSync(dir)) return [];
  const out: EvalResult[] = [];
  for (const task of fs.readdirSync(dir).sort()) {
    const td = path.join(dir, task);
    if (!fs.statSync(td).isDirectory()) continue;
    for (const f of fs.readdirSync(td).sort()) if (f.endsWith('.json')) out.push(readResult(path.join(td, f)));
  }
  return out;
}
