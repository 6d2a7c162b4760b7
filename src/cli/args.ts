/**
 * Minimal command-line parsing: `--name value`, `--flag` (true), `--no-flag` (false),
 * `--name=value`. Kebab-case names map to camelCase config fields (--batch-size -> batchSize).
 */
export interface ParsedArgs {
  values: Record<string, string>;
  positional: string[];
}

export const camelCase = (s: string) => s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

export function parseArgs(argv: string[]): ParsedArgs {
  const values: Record<string, string> = {};
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    if (eq > 0) {
      values[camelCase(a.slice(2, eq))] = a.slice(eq + 1);
    } else if (a.startsWith('--no-')) {
      values[camelCase(a.slice(5))] = 'false';
    } else {
      const next = argv[i + 1];
      const name = camelCase(a.slice(2));
      if (next === undefined || next.startsWith('--')) values[name] = 'true';
      else values[name] = argv[++i];
    }
  }
  return { values, positional };
}

/** Removes and returns a command-level option (not a config field). */
export function take(values: Record<string, string>, name: string, fallback: string): string {
  const v = values[name];
  delete values[name];
  return v ?? fallback;
}

/** Runs a command's main, printing a one-line error (no stack) on failure. */
export function runMain(main: () => Promise<void>): void {
  main().catch((e: unknown) => {
    let msg = e instanceof Error ? e.message : String(e);
    if (/memory access out of bounds|Aborted\(OOM\)|Cannot enlarge memory/.test(msg)) {
      msg = `the wasm backend ran out of memory (${msg.split('\n')[0]}): its heap is limited to a few GB; lower --batchSize`;
    }
    process.stderr.write(`error: ${msg}\n`);
    if (process.env.CAPI_DEBUG) console.error(e);
    process.exit(1);
  });
}
