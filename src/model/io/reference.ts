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

/**
 * Builds capi-ts parameters from a reference state dict, checking every shape against `cfg`.
 * Heads are optional (a hub checkpoint has no clustering head). Like PyTorch's strict loading,
 * returns missing and unexpected keys; `requireAll` turns a missing backbone key into an error.
 */
export function fromReferenceStateDict(sd: Map<string, LoadedTensor>, cfg: ModelConfig, file: string): LoadReport {
  const expected: [string, number[], boolean][] = backboneShapes(cfg).map(([n, s]) => [n, s, true]);
  expected.push(
    [STUDENT_HEAD_G, [cfg.numClusters, 1], false], [STUDENT_HEAD_V, [cfg.numClusters, cfg.predDim], false],
    [CLUSTER_W, [cfg.numClusters, cfg.dim], false], [CLUSTER_B, [cfg.numClusters], false],
  );
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
    used.add(key);
    if (t.shape.length !== shape.length || t.shape.some((s, i) => s !== shape[i])) {
      throw new Error(
        `${file}: ${key} has shape [${t.shape}] but the model expects [${shape}]: wrong architecture (check --preset / model fields)`,
      );
    }
    params[name] = tf.tensor(t.data, shape, 'float32');
  }
  // Keys of the reference that capi-ts does not use: EMA copies of the student head etc. are
  // ignored silently only when they belong to a known non-backbone group.
  const ignoredPrefixes = ['teacher.head.', 'student.head.', 'head.'];
  const unexpected = [...sd.keys()].filter((k) => !used.has(k) && !ignoredPrefixes.some((p) => k.startsWith(p)));
  return { params, missing, unexpected };
}

/** The opposite direction: a reference-layout state dict (`backbone.*`, `head.*`, `teacher.head.layer.*`). */
export function toReferenceStateDict(params: Params): Map<string, tf.Tensor> {
  const out = new Map<string, tf.Tensor>();
  for (const [name, t] of Object.entries(params)) out.set(aliases(name)[0], t);
  return out;
}
