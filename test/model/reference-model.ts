/** The fixture's model (capi-ref-tiny config.json) and its weights, loaded through the .pth reader. */
import type { ModelConfig } from '../../src/model/config.js';
import type { Params } from '../../src/model/capi.js';
import { flattenStateDict, readPth } from '../../src/model/io/pth.js';
import { fromReferenceStateDict } from '../../src/model/io/reference.js';
import { fixturePath } from '../fixture.js';

export const TINY_REF_CONFIG: ModelConfig = {
  imageSize: 16,
  patchSize: 4,
  inChans: 3,
  dim: 64,
  depth: 2,
  heads: 4,
  predDim: 64,
  predDepth: 2,
  predHeads: 4,
  mlpRatio: 4,
  registers: 8,
  normEps: 1e-5,
  ropeMode: 'reference',
  ropeMaxFreq: 7,
  ropeMinFreq: 7e-4,
  scaleRegistersToVisible: true,
  numClusters: 32,
};

export function loadReferenceParams(file = 'model.pth'): Params {
  const sd = flattenStateDict(readPth(fixturePath(file)));
  for (const [k, v] of flattenStateDict(readPth(fixturePath('heads.pth')))) sd.set(k, v);
  const report = fromReferenceStateDict(sd, TINY_REF_CONFIG, file);
  if (report.missing.length || report.unexpected.length) {
    throw new Error(`fixture load: missing ${report.missing} unexpected ${report.unexpected}`);
  }
  return report.params;
}
