/** "Warmup then truncated cosine" schedules (method spec 8.2). */

export interface ScheduleSpec {
  /** Value at step 0 (warmup start) s. */
  start: number;
  /** Peak value b, reached at the end of warmup. */
  base: number;
  /** Final value f. */
  final: number;
  warmupSteps: number;
  totalSteps: number;
  /** Fraction of the cosine half-period that is used (0.8: stops at 80%). */
  truncation: number;
}

export function scheduleValue(s: ScheduleSpec, t: number): number {
  if (t < s.warmupSteps) {
    if (s.warmupSteps === 1) return s.start;
    return s.start + ((s.base - s.start) * t) / (s.warmupSteps - 1);
  }
  if (t >= s.totalSteps) return s.final;
  const i = t - s.warmupSteps;
  const l = s.totalSteps - s.warmupSteps;
  return s.final + 0.5 * (s.base - s.final) * (1 + Math.cos((Math.PI * s.truncation * i) / l));
}

export interface ParamGroup {
  lrMult: number;
  wdMult: number;
}

/**
 * Per-parameter lr / wd multipliers of the student optimiser (spec 8.1), matched on the
 * reference's parameter names.
 */
export function studentParamGroup(name: string): ParamGroup {
  if (name.includes('rope')) return { lrMult: 0, wdMult: 1 };
  const isBias = name.endsWith('.bias');
  if (name.includes('patch_embed')) return { lrMult: 0.2, wdMult: isBias ? 0 : 1 };
  if (isBias) return { lrMult: 1, wdMult: 0 };
  if (name.includes('norm') && name.includes('weight')) return { lrMult: 1, wdMult: 0.1 };
  return { lrMult: 1, wdMult: 1 };
}
