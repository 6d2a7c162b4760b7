/**
 * `--checkpoint` for every command: a capi-ts run folder, its teacher export, a capi-ts
 * checkpoint, a reference-layout `.pth` (official CAPI weights or a PyTorch-trained model), or a
 * reference-layout `.safetensors`. Returns the encoder-predictor parameters and model config.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { Params } from '../capi.js';
import { backboneShapes } from '../capi.js';
import type { ModelConfig } from '../config.js';
import { MODEL_PRESETS, validateModelConfig } from '../config.js';
import type { LoadedTensor } from './pth.js';
import { flattenStateDict, readPth } from './pth.js';
import { fromReferenceStateDict } from './reference.js';
import {
  CHECKPOINT_FILE,
  CONFIG_FILE,
  TEACHER_DIR,
  findTeacherExport,
  isTrainState,
  readTeacherExport,
  readTrainState,
} from './run-files.js';
import { readSafetensors } from './safetensors.js';
import { nonFiniteTensors } from '../../runtime/finite.js';

/** What a checkpoint is, without its weights: all that its baselines need. */
export interface EncoderInfo {
  config: ModelConfig;
  /** What was loaded, for reports. */
  source: string;
  /** A capi-ts run's seed: its step-0 weights can be rebuilt (the `init` baseline). */
  runSeed?: number;
}

export interface LoadedEncoder extends EncoderInfo {
  params: Params;
  /** Content hash of the weights file(s), for feature caches. */
  hash: string;
  /** A capi-ts run's training step the weights are from. */
  step?: number;
}

export interface LoadOptions {
  /** Model preset to check the file against (else the shapes are read from the file). */
  preset?: string;
  /** Input side for evaluation (reference files do not record it); default: preset's or 224. */
  imageSize?: number;
  /**
   * Load only the encoder and the first predictor block (all that feature extraction and
   * predictor pooling use); saves ~1/3 of the memory for ViT-L. Default true.
   */
  evalOnly?: boolean;
  /** From a capi-ts training checkpoint: the EMA teacher (default, as the paper evaluates) or the student. */
  weights?: 'teacher' | 'student';
}

function fileHash(files: string[]): string {
  const h = createHash('sha256');
  for (const f of files) h.update(fs.readFileSync(f));
  return h.digest('hex').slice(0, 16);
}

/** Reads the model shape from a reference-layout state dict (spec 2.9). */
export function inferModelConfig(sd: Map<string, LoadedTensor>, file: string, imageSize = 224): ModelConfig {
  const key = [...sd.keys()].find((k) => k.endsWith('patch_embed.weight'));
  if (!key) throw new Error(`${file}: no patch_embed.weight; not a CAPI encoder checkpoint`);
  const prefix = key.slice(0, key.length - 'patch_embed.weight'.length);
  const get = (name: string) => {
    const t = sd.get(prefix + name);
    if (!t) throw new Error(`${file}: missing ${prefix}${name}`);
    return t;
  };
  const [dim, inChans, patchSize] = get('patch_embed.weight').shape;
  const count = (stack: string) => {
    let n = 0;
    while (sd.has(`${prefix}${stack}.blocks.${n}.residual1.norm.weight`)) n++;
    return n;
  };
  const depth = count('encoder');
  const predDepth = count('decoder');
  if (depth === 0) throw new Error(`${file}: no encoder blocks under '${prefix}encoder.blocks.'`);
  const encHeadDim = get('encoder.blocks.0.residual1.fn.rope.freqs').shape[1];
  const predDim = get('mask_token').shape[1];
  const predHeadDim = predDepth > 0 ? get('decoder.blocks.0.residual1.fn.rope.freqs').shape[1] : 64;
  const head = sd.get('head.last_layer.weight_v') ?? sd.get('student.head.last_layer.weight_v') ?? sd.get('teacher.head.layer.weight');
  const cfg: ModelConfig = {
    ...MODEL_PRESETS['vit-l14'],
    imageSize,
    patchSize,
    inChans,
    dim,
    depth,
    heads: dim / encHeadDim,
    predDim,
    predDepth,
    predHeads: predDim / predHeadDim,
    registers: get('registers').shape[1],
    numClusters: head ? head.shape[0] : MODEL_PRESETS['vit-l14'].numClusters,
  };
  validateModelConfig(cfg);
  return cfg;
}

/** Builds capi-ts params from a reference state dict, strictly: missing or unexpected keys are errors. */
function fromReference(sd: Map<string, LoadedTensor>, file: string, opts: LoadOptions): { params: Params; config: ModelConfig } {
  let config: ModelConfig;
  if (opts.preset) {
    const preset = MODEL_PRESETS[opts.preset];
    if (!preset) throw new Error(`unknown preset '${opts.preset}': choose one of ${Object.keys(MODEL_PRESETS).join(', ')}`);
    config = { ...preset, imageSize: opts.imageSize ?? preset.imageSize };
  } else {
    config = inferModelConfig(sd, file, opts.imageSize);
  }
  const evalOnly = opts.evalOnly ?? true;
  if (evalOnly) config = { ...config, predDepth: Math.min(config.predDepth, 1) };
  const report = fromReferenceStateDict(sd, config, file, { heads: false, truncatePredictor: evalOnly });
  const fail = (what: string, keys: string[]) => {
    tf.dispose(Object.values(report.params));
    const shown = keys.slice(0, 5).join(', ') + (keys.length > 5 ? `, ... (${keys.length} in all)` : '');
    throw new Error(`${file}: ${what} keys: ${shown}; is this a CAPI checkpoint of the expected architecture?`);
  };
  if (report.missing.length) fail('missing', report.missing);
  if (report.unexpected.length) fail('unexpected', report.unexpected);
  return { params: report.params, config };
}

function loadTfjsExport(dir: string): LoadedEncoder {
  const exp = readTeacherExport(dir);
  const params: Params = {};
  for (const [name, shape] of backboneShapes(exp.modelConfig)) {
    const t = exp.named[name];
    if (!t) throw new Error(`${exp.files[1]}: missing ${name}`);
    if (t.shape.join() !== shape.join()) throw new Error(`${exp.files[1]}: ${name} has shape [${t.shape}], expected [${shape}]`);
    params[name] = t;
  }
  return {
    params,
    config: exp.modelConfig,
    source: `capi-ts teacher export ${dir} (step ${exp.step})`,
    hash: fileHash(exp.files),
    runSeed: exp.seed,
    step: exp.step,
  };
}

/**
 * A capi-ts run folder's model config and seed without reading its weights: from its teacher
 * export's manifest, else from its config.json (a run's record, kept where the checkpoint is not);
 * undefined for weight files, whose config is read from the weights themselves.
 */
export function readEncoderInfo(spec: string, opts: LoadOptions = {}): EncoderInfo | undefined {
  if (!fs.existsSync(spec) || !fs.statSync(spec).isDirectory()) return undefined;
  const manifest = path.join(spec, TEACHER_DIR, 'model.json');
  const record = path.join(spec, CONFIG_FILE);
  const file = opts.weights !== 'student' && fs.existsSync(manifest) ? manifest : fs.existsSync(record) ? record : undefined;
  if (!file) return undefined;
  const read = JSON.parse(fs.readFileSync(file, 'utf8')) as {
    modelConfig?: ModelConfig;
    seed?: number;
    model?: ModelConfig;
    train?: { seed: number };
  };
  const model = read.modelConfig ?? read.model;
  if (!model) throw new Error(`${file}: no model config; is ${spec} a capi-ts run folder?`);
  // As loadAny: a checkpoint's config takes the evaluation side, an export keeps its own.
  const config = file === record ? { ...model, imageSize: opts.imageSize ?? model.imageSize } : model;
  return { config, source: `capi-ts run ${spec} (config only)`, runSeed: read.seed ?? read.train?.seed };
}

/**
 * Refuses weights with NaN or infinite entries (a diverged run): its features would be
 * meaningless. Asynchronous: the check reads the weights back from the backend (webgpu.ts).
 */
export async function loadEncoder(spec: string, opts: LoadOptions = {}): Promise<LoadedEncoder> {
  const enc = loadAny(spec, opts);
  const bad = await nonFiniteTensors(enc.params);
  if (bad.length) {
    tf.dispose(Object.values(enc.params));
    throw new Error(
      `${enc.source}: ${bad.length} of ${Object.keys(enc.params).length} weight tensors hold NaN or infinite values (e.g. ${bad[0]}): the run diverged; evaluate an earlier checkpoint`,
    );
  }
  return enc;
}

function loadAny(spec: string, opts: LoadOptions): LoadedEncoder {
  if (!fs.existsSync(spec)) throw new Error(`checkpoint not found: ${spec} (a run folder, teacher/ export, .safetensors or .pth file)`);
  if (fs.statSync(spec).isDirectory()) {
    if (opts.weights === 'student') return loadAny(path.join(spec, CHECKPOINT_FILE), opts);
    const teacher = findTeacherExport(spec);
    if (teacher) return loadTfjsExport(teacher);
    throw new Error(`${spec}: no teacher/model.json here; is this a capi-ts run folder (npm run pretrain -- --out ${spec})?`);
  }
  const hash = fileHash([spec]);
  if (spec.endsWith('.safetensors')) {
    const contents = readSafetensors(spec);
    const { tensors, metadata } = contents;
    if (isTrainState(metadata)) {
      // A capi-ts training checkpoint: its EMA teacher by default.
      const which = opts.weights ?? 'teacher';
      const saved = readTrainState(spec, contents);
      const { model, train } = JSON.parse(saved.meta.config) as { model: ModelConfig; train: { seed: number } };
      const params: Params = {};
      for (const [name, shape] of backboneShapes(model)) params[name] = tf.tensor(saved.tensor(which, name, shape).data, shape);
      return {
        params,
        config: { ...model, imageSize: opts.imageSize ?? model.imageSize },
        source: `capi-ts checkpoint ${spec} (${which}, step ${saved.meta.step})`,
        hash: `${hash}:${which}`,
        runSeed: train.seed,
        step: Number(saved.meta.step),
      };
    }
    const { params, config } = fromReference(tensors, spec, opts);
    return { params, config, source: `safetensors ${spec}`, hash };
  }
  const { params, config } = fromReference(flattenStateDict(readPth(spec)), spec, opts);
  return { params, config, source: `reference checkpoint ${spec}`, hash };
}
