/**
 * The files of a capi-ts run folder, named here once: the resolved config with what the run
 * recorded about itself (`config.json`), one metrics line a step (`metrics.jsonl`; both written and
 * read by src/pretrain/run-folder.ts), and, writer and reader side by side, the training checkpoint
 * (`checkpoint.safetensors`: named tensor groups + metadata, kind 'train-state') and the teacher
 * export (`teacher/model.json` + `teacher/weights-<step>.bin`, tfjs weights format) that
 * evaluation loads. Every file is written atomically; the export writes its weights before the
 * manifest that names them, so a reader never sees a half-written export.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { writeFileAtomic, makeDirs } from '../../runtime/atomic.js';
import type { ModelConfig } from '../config.js';
import { readSafetensors, writeSafetensors } from './safetensors.js';

export const CONFIG_FILE = 'config.json';
export const METRICS_FILE = 'metrics.jsonl';
export const CHECKPOINT_FILE = 'checkpoint.safetensors';
export const TEACHER_DIR = 'teacher';
export const FORMAT = 'capi-ts/1';

/** Metadata of a training checkpoint (string values, as safetensors stores them). */
export type TrainStateMeta = Record<string, string> & { step: string; config: string };

/** Writes tensor groups as `<group>.<name>` entries of one safetensors file (read back asynchronously, as a GPU backend needs). */
export async function writeTrainState(
  file: string,
  groups: Record<string, Record<string, tf.Tensor>>,
  meta: TrainStateMeta,
): Promise<void> {
  const tensors = Object.entries(groups).flatMap(([prefix, vars]) =>
    Object.entries(vars).map(([name, v]) => [`${prefix}.${name}`, v] as const),
  );
  const data = await Promise.all(tensors.map(([, v]) => v.data()));
  const entries = new Map(tensors.map(([name, v], i) => [name, { shape: v.shape, data: data[i] as Float32Array }]));
  writeSafetensors(file, entries, { format: FORMAT, kind: 'train-state', ...meta });
}

export interface TrainStateFile {
  file: string;
  meta: TrainStateMeta;
  /** Tensor `<group>.<name>`, checked against the expected shape. */
  tensor(group: string, name: string, shape: number[]): { data: Float32Array | Int32Array; shape: number[] };
}

/** Reads a training checkpoint (or wraps `contents` already read from it). */
export function readTrainState(file: string, contents: ReturnType<typeof readSafetensors> = readSafetensors(file)): TrainStateFile {
  const { tensors, metadata } = contents;
  if (metadata.format !== FORMAT || metadata.kind !== 'train-state') {
    throw new Error(`${file}: not a capi-ts training checkpoint (format ${metadata.format ?? 'missing'})`);
  }
  return {
    file,
    meta: metadata as TrainStateMeta,
    tensor(group, name, shape) {
      const t = tensors.get(`${group}.${name}`);
      if (!t) throw new Error(`${file}: missing tensor ${group}.${name}`);
      if (t.shape.join() !== shape.join()) throw new Error(`${file}: ${group}.${name} has shape [${t.shape}], expected [${shape}]`);
      return t as { data: Float32Array | Int32Array; shape: number[] };
    },
  };
}

/** Whether `file` is a capi-ts training checkpoint (and not a reference-layout safetensors). */
export function isTrainState(metadata: Record<string, string>): boolean {
  return metadata.kind === 'train-state';
}

/** Writes `<run>/teacher/`: the weights, then the manifest naming them; removes older weight files. */
export async function writeTeacherExport(
  runDir: string,
  step: number,
  named: tf.NamedTensorMap,
  model: ModelConfig,
  extra: Record<string, unknown>,
): Promise<string> {
  const out = path.join(runDir, TEACHER_DIR);
  makeDirs(out);
  const { data, specs } = await tf.io.encodeWeights(named);
  const weightsName = `weights-${step}.bin`;
  writeFileAtomic(path.join(out, weightsName), new Uint8Array(data));
  const manifest = {
    format: FORMAT,
    kind: 'encoder',
    modelConfig: model,
    step,
    ...extra,
    weightsManifest: [{ paths: [weightsName], weights: specs }],
  };
  writeFileAtomic(path.join(out, 'model.json'), JSON.stringify(manifest, null, 1));
  for (const f of fs.readdirSync(out)) if (/^weights-\d+\.bin$/.test(f) && f !== weightsName) fs.rmSync(path.join(out, f));
  return out;
}

export interface TeacherExport {
  modelConfig: ModelConfig;
  step: number;
  /** The run's seed (its weight initialisation derives from it), when the export records it. */
  seed?: number;
  named: tf.NamedTensorMap;
  /** The files read (manifest, weights), for content hashes. */
  files: string[];
}

/** The export folder of a run folder (`<run>/teacher`), or the folder itself if it is one; else undefined. */
export function findTeacherExport(dir: string): string | undefined {
  if (fs.existsSync(path.join(dir, TEACHER_DIR, 'model.json'))) return path.join(dir, TEACHER_DIR);
  if (fs.existsSync(path.join(dir, 'model.json'))) return dir;
  return undefined;
}

const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1 };

export function readTeacherExport(dir: string): TeacherExport {
  const manifestFile = path.join(dir, 'model.json');
  const damaged = `the export is damaged: resume its run (npm run pretrain -- --out RUN --resume) to write it again from the checkpoint, or evaluate its ${CHECKPOINT_FILE}`;
  let manifest: {
    kind?: string;
    modelConfig?: ModelConfig;
    step: number;
    seed?: number;
    weightsManifest?: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
  };
  try {
    manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8'));
  } catch (e) {
    throw new Error(`${manifestFile}: not readable JSON (${(e as Error).message.split('\n')[0]}); ${damaged}`);
  }
  if (manifest.kind !== 'encoder' || !manifest.modelConfig || !manifest.weightsManifest?.[0])
    throw new Error(`${manifestFile}: not a capi-ts encoder export`);
  const group = manifest.weightsManifest[0];
  const weightsFile = path.join(dir, group.paths[0]);
  if (!fs.existsSync(weightsFile)) throw new Error(`${weightsFile} is missing (named by ${manifestFile}); ${damaged}`);
  const buf = fs.readFileSync(weightsFile);
  const expected = group.weights.reduce((a, w) => a + w.shape.reduce((x, y) => x * y, 1) * (DTYPE_BYTES[w.dtype] ?? 4), 0);
  if (buf.length !== expected)
    throw new Error(`${weightsFile} has ${buf.length} bytes but ${manifestFile} needs ${expected}: truncated or replaced; ${damaged}`);
  const named = tf.io.decodeWeights(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length), group.weights);
  return {
    modelConfig: manifest.modelConfig as ModelConfig,
    step: manifest.step,
    seed: manifest.seed,
    named,
    files: [manifestFile, weightsFile],
  };
}
