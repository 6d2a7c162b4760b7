/** `npm run tables [-- --results DIR]`: every result under results/ as Table 2/3/5-style tables (CSV + Markdown). */
import * as path from 'node:path';
import { readResults } from '../report/results.js';
import { writeFileAtomic } from '../runtime/atomic.js';
import { buildTables, tableCsv, tableMarkdown } from '../report/tables.js';
import { parseArgs, runMain, take } from './args.js';

const HELP = `Usage: npm run tables -- [--results DIR]

Reads every results/<task>/<model>.json written by 'npm run eval' and writes comparison tables
(rows: models, columns: datasets x probes) as results/tables/<name>.csv and .md, plus
results/tables/README.md with all of them.`;

runMain(async () => {
  const { values } = parseArgs(process.argv.slice(2));
  if (values.help) {
    console.log(HELP);
    return;
  }
  const dir = take(values, 'results', 'results');
  if (Object.keys(values).length) throw new Error(`unknown option --${Object.keys(values)[0]} (see --help)`);
  const results = readResults(dir);
  if (!results.length) throw new Error(`no results under ${dir}: run 'npm run eval -- --task fmnist --checkpoint runs/NAME' first`);
  const tables = buildTables(results);
  const out = path.join(dir, 'tables');
  for (const t of tables) {
    writeFileAtomic(path.join(out, `${t.name}.csv`), tableCsv(t));
    writeFileAtomic(path.join(out, `${t.name}.md`), tableMarkdown(t));
  }
  writeFileAtomic(path.join(out, 'README.md'), `# capi-ts results\n\n${tables.map(tableMarkdown).join('\n')}`);
  console.error(`wrote ${tables.length} tables from ${results.length} results to ${out}`);
});
