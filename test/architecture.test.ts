/**
 * The layering of src/ that the developers' guide sets (runtime -> data -> model -> pretrain |
 * features -> probes, segmentation -> eval -> report -> study -> cli), read from the imports
 * themselves with the TypeScript parser: a folder imports only from folders below it, and no
 * module imports a value from a module that imports a value back (type-only imports vanish at
 * run time, so they may go both ways inside a folder).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/** Each folder of src/ and its layer; folders of one layer are siblings and do not import each other. */
const LAYER: Record<string, number> = {
  runtime: 0,
  data: 1,
  model: 2,
  pretrain: 3,
  features: 3,
  probes: 4,
  segmentation: 4,
  eval: 5,
  report: 6,
  study: 7,
  cli: 8,
};

interface Edge {
  from: string;
  to: string;
  typeOnly: boolean;
}

const SRC = path.resolve(import.meta.dirname, '../src');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

function isTypeOnly(node: ts.ImportDeclaration | ts.ExportDeclaration): boolean {
  if (ts.isExportDeclaration(node)) return node.isTypeOnly;
  const clause = node.importClause;
  if (!clause) return false; // a side-effect import
  if (clause.isTypeOnly) return true;
  const bindings = clause.namedBindings;
  return !clause.name && !!bindings && ts.isNamedImports(bindings) && bindings.elements.every((e) => e.isTypeOnly);
}

/** The relative imports of one file (static, re-exports and dynamic), as files of src/. */
function importsOf(file: string): Edge[] {
  const sf = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
  const edges: Edge[] = [];
  const add = (spec: string, typeOnly: boolean) => {
    if (!spec.startsWith('.')) return;
    const to = path.resolve(path.dirname(file), spec).replace(/\.js$/, '.ts');
    edges.push({ from: path.relative(SRC, file), to: path.relative(SRC, to), typeOnly });
  };
  const visit = (node: ts.Node) => {
    if (
      (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) &&
      node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      add(node.moduleSpecifier.text, isTypeOnly(node));
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const [arg] = node.arguments;
      if (arg && ts.isStringLiteral(arg)) add(arg.text, false);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return edges;
}

/** The value-import cycles of a graph, each as the files around it (one per back edge of a depth-first search). */
function valueCycles(edges: Edge[]): string[][] {
  const next = new Map<string, string[]>();
  for (const e of edges) if (!e.typeOnly) next.set(e.from, [...(next.get(e.from) ?? []), e.to]);
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const visit = (u: string) => {
    state.set(u, 'open');
    stack.push(u);
    for (const v of next.get(u) ?? []) {
      if (state.get(v) === 'open') cycles.push([...stack.slice(stack.indexOf(v)), v]);
      else if (!state.has(v)) visit(v);
    }
    stack.pop();
    state.set(u, 'done');
  };
  for (const u of [...next.keys()].sort()) if (!state.has(u)) visit(u);
  return cycles;
}

const folderOf = (file: string) => file.split(path.sep)[0] ?? '';

/** Imports from a folder into one of its own layer or above, as 'from -> to'. */
function upwardImports(edges: Edge[]): string[] {
  return edges
    .filter((e) => folderOf(e.from) !== folderOf(e.to))
    .filter((e) => (LAYER[folderOf(e.to)] ?? Number.POSITIVE_INFINITY) >= (LAYER[folderOf(e.from)] ?? 0))
    .map((e) => `${e.from} -> ${e.to}`);
}

describe('architecture of src/', () => {
  const edges = sourceFiles(SRC).flatMap(importsOf);

  it('reads the imports: every folder is a known layer and every import resolves to a file', () => {
    expect(edges.length).toBeGreaterThan(100);
    for (const e of edges) {
      expect(LAYER[folderOf(e.from)], e.from).toBeDefined();
      expect(fs.existsSync(path.join(SRC, e.to)), `${e.from} imports ${e.to}`).toBe(true);
    }
  });

  it('imports flow one way: from a folder only into folders of lower layers', () => {
    expect(upwardImports(edges)).toEqual([]);
  });

  it('no module imports a value from a module that imports a value back', () => {
    expect(valueCycles(edges).map((c) => c.join(' -> '))).toEqual([]);
  });

  it('finds a cycle and an upward import when there is one (the checks can fail)', () => {
    const cycle: Edge[] = [
      { from: 'eval/a.ts', to: 'eval/b.ts', typeOnly: false },
      { from: 'eval/b.ts', to: 'eval/a.ts', typeOnly: false },
      { from: 'eval/b.ts', to: 'eval/c.ts', typeOnly: true },
      { from: 'eval/c.ts', to: 'eval/b.ts', typeOnly: false },
    ];
    expect(valueCycles(cycle)).toEqual([['eval/a.ts', 'eval/b.ts', 'eval/a.ts']]);
    const sideways: Edge[] = [
      { from: path.join('runtime', 'a.ts'), to: path.join('report', 'b.ts'), typeOnly: true },
      { from: path.join('probes', 'a.ts'), to: path.join('segmentation', 'b.ts'), typeOnly: false },
      { from: path.join('cli', 'a.ts'), to: path.join('runtime', 'b.ts'), typeOnly: false },
    ];
    expect(upwardImports(sideways)).toEqual([
      `${path.join('runtime', 'a.ts')} -> ${path.join('report', 'b.ts')}`,
      `${path.join('probes', 'a.ts')} -> ${path.join('segmentation', 'b.ts')}`,
    ]);
  });
});
