/** The protocol fields marked in the eval schema decide whether a result is current, and name the field that makes it stale. */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { EvalConfig } from '../../src/eval/config.js';
import { DATA_FIELDS, EvalConfigSchema, PROTOCOL_FIELDS, protocolHash, staleField } from '../../src/eval/config.js';

const cfg = EvalConfigSchema.parse({ task: 'fmnist-scenes', checkpoint: '/runs/study/scenes-capi-s0' });
const shape = EvalConfigSchema.shape as Record<string, z.ZodType>;

/** The innermost schema under defaults and optionals. */
function base(s: z.ZodType): z.ZodType {
  const inner = (s as unknown as { unwrap?: () => z.ZodType }).unwrap;
  return inner ? base(inner.call(s)) : s;
}

/** A valid value of field `k` other than `cfg`'s. */
function another(k: keyof EvalConfig): unknown {
  const v = cfg[k];
  const s = base(shape[k]);
  if (s instanceof z.ZodEnum) return (s.options as unknown[]).find((o) => o !== v);
  if (s instanceof z.ZodArray) return ['knn'];
  if (typeof v === 'boolean') return !v;
  if (typeof v === 'number') return v + 1;
  if (typeof v === 'string') return `${v}-other`;
  return 3; // an optional number left unset
}

describe('protocol fields', () => {
  it('are what the schema marks: the probes, schedules, data and weights, not where or how the work runs', () => {
    for (const k of ['probeSteps', 'batchSize', 'logregMaxIter', 'knnIndex', 'trainPatchStride', 'standardize', 'checkpointStep', 'seed'])
      expect(PROTOCOL_FIELDS).toContain(k);
    for (const k of ['cacheDir', 'memoryGb', 'featureBatch', 'denseEngine', 'out', 'backend', 'threads', 'shardImages'])
      expect(PROTOCOL_FIELDS).not.toContain(k);
    expect(DATA_FIELDS.every((k) => PROTOCOL_FIELDS.includes(k))).toBe(true);
  });

  it('a result made with another value of any protocol field is stale, naming the field', () => {
    expect(staleField(cfg, cfg)).toBeUndefined();
    for (const k of PROTOCOL_FIELDS) {
      const made = { ...cfg, [k]: another(k) };
      expect(staleField(made, cfg), k).toMatch(new RegExp(`^${k}: .* -> `));
      expect(protocolHash(made), k).not.toBe(protocolHash(cfg));
    }
  });

  it('a field not marked as protocol does not make it stale', () => {
    const others = Object.keys(shape).filter((k) => !PROTOCOL_FIELDS.includes(k as keyof EvalConfig)) as (keyof EvalConfig)[];
    expect(others.length).toBeGreaterThan(10);
    for (const k of others) {
      const made = { ...cfg, [k]: another(k) };
      expect(staleField(made, cfg), k).toBeUndefined();
      expect(protocolHash(made), k).toBe(protocolHash(cfg));
    }
  });

  it('a field missing from an older result counts as its default; a checkpoint is named by its folder, wherever it lies', () => {
    const { unknownLabels: _, checkpointStep: __, ...older } = cfg;
    expect(staleField(older, cfg)).toBeUndefined();
    expect(staleField({ ...cfg, checkpoint: '/elsewhere/scenes-capi-s0' }, cfg)).toBeUndefined();
    expect(staleField({ ...cfg, checkpoint: '/runs/study/scenes-capi-s1' }, cfg)).toMatch(/^checkpoint: /);
  });

  it('a floor or ceiling row is compared on its data fields alone', () => {
    expect(staleField({ ...cfg, probeSteps: 10 }, cfg, true)).toBeUndefined();
    expect(staleField({ ...cfg, scenesTest: 7 }, cfg, true)).toBe('scenesTest: 7 -> 500');
  });
});
