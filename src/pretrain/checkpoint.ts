/**
 * Run checkpoints (everything needed to resume: student, teacher, clustering head, both
 * optimiser states, step, config) as one safetensors file written atomically, and the teacher
 * export that evaluation loads.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from '../model/config.js';
import { backboneShapes } from '../model/capi.js';
import { readSafetensors, writeSafetensors } from '../model/io/safetensors.js';
import { writeFileAtomic } from '../runtime/atomic.js';
import type { BackendInfo } from '../runtime/backend.js';
import type { PretrainConfig } from './config.js';
import type { CapiState, Variables } from './step.js';
import { initState } from './step.js';

export const CHECKPOINT_FILE = 'checkpoint.safetensors';
export const TEACHER_DIR = 'teacher';
export const FORMAT = 'capi-ts/1';

type Entries = Map<string, { shape: number[]; data: Float32Array | Int32Array }>;

function addGroup(out: Entries, prefix: string, vars: Record<string, tf.Tensor>): void {
  for (const [name, v] of Object.entries(vars)) out.set(`${prefix}${name}`, { shape: v.shape, data: v.dataSync() as Float32Array });
}

export function saveCheckpoint(dir: string, state: CapiState, cfg: PretrainConfig, backend: BackendInfo): string {
  const entries: Entries = new Map();
  addGroup(entries, 'student.', state.student);
  addGroup(entries, 'teacher.', state.teacher);
  addGroup(entries, 'clustering.', state.clustering);
  addGroup(entries, 'opt.student.m.', state.studentOpt.m);
  addGroup(entries, 'opt.student.v.', state.studentOpt.v);
  addGroup(entries, 'opt.clustering.m.', state.clusterOpt.m);
  addGroup(entries, 'opt.clustering.v.', state.clusterOpt.v);
  const file = path.join(dir, CHECKPOINT_FILE);
  writeSafetensors(file, entries, {
    format: FORMAT,
    kind: 'train-state',
    step: String(state.step),
    studentOptSteps: String(state.studentOpt.steps),
    clusterOptSteps: String(state.clusterOpt.steps),
    config: JSON.stringify(cfg),
    backend: JSON.stringify(backend),
  });
  return file;
}

export interface LoadedCheckpoint {
  state: CapiState;
  config: PretrainConfig;
}

/** Restores a run; the model shapes come from the checkpoint's own config. */
export function loadCheckpoint(file: string): LoadedCheckpoint {
  if (!fs.existsSync(file)) throw new Error(`checkpoint not found: ${file} (nothing to resume; run without --resume first)`);
  const { tensors, metadata } = readSafetensors(file);
  if (metadata.format !== FORMAT || metadata.kind !== 'train-state') {
    throw new Error(`${file}: not a capi-ts training checkpoint (format ${metadata.format ?? 'missing'})`);
  }
  const config = JSON.parse(metadata.config) as PretrainConfig;
  const state = initState(config);
  const restore = (prefix: string, vars: Variables) => {
    for (const [name, v] of Object.entries(vars)) {
      const t = tensors.get(`${prefix}${name}`);
      if (!t) throw new Error(`${file}: missing tensor ${prefix}${name}`);
      if (t.shape.join() !== v.shape.join()) throw new Error(`${file}: ${prefix}${name} has shape [${t.shape}], expected [${v.shape}]`);
      v.assign(tf.tensor(t.data, t.shape));
    }
  };
  restore('student.', state.student);
  restore('teacher.', state.teacher);
  restore('clustering.', state.clustering);
  restore('opt.student.m.', state.studentOpt.m);
  restore('opt.student.v.', state.studentOpt.v);
  restore('opt.clustering.m.', state.clusterOpt.m);
  restore('opt.clustering.v.', state.clusterOpt.v);
  state.step = Number(metadata.step);
  state.studentOpt.steps = Number(metadata.studentOptSteps);
  state.clusterOpt.steps = Number(metadata.clusterOptSteps);
  return { state, config };
}

/**
 * The teacher (EMA) backbone, encoder and predictor (predictor pooling needs its first block),
 * as a tfjs weights export: `teacher/model.json` (model config + weights manifest) and
 * `teacher/weights.bin`, readable with tf.io.decodeWeights. Weights are written before the
 * manifest, each atomically, so a reader never sees a half-written export.
 */
export async function exportTeacher(dir: string, state: CapiState, model: ModelConfig, extra: Record<string, unknown>): Promise<string> {
  const out = path.join(dir, TEACHER_DIR);
  fs.mkdirSync(out, { recursive: true });
  const named: tf.NamedTensorMap = {};
  for (const [name] of backboneShapes(model)) named[name] = state.teacher[name];
  const { data, specs } = await tf.io.encodeWeights(named);
  const weightsName = `weights-${state.step}.bin`;
  writeFileAtomic(path.join(out, weightsName), new Uint8Array(data));
  const manifest = { format: FORMAT, kind: 'encoder', modelConfig: model, ...extra, weightsManifest: [{ paths: [weightsName], weights: specs }] };
  writeFileAtomic(path.join(out, 'model.json'), JSON.stringify(manifest, null, 1));
  for (const f of fs.readdirSync(out)) if (/^weights-\d+\.bin$/.test(f) && f !== weightsName) fs.rmSync(path.join(out, f));
  return out;
}
