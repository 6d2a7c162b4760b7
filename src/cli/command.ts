/**
 * One schema per command: a zod object gives the config's type, defaults and validation; this
 * module turns it into command-line flags and `--help`, so nothing is declared twice.
 *
 * Flags are the fields in kebab-case (`batchSize` -> `--batch-size`; `--batchSize` is accepted
 * too). Booleans: `--flag`, `--no-flag`, `--flag=true|false`. Lists: comma-separated. Numbers
 * and enums are checked by the schema and a failure is one line naming the flag, the value and
 * what is allowed. `-h`/`--help` and stray positional arguments never start a run.
 *
 * Parsing uses node:util parseArgs for the flag grammar (unknown flags, missing values); the
 * type of each flag and the help text come from the schema's JSON Schema (z.toJSONSchema).
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { z } from 'zod';
import type { FieldInfo } from '../runtime/schema.js';
import { allowedText, fields, kebabCase, shown, validate } from '../runtime/schema.js';

export interface CommandSpec<S extends z.ZodObject> {
  /** How the command is run, e.g. `npm run eval -- --task TASK --checkpoint RUN [options]`. */
  usage: string;
  /** What it does, a few lines. */
  summary: string;
  schema: S;
  /** Extra flag spellings: alias -> field (e.g. `batch` -> `batchSize`). */
  aliases?: Record<string, string>;
  /** Help text after the options (outputs, examples). */
  epilog?: string;
  /** Defaults shown in --help where the schema has none of its own (e.g. a preset's values). */
  shownDefaults?: Record<string, unknown>;
}

export function helpText<S extends z.ZodObject>(spec: CommandSpec<S>): string {
  const rows = fields(spec.schema).map((f) => {
    const value =
      f.json.type === 'boolean'
        ? ''
        : f.json.enum
          ? ` ${f.json.enum.join('|')}`
          : ` ${f.json.type === 'array' ? 'LIST' : f.json.type === 'string' ? 'S' : 'N'}`;
    const def = spec.shownDefaults && f.name in spec.shownDefaults ? spec.shownDefaults[f.name] : f.json.default;
    const parts = [f.json.description ?? ''];
    if (def !== undefined) parts.push(`default ${shown(def)}`);
    if (!f.json.enum && f.json.type !== 'string' && f.json.type !== 'boolean') parts.push(allowedText(f.json));
    return { left: `  --${f.flag}${value}`, right: parts.filter(Boolean).join('; ') };
  });
  const aliases = Object.entries(spec.aliases ?? {}).map(([a, field]) => ({
    left: `  --${kebabCase(a)}`,
    right: `same as --${kebabCase(field)}`,
  }));
  const all = [...rows, ...aliases, { left: '  -h, --help', right: 'this text' }];
  const width = Math.min(34, Math.max(...all.map((r) => r.left.length)) + 2);
  const lines = all.map((r) =>
    r.left.length + 1 > width ? `${r.left}\n${' '.repeat(width)}${r.right}` : `${r.left.padEnd(width)}${r.right}`,
  );
  return [`Usage: ${spec.usage}`, '', spec.summary, '', 'Options:', ...lines, ...(spec.epilog ? ['', spec.epilog] : [])].join('\n');
}

export type ParsedCommand<S extends z.ZodObject> = { help: string } | { values: Partial<z.input<S>>; config: z.output<S> };

/**
 * argv -> flag values, typed by the schema but not yet defaulted or validated (`values`, the
 * overrides the user gave), and the validated config with defaults (`config`).
 */
export function parseCommand<S extends z.ZodObject>(spec: CommandSpec<S>, argv: string[]): ParsedCommand<S> {
  if (argv.includes('-h') || argv.includes('--help')) return { help: helpText(spec) };
  const values = readFlags(spec, argv);
  return { values: values as Partial<z.input<S>>, config: validate(spec.schema, values) };
}

/** Flag values as typed overrides: unknown flags, missing values and stray arguments are errors. */
export function readFlags<S extends z.ZodObject>(spec: CommandSpec<S>, argv: string[]): Record<string, unknown> {
  const info = fields(spec.schema);
  const byFlag = new Map(info.map((f) => [f.flag, f]));
  for (const [alias, field] of Object.entries(spec.aliases ?? {})) {
    const target = info.find((f) => f.name === field);
    if (target) byFlag.set(kebabCase(alias), target);
  }
  const out: Record<string, unknown> = {};
  const rest: string[] = [];
  // Booleans are read here (parseArgs on Node 20 has no --no-x and no --x=false).
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const m = /^--(no-)?([^=]+)(?:=(.*))?$/.exec(a);
    if (!m) {
      rest.push(a);
      continue;
    }
    const name = kebabCase(m[2]);
    const f = byFlag.get(name);
    if (f?.json.type === 'boolean') {
      let v = m[1] ? 'false' : (m[3] ?? 'true');
      if (!m[1] && m[3] === undefined && (argv[i + 1] === 'true' || argv[i + 1] === 'false')) v = argv[++i];
      if (v !== 'true' && v !== 'false') throw new Error(`invalid --${f.flag} '${v}': expected true or false (see --help)`);
      out[f.name] = v === 'true';
      continue;
    }
    if (m[1]) throw new Error(`unknown option '${a}' (see --help)`);
    // `--flag=-value` (e.g. --slurm-extra=--qos=high): parseArgs calls it ambiguous; the '=' makes it a value.
    if (f && m[3]?.startsWith('-')) {
      out[f.name] = coerce(f, m[3]);
      continue;
    }
    // `--flag value` -> `--flag=value`, so that values such as '-1' are not taken for options.
    const next = argv[i + 1];
    if (m[3] === undefined && f && next !== undefined && !next.startsWith('--')) rest.push(`--${name}=${argv[++i]}`);
    else rest.push(m[3] !== undefined ? `--${name}=${m[3]}` : `--${name}`);
  }
  const options: Record<string, { type: 'string' }> = {};
  for (const flag of byFlag.keys()) if (byFlag.get(flag)!.json.type !== 'boolean') options[flag] = { type: 'string' };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: rest, options, strict: true, allowPositionals: false });
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0].replace(/\. To specify a positional argument.*$/, '');
    throw new Error(`${msg} (see --help)`);
  }
  for (const [flag, raw] of Object.entries(parsed.values)) {
    const f = byFlag.get(flag)!;
    const v = String(raw);
    if (v.trim() === '' && f.json.type !== 'string') throw new Error(`--${f.flag} needs a value: ${allowedText(f.json)} (see --help)`);
    out[f.name] = coerce(f, v);
  }
  return out;
}

function coerce(f: FieldInfo, v: string): unknown {
  if (f.json.type === 'array')
    return v
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  if (f.json.type === 'integer' || f.json.type === 'number') {
    const n = Number(v);
    if (!Number.isFinite(n)) throw new Error(`invalid --${f.flag} '${v}': expected ${allowedText(f.json)} (see --help)`);
    return n;
  }
  return v;
}

/** Runs a command's main, printing a one-line error (no stack) on failure. */
export function runMain(main: () => Promise<void>): void {
  main().catch((e: unknown) => {
    let msg = e instanceof Error ? e.message : String(e);
    if (/memory access out of bounds|Aborted\(OOM\)|Cannot enlarge memory/.test(msg)) {
      msg = `the wasm backend ran out of memory (${msg.split('\n')[0]}): its heap is limited to a few GB; lower --batch-size`;
    }
    // tfjs-backend-webgpu cannot read a GPU tensor synchronously in Node (it reaches for OffscreenCanvas).
    if (/OffscreenCanvas is not defined/.test(msg)) {
      msg =
        'this command reads tensors synchronously, which the webgpu backend cannot do in Node: so far pretraining runs on webgpu, evaluation not yet; use --backend wasm-native (or leave --backend at auto)';
    }
    process.stderr.write(`error: ${msg}\n`);
    if (process.env.CAPI_DEBUG) console.error(e);
    process.exit(1);
  });
}

/** Parses argv for `spec`, prints --help and exits when asked; else the validated config. */
export function commandConfig<S extends z.ZodObject>(
  spec: CommandSpec<S>,
  argv = process.argv.slice(2),
): { values: Partial<z.input<S>>; config: z.output<S> } | undefined {
  const r = parseCommand(spec, argv);
  if ('help' in r) {
    console.log(r.help);
    return undefined;
  }
  return r;
}

/** Whether the module at `url` is the script node was started with (so importing a command runs nothing). */
export function isMain(url: string): boolean {
  return process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(url);
}

/**
 * A path the user typed, absolute: relative to the folder they ran the command in. Under
 * `npm run`, the process runs in the package root and npm passes that folder as INIT_CWD.
 */
export function userPath(p: string): string {
  return p ? path.resolve(process.env.INIT_CWD ?? process.cwd(), p) : p;
}
