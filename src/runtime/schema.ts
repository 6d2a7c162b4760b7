/**
 * Config schemas (zod) as flags: field names in kebab-case, what each field accepts in words, and
 * validation errors as one line naming the flag, the value and the allowed range. Used by every
 * config (model, pretrain, eval) and by the command-line layer (src/cli/command.ts).
 */
import { z } from 'zod';

export interface FieldInfo {
  name: string;
  flag: string;
  json: JsonProp;
}

export interface JsonProp {
  type?: string;
  enum?: unknown[];
  items?: JsonProp;
  default?: unknown;
  description?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  multipleOf?: number;
  anyOf?: JsonProp[];
}

export const kebabCase = (s: string): string =>
  s
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .replace(/([A-Z])([A-Z][a-z])/g, '$1-$2')
    .toLowerCase();

const fieldCache = new WeakMap<z.ZodObject, FieldInfo[]>();

export function fields(schema: z.ZodObject): FieldInfo[] {
  const hit = fieldCache.get(schema);
  if (hit) return hit;
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as { properties?: Record<string, JsonProp> };
  const out = Object.entries(json.properties ?? {}).map(([name, prop]) => {
    // Optional fields without a default show up as anyOf [type, null] in some versions.
    const p = prop.anyOf ? { ...prop.anyOf.find((x) => x.type !== 'null'), ...prop, anyOf: undefined } : prop;
    return { name, flag: kebabCase(name), json: p };
  });
  fieldCache.set(schema, out);
  return out;
}

/** What a field accepts, for help and error messages: "an integer >= 1", "one of a, b". */
export function allowedText(p: JsonProp): string {
  if (p.enum) return `one of ${p.enum.join(', ')}`;
  if (p.type === 'array') return `a comma-separated list${p.items?.enum ? ` of ${p.items.enum.join(', ')}` : ''}`;
  if (p.type === 'boolean') return 'true or false';
  if (p.type === 'integer' || p.type === 'number') {
    const what = p.type === 'integer' ? 'an integer' : 'a number';
    // zod gives every integer the safe-integer range: not worth saying.
    const finite = (v: number | undefined) => (v !== undefined && Math.abs(v) < Number.MAX_SAFE_INTEGER ? v : undefined);
    p = { ...p, minimum: finite(p.minimum), maximum: finite(p.maximum) };
    const lo = p.minimum !== undefined ? `>= ${p.minimum}` : p.exclusiveMinimum !== undefined ? `> ${p.exclusiveMinimum}` : '';
    const hi = p.maximum !== undefined ? `<= ${p.maximum}` : p.exclusiveMaximum !== undefined ? `< ${p.exclusiveMaximum}` : '';
    const bounds = [lo, hi, p.multipleOf !== undefined ? `a multiple of ${p.multipleOf}` : ''].filter(Boolean).join(' and ');
    return bounds ? `${what} ${bounds}` : what;
  }
  return 'a string';
}

export const shown = (v: unknown): string =>
  v === undefined ? '' : Array.isArray(v) ? (v.length ? v.join(',') : "''") : v === '' ? "''" : String(v);

/** Schema validation with a one-line message naming the flag, the value and what is allowed. */
export function validate<S extends z.ZodObject>(schema: S, values: Record<string, unknown>): z.output<S> {
  const r = schema.safeParse(values);
  if (r.success) return r.data;
  throw new Error(describeIssue(schema, r.error.issues[0], values));
}

export function describeIssue(schema: z.ZodObject, issue: z.core.$ZodIssue, values: Record<string, unknown>): string {
  const field = String(issue.path[0] ?? '');
  const f = fields(schema).find((x) => x.name === field);
  if (!f) return `invalid config: ${issue.message}`;
  const value = values[field];
  // A custom check or a string pattern says in its own words what it allows.
  const allowed = issue.code === 'custom' || issue.code === 'invalid_format' ? issue.message : `expected ${allowedText(f.json)}`;
  if (value === undefined) return `--${f.flag} is required: ${f.json.description ?? allowed} (see --help)`;
  return `invalid --${f.flag} '${shown(value)}': ${allowed} (see --help)`;
}

/**
 * A config as the command-line flags that give it back (a worker launched with the same config):
 * `--flag=value` (booleans as --flag / --no-flag, lists comma-joined), absent values left out.
 */
export function configFlags(values: Record<string, unknown>): string[] {
  return Object.entries(values).flatMap(([k, v]) => {
    // Absent values and empty lists (the only list default, '') are left to their defaults.
    if (v === undefined || (Array.isArray(v) && v.length === 0)) return [];
    if (typeof v === 'boolean') return [v ? `--${kebabCase(k)}` : `--no-${kebabCase(k)}`];
    // One word `--flag=value`: a value that starts with '-' (an sbatch option) stays a value.
    return [`--${kebabCase(k)}=${Array.isArray(v) ? v.join(',') : String(v)}`];
  });
}
