/**
 * Run checkpoints: the training state (student, teacher, clustering head, both optimiser
 * states, step, config) to and from the run files of src/model/io/run-files.ts, and the teacher
 * export that evaluation loads.
 */
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from '../model/config.js';
import { backboneShapes } from '../model/capi.js';
import { readTrainState, writeTeacherExport, writeTrainState } from '../model/io/run-files.js';
import type { BackendInfo } from '../runtime/backend.js';
import type { CodeVersion, TrainingCode } from '../runtime/version.js';
import { codeVersion, trainingCode } from '../runtime/version.js';
import type { PretrainConfig } from './config.js';
import type { CapiState, Variables } from './step.js';
import { initState } from './step.js';

/** The tensor groups of a training state, by their prefix in the checkpoint. */
const groups = (s: CapiState): Record<string, Variables> => ({
  student: s.student,
  teacher: s.teacher,
  clustering: s.clustering,
  'opt.student.m': s.studentOpt.m,
  'opt.student.v': s.studentOpt.v,
  'opt.clustering.m': s.clusterOpt.m,
  'opt.clustering.v': s.clusterOpt.v,
});

export async function saveCheckpoint(file: string, state: CapiState, cfg: PretrainConfig, backend: BackendInfo): Promise<string> {
  await writeTrainState(file, groups(state), {
    step: String(state.step),
    studentOptSteps: String(state.studentOpt.steps),
    clusterOptSteps: String(state.clusterOpt.steps),
    config: JSON.stringify(cfg),
    backend: JSON.stringify(backend),
    code: JSON.stringify(codeVersion()),
    trainingCode: JSON.stringify(trainingCode()),
  });
  return file;
}

export interface LoadedCheckpoint {
  state: CapiState;
  config: PretrainConfig;
  /** The code that wrote it (absent in checkpoints written before it was recorded). */
  code?: CodeVersion;
  trainingCode?: TrainingCode;
}

/** Assigns each variable of `groups` its tensor `<group>.<name>` of a saved training state (shapes checked). */
export function restoreGroups(saved: ReturnType<typeof readTrainState>, groups: Record<string, Variables>): void {
  for (const [prefix, vars] of Object.entries(groups)) {
    for (const [name, v] of Object.entries(vars)) {
      const t = saved.tensor(prefix, name, v.shape);
      tf.tidy(() => v.assign(tf.tensor(t.data, t.shape)));
    }
  }
}

/** Restores a run; the model shapes come from the checkpoint's own config. */
export function loadCheckpoint(file: string): LoadedCheckpoint {
  if (!fs.existsSync(file)) throw new Error(`checkpoint not found: ${file} (nothing to resume; run without --resume first)`);
  const saved = readTrainState(file);
  const config = JSON.parse(saved.meta.config) as PretrainConfig;
  const state = initState(config);
  restoreGroups(saved, groups(state));
  state.step = Number(saved.meta.step);
  state.studentOpt.steps = Number(saved.meta.studentOptSteps);
  state.clusterOpt.steps = Number(saved.meta.clusterOptSteps);
  const meta = (key: string) => (saved.meta[key] ? JSON.parse(saved.meta[key]) : undefined);
  return { state, config, code: meta('code'), trainingCode: meta('trainingCode') };
}

/** The teacher (EMA) backbone, encoder and predictor (predictor pooling needs its first block). */
export async function exportTeacher(dir: string, state: CapiState, model: ModelConfig, extra: Record<string, unknown>): Promise<string> {
  const named: tf.NamedTensorMap = {};
  for (const [name] of backboneShapes(model)) named[name] = state.teacher[name];
  return writeTeacherExport(dir, state.step, named, model, extra);
}
