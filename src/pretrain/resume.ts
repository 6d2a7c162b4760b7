/**
 * What a resume checks: that the checkpoint is the run's (its architecture, training config and
 * data), and on which code it continues (a changed training step is refused unless forced).
 */
import * as fs from 'node:fs';
import type { CodeVersion, TrainingCode } from '../runtime/version.js';
import { changedFiles, codeVersion, trainingCode, versionLabel } from '../runtime/version.js';
import type { PretrainConfig } from './config.js';
import type { RunFolder, SavedRunConfig } from './run-folder.js';

/** One resume of a run: at which step, on which code, and whether the training step's code had changed. */
export interface ResumeRecord {
  step: number;
  code: CodeVersion;
  trainingCodeChanged: boolean;
  forced: boolean;
  /** Config fields changed at this resume (--force-resume with overrides). */
  overrides?: Record<string, unknown>;
}

/** The first field where two objects differ, as 'key: a vs b'. */
function firstDifference(a: Record<string, unknown>, b: Record<string, unknown>): string | undefined {
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    if (JSON.stringify(a[k]) !== JSON.stringify(b[k])) return `${k}: ${JSON.stringify(a[k])} vs ${JSON.stringify(b[k])}`;
  }
  return undefined;
}

/**
 * A resume on other code: said in one line; refused when the training step's own source changed
 * (its steps would not be the run's: a changed cosine schedule would bend the lr at the resume step),
 * unless --force-resume, which the run records.
 */
export function checkCode(
  saved: { step: number; code?: CodeVersion; trainingCode?: TrainingCode },
  opts: { forceResume?: boolean; log: (line: string) => void },
): ResumeRecord {
  const now = codeVersion();
  const was = saved.code;
  const changed = saved.trainingCode ? changedFiles(saved.trainingCode, trainingCode()) : [];
  const record = { step: saved.step, code: now, trainingCodeChanged: changed.length > 0, forced: false };
  if (changed.length) {
    const what = `the training step's code changed since this checkpoint (${versionLabel(was)} -> ${versionLabel(now)}: ${changed.slice(0, 4).join(', ')}${changed.length > 4 ? `, ... ${changed.length} files` : ''})`;
    if (!opts.forceResume)
      throw new Error(
        `${what}: its remaining steps would not be this run's; pass --force-resume to continue anyway (recorded in config.json)`,
      );
    opts.log(`--force-resume: ${what}; continuing, recorded in config.json`);
    return { ...record, forced: true };
  }
  if (was && versionLabel(was) !== versionLabel(now))
    opts.log(
      `code changed since this checkpoint (${versionLabel(was)} -> ${versionLabel(now)}); the training step's is unchanged: continuing`,
    );
  return record;
}

/** A resume continues exactly the run in the folder: same architecture and training config, same data. */
export function checkResume(
  folder: RunFolder,
  cfg: PretrainConfig,
  fingerprint: string,
  opts: { requestedPreset?: string; forceResume?: boolean },
): void {
  const fix = 'pass --force-resume to continue anyway, or start a new run in another --out';
  if (opts.requestedPreset && opts.requestedPreset !== cfg.preset) {
    throw new Error(`--preset ${opts.requestedPreset}: the run in ${folder.dir} is a ${cfg.preset} run; drop --preset to resume it`);
  }
  const file = folder.config;
  if (!fs.existsSync(file) || opts.forceResume) return;
  let saved: SavedRunConfig;
  try {
    saved = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    throw new Error(`${file}: not valid JSON; cannot check that the checkpoint belongs to this run (${fix})`);
  }
  const model = firstDifference(saved.model ?? {}, cfg.model);
  if (model) throw new Error(`${folder.checkpoint} is not this run's checkpoint: its model differs from ${file} (${model}); ${fix}`);
  const train = firstDifference(saved.train ?? {}, cfg.train);
  if (train)
    throw new Error(`${folder.checkpoint} is not this run's checkpoint: its training config differs from ${file} (${train}); ${fix}`);
  if (saved.datasetFingerprint && saved.datasetFingerprint !== fingerprint) {
    throw new Error(
      `the training images changed since this run started (fingerprint ${saved.datasetFingerprint} -> ${fingerprint}); ${fix}`,
    );
  }
}
