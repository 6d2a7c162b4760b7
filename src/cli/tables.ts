/** `npm run tables [-- --results DIR]`: every result under results/ as Table 2/3/5-style tables (CSV + Markdown). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { LEGEND, tableMarkdown, writeTable } from '../report/table.js';
import { buildTables } from '../report/tables.js';
import { readResults } from '../report/results.js';
import { writeFileAtomic } from '../runtime/atomic.js';
import { commandConfig, isMain, runMain, userPath } from './command.js';

export const TABLES_COMMAND = {
  usage: 'npm run tables -- [--results DIR] [--out DIR]',
  summary:
    "Reads every <results>/<task>/<model>.json written by 'npm run eval' and writes comparison tables\n" +
    '(rows: models, columns: datasets x probes) as <out>/<name>.csv and .md, plus README.md with all of them.\n' +
    "Its own folder: a study's tables/ (npm run study) are never written here.",
  schema: z.object({
    results: z.string().min(1).default('eval-results').describe("folder of the eval results (eval's --out)"),
    out: z.string().default('').describe("where the tables go; '': <results>/comparison"),
  }),
};

export async function main(argv = process.argv.slice(2)): Promise<void> {
  const parsed = commandConfig(TABLES_COMMAND, argv);
  if (!parsed) return;
  const dir = userPath(parsed.config.results);
  const results = readResults(dir);
  if (!results.length) throw new Error(`no results under ${dir}: run 'npm run eval -- --task fmnist --checkpoint runs/NAME' first`);
  const tables = buildTables(results);
  const out = parsed.config.out ? userPath(parsed.config.out) : path.join(dir, 'comparison');
  if (fs.existsSync(path.join(out, '..', 'study.json')) && path.basename(out) === 'tables')
    throw new Error(`${out} holds a study's tables (npm run study writes them): choose another --out`);
  for (const t of tables) writeTable(out, t);
  writeFileAtomic(path.join(out, 'README.md'), `# capi-ts results\n\n${tables.map(tableMarkdown).join('\n')}\n${LEGEND}\n`);
  console.error(`wrote ${tables.length} tables from ${results.length} results to ${out}`);
}

if (isMain(import.meta.url)) runMain(main);
