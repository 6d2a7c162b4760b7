import type { EvalResult } from '../../src/eval/result.js';

/** An evaluation result with the given fields and empty bookkeeping. */
export const evalResult = (r: Pick<EvalResult, 'task' | 'model' | 'kind' | 'metrics'> & Partial<EvalResult>): EvalResult => ({
  source: '',
  notes: {},
  details: {},
  config: {},
  seed: 0,
  backend: {},
  seconds: {},
  command: '',
  createdAt: '',
  ...r,
});
