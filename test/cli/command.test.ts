/**
 * One schema per command: --help lists every field with its default, and an unknown flag or a
 * bad value is one line naming the flag, the value and what is allowed, for every command.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { BENCH_DENORMALS } from '../../bench/denormals.js';
import { BENCH_EVAL } from '../../bench/eval.js';
import { BENCH_FEATURE_SHARES } from '../../bench/feature-shares.js';
import { BENCH_KNN } from '../../bench/knn.js';
import { BENCH_PREDICTION_FIT } from '../../bench/prediction-fit.js';
import { BENCH_PRETRAIN } from '../../bench/pretrain.js';
import { BENCH_VITL } from '../../bench/vitl.js';
import type { CommandSpec } from '../../src/cli/command.js';
import { helpText, parseCommand, readFlags } from '../../src/cli/command.js';
import { EVAL_COMMAND } from '../../src/cli/eval.js';
import { EXPORT_COMMAND } from '../../src/cli/export.js';
import { PRETRAIN_COMMAND } from '../../src/cli/pretrain.js';
import { STUDY_COMMAND } from '../../src/cli/study.js';
import { TABLES_COMMAND } from '../../src/cli/tables.js';
import { fields } from '../../src/runtime/schema.js';

/** Values for each command's required flags, so that one bad flag at a time is tested. */
const REQUIRED: Record<string, string[]> = {
  eval: ['--task', 'fmnist', '--checkpoint', 'x'],
  export: ['--checkpoint', 'x', '--out', 'm.pth'],
  'bench:knn': ['--features', 'f.safetensors'],
  'bench:feature-shares': ['--features', 'f.safetensors'],
  'bench:prediction-fit': ['--run', 'runs/x'],
  study: ['--plan', 'tiny'],
};

const COMMANDS: Record<string, CommandSpec<z.ZodObject>> = {
  pretrain: PRETRAIN_COMMAND,
  eval: EVAL_COMMAND,
  tables: TABLES_COMMAND,
  study: STUDY_COMMAND,
  export: EXPORT_COMMAND,
  'bench:pretrain': BENCH_PRETRAIN,
  'bench:eval': BENCH_EVAL,
  'bench:knn': BENCH_KNN,
  'bench:vitl': BENCH_VITL,
  'bench:denormals': BENCH_DENORMALS,
  'bench:feature-shares': BENCH_FEATURE_SHARES,
  'bench:prediction-fit': BENCH_PREDICTION_FIT,
};

const oneLine = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    const msg = (e as Error).message;
    expect(msg.includes('\n'), msg).toBe(false);
    return msg;
  }
  throw new Error('expected an error');
};

describe.each(Object.entries(COMMANDS))('%s', (command, spec) => {
  const info = fields(spec.schema);
  const required = REQUIRED[command] ?? [];
  const withFlag = (flag: string, value: string) => [...required.filter((_, i, a) => a[i - (i % 2)] !== `--${flag}`), `--${flag}`, value];

  it('accepts its required flags alone', () => {
    expect('config' in parseCommand(spec, required)).toBe(true);
  });

  it('--help and -h list every field with its default, and start nothing', () => {
    for (const arg of ['--help', '-h']) {
      const r = parseCommand(spec, ['--some-run-flag', arg]);
      expect('help' in r).toBe(true);
    }
    const help = helpText(spec);
    for (const f of info) {
      const line = help
        .split('\n')
        .findIndex((l) => l.startsWith(`  --${f.flag} `) || l === `  --${f.flag}` || l.startsWith(`  --${f.flag}\t`));
      expect(line, `--${f.flag} in help`).toBeGreaterThanOrEqual(0);
      const def = spec.shownDefaults?.[f.name] ?? f.json.default;
      if (def !== undefined) {
        // The field's row (its description may wrap to the next line) names the default.
        const row = help
          .split('\n')
          .slice(line, line + 2)
          .join(' ');
        expect(row, `default of --${f.flag}`).toMatch(/default /);
      }
    }
  });

  it('rejects an unknown flag and a stray argument with one line', () => {
    expect(oneLine(() => readFlags(spec, ['--no-such-flag', '1']))).toContain("'--no-such-flag'");
    expect(oneLine(() => readFlags(spec, ['stray']))).toContain("'stray'");
  });

  it('rejects a bad value of each numeric or enum field with one line naming flag, value and range', () => {
    for (const f of info) {
      const t = f.json.type;
      if (f.json.enum) {
        const msg = oneLine(() => parseCommand(spec, withFlag(f.flag, 'not-a-choice')));
        expect(msg).toContain(`--${f.flag}`);
        expect(msg).toContain('not-a-choice');
        expect(msg).toContain(String(f.json.enum[0]));
      } else if (t === 'number' || t === 'integer') {
        const msg = oneLine(() => parseCommand(spec, withFlag(f.flag, 'x1')));
        expect(msg).toBe(`invalid --${f.flag} 'x1': expected ${msg.split('expected ')[1]}`);
        expect(msg).toMatch(/a number|an integer/);
        const low = f.json.minimum ?? f.json.exclusiveMinimum;
        if (low !== undefined) {
          const bad = String(low - 1);
          const m2 = oneLine(() => parseCommand(spec, withFlag(f.flag, bad)));
          expect(m2).toContain(`--${f.flag} '${bad}'`);
          expect(m2).toMatch(/>=? /);
        }
      } else if (t === 'boolean') {
        expect(oneLine(() => parseCommand(spec, [...required, `--${f.flag}=maybe`]))).toContain(`--${f.flag} 'maybe'`);
      }
    }
  });
});

describe('flag grammar', () => {
  const spec = {
    usage: 'test',
    summary: 'test',
    schema: z.object({
      batchSize: z.number().int().min(1).default(8).describe('b'),
      standardize: z.boolean().default(true).describe('s'),
      probes: z
        .array(z.enum(['knn', 'logreg']))
        .default([])
        .describe('p'),
      name: z.string().default('').describe('n'),
    }),
  };

  it('kebab and camel spellings, --no-x, --x=v, booleans with a value, lists', () => {
    expect(readFlags(spec, ['--batch-size', '4'])).toEqual({ batchSize: 4 });
    expect(readFlags(spec, ['--batchSize=5'])).toEqual({ batchSize: 5 });
    expect(readFlags(spec, ['--no-standardize'])).toEqual({ standardize: false });
    expect(readFlags(spec, ['--standardize', 'false'])).toEqual({ standardize: false });
    expect(readFlags(spec, ['--standardize'])).toEqual({ standardize: true });
    expect(readFlags(spec, ['--probes', 'knn,logreg'])).toEqual({ probes: ['knn', 'logreg'] });
    expect(readFlags(spec, ['--name', ''])).toEqual({ name: '' });
  });

  it('validates with defaults filled', () => {
    const r = parseCommand(spec, ['--probes', 'knn']);
    expect('config' in r && r.config).toEqual({ batchSize: 8, standardize: true, probes: ['knn'], name: '' });
    expect(oneLine(() => parseCommand(spec, ['--probes', 'knn,svm']))).toContain("invalid --probes 'knn,svm'");
    expect(oneLine(() => parseCommand(spec, ['--standardize=maybe']))).toBe(
      "invalid --standardize 'maybe': expected true or false (see --help)",
    );
    expect(oneLine(() => parseCommand(spec, ['--batch-size']))).toContain('--batch-size');
    expect(oneLine(() => parseCommand(spec, ['--batch-size', '0']))).toBe(
      "invalid --batch-size '0': expected an integer >= 1 (see --help)",
    );
  });
});

describe('eval config', () => {
  it('refuses a probe the task does not allow, and needs --task and --checkpoint', () => {
    expect(oneLine(() => parseCommand(EVAL_COMMAND, ['--task', 'fmnist', '--checkpoint', 'x', '--probes', 'logreg']))).toContain(
      "probe 'logreg' does not apply to fmnist",
    );
    expect(oneLine(() => parseCommand(EVAL_COMMAND, ['--checkpoint', 'x']))).toContain('--task is required');
    expect(oneLine(() => parseCommand(EVAL_COMMAND, ['--task', 'fmnist']))).toContain('--checkpoint is required');
    expect(oneLine(() => parseCommand(EVAL_COMMAND, ['--task', 'fmnist', '--checkpoint', 'x', '--epochs', '-1']))).toContain(
      "invalid --epochs '-1': expected a number > 0",
    );
  });
});
