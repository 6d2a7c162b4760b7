/**
 * Which code made a run, checkpoint or result: the git commit and whether the tree had changes
 * (the package version outside git), and a fingerprint of the training step's own source, the
 * modules `src/pretrain/step.ts` and `src/pretrain/data.ts` import, directly or not. A resume
 * compares fingerprints: code changed elsewhere (reports, evaluation, bookkeeping) does not
 * change what a step computes; a changed training step does.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository (or installed package) root. */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The modules whose source defines a training step (and their imports). */
const TRAINING_STEP_ENTRIES = ['src/pretrain/step.ts', 'src/pretrain/data.ts'];

export interface CodeVersion {
  /** Short commit hash, or 'none' outside a git checkout. */
  commit: string;
  /** Uncommitted changes to tracked files (results/ left out: outputs, not code). */
  dirty: boolean;
  /** package.json's version. */
  package: string;
}

export interface TrainingCode {
  /** Hash over the files below, in order. */
  hash: string;
  /** Repository-relative path -> a short hash of its content. */
  files: Record<string, string>;
}

let cached: CodeVersion | undefined;

export function codeVersion(): CodeVersion {
  if (cached) return cached;
  const pkg = (() => {
    try {
      return (JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version?: string }).version ?? 'unknown';
    } catch {
      return 'unknown';
    }
  })();
  const git = (args: string[]) =>
    execFileSync('git', ['-C', PACKAGE_ROOT, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    const commit = git(['rev-parse', '--short=12', 'HEAD']);
    const dirty = git(['status', '--porcelain', '--untracked-files=no', '--', '.', ':(exclude)results']) !== '';
    cached = { commit, dirty, package: pkg };
  } catch {
    cached = { commit: 'none', dirty: false, package: pkg };
  }
  return cached;
}

/** `commit` plus '+changes' when the tree was dirty: how a version is written in messages. */
export const versionLabel = (v: CodeVersion | undefined): string =>
  v ? `${v.commit === 'none' ? `package ${v.package}` : v.commit}${v.dirty ? '+changes' : ''}` : 'an unrecorded version';

const IMPORT = /(?:from\s+|import\s*\(\s*)'(\.{1,2}\/[^']+)'/g;

/** `entries` and every module they import by relative path, transitively (repository-relative .ts paths, sorted). */
export function moduleClosure(entries: string[], root = PACKAGE_ROOT): string[] {
  const seen = new Set<string>();
  const visit = (rel: string) => {
    if (seen.has(rel) || !fs.existsSync(path.join(root, rel))) return;
    seen.add(rel);
    const src = fs.readFileSync(path.join(root, rel), 'utf8');
    for (const m of src.matchAll(IMPORT)) {
      const target = path.posix.join(path.posix.dirname(rel), m[1]).replace(/\.js$/, '.ts');
      visit(target);
    }
  };
  for (const e of entries) visit(e);
  return [...seen].sort();
}

const shortHash = (data: string | Buffer) => createHash('sha256').update(data).digest('hex').slice(0, 16);

/** The training step's source fingerprint; without the sources (a bundled build) it is the package version's. */
export function trainingCode(): TrainingCode {
  const files = Object.fromEntries(
    moduleClosure(TRAINING_STEP_ENTRIES).map((f) => [f, shortHash(fs.readFileSync(path.join(PACKAGE_ROOT, f)))]),
  );
  const hash = Object.keys(files).length ? shortHash(JSON.stringify(files)) : shortHash(`package ${codeVersion().package}`);
  return { hash, files };
}

/** The files whose content differs between two fingerprints (added or removed ones too). */
export function changedFiles(a: TrainingCode, b: TrainingCode): string[] {
  return [...new Set([...Object.keys(a.files), ...Object.keys(b.files)])].filter((f) => a.files[f] !== b.files[f]).sort();
}
