/**
 * The reference implementation's checkpoint layout <-> capi-ts parameters, in one place.
 * Reference keys: `backbone.<EncoderDecoder key>` and `head.last_layer.weight_{g,v}` (model.pth),
 * `student.head.*` / `teacher.head.layer.*` (train_capi's full state dict). capi-ts keeps the
 * backbone names and shapes unchanged (spec 2.9), so the mapping only renames prefixes.
 */
import * as tf from '@tensorflow/tfjs';
import type { ModelConfig } from '../config.js';
import type { Params } from '../capi.js';
import { backboneShapes } from '../capi.js';
import { CLUSTER_B, CLUSTER_W, STUDENT_HEAD_G, STUDENT_HEAD_V } from '../heads.js';
import type { LoadedTensor } from './pth.js';

/** capi-ts name -> the reference names it may be stored under (first match wins). */
function aliases(name: string): string[] {
  if (name === STUDENT_HEAD_G || name === STUDENT_HEAD_V) {
    const tail = name.slice('head.'.length);
    return [`head.${tail}`, `student.head.${tail}`, `model.head.${tail}`];
  }
  if (name === CLUSTER_W || name === CLUSTER_B) return [`teacher.head.layer.${name.split('.').pop()}`, name];
  return [`backbone.${name}`, `teacher.backbone.${name}`, `student.backbone.${name}`, `model.backbone.${name}`, name];
}

export interface LoadReport {
  params: Params;
  missing: string[];
  unexpected: string[];
}

export interface ReferenceLoadOptions {
  /** Also load the student head and clustering head when present (training, parity). */
  heads: boolean;
  /**
   * Keep only the first `cfg.predDepth` predictor blocks and ignore the rest of the file's
   * (evaluation needs block 1 alone: predictor pooling, spec 2.7).
   */
  truncatePredictor?: boolean;
}

/**
 * Builds capi-ts parameters from a reference state dict, checking every shape against `cfg`.
 * Like PyTorch's strict loading, returns missing and unexpected keys.
 */
export function fromReferenceStateDict(
  sd: Map<string, LoadedTensor>,
  cfg: ModelConfig,
  file: string,
  opts: ReferenceLoadOptions = { heads: true },
): LoadReport {
  const expected: [string, number[], boolean][] = backboneShapes(cfg).map(([n, s]) => [n, s, true]);
  if (opts.heads) {
    expected.push(
      [STUDENT_HEAD_G, [cfg.numClusters, 1], false],
      [STUDENT_HEAD_V, [cfg.numClusters, cfg.predDim], false],
      [CLUSTER_W, [cfg.numClusters, cfg.dim], false],
      [CLUSTER_B, [cfg.numClusters], false],
    );
  }
  const used = new Set<string>();
  const params: Params = {};
  const missing: string[] = [];
  for (const [name, shape, required] of expected) {
    const key = aliases(name).find((a) => sd.has(a));
    if (!key) {
      if (required) missing.push(name);
      continue;
    }
    const t = sd.get(key)!;
    // Every alias counts as used: files such as heads.pth repeat the head under a second name.
    for (const a of aliases(name)) if (sd.has(a)) used.add(a);
    if (t.shape.length !== shape.length || t.shape.some((s, i) => s !== shape[i])) {
      tf.dispose(Object.values(params));
      throw new Error(
        `${file}: ${key} has shape [${t.shape}] but the model expects [${shape}]: wrong architecture (check --preset / model fields)`,
      );
    }
    params[name] = tf.tensor(t.data, shape, 'float32');
  }
  // Heads are not part of the encoder: when not loaded they are ignored, not unexpected.
  const laterBlock = (k: string) => {
    const m = /decoder\.blocks\.(\d+)\./.exec(k);
    return m !== null && Number(m[1]) >= cfg.predDepth;
  };
  const ignored = (k: string) => (!opts.heads && /(^|\.)head\./.test(k)) || (opts.truncatePredictor === true && laterBlock(k));
  const unexpected = [...sd.keys()].filter((k) => !used.has(k) && !ignored(k));
  return { params, missing, unexpected };
}

/** The opposite direction: a reference-layout state dict (`backbone.*`, `head.*`, `teacher.head.layer.*`). */
export function toReferenceStateDict(params: Params): Map<string, tf.Tensor> {
  const out = new Map<string, tf.Tensor>();
  for (const [name, t] of Object.entries(params)) out.set(aliases(name)[0], t);
  return out;
}
