/** `npm run export -- --checkpoint RUN --out FILE.pth|FILE.safetensors`: weights in the reference layout. */
import * as fs from 'node:fs';
import { loadEncoder } from '../model/io/load.js';
import { writePth } from '../model/io/pth-writer.js';
import { toReferenceStateDict } from '../model/io/reference.js';
import { writeSafetensors } from '../model/io/safetensors.js';
import { initBackend } from '../runtime/backend.js';
import { parseArgs, runMain, take } from './args.js';

const HELP = `Usage: npm run export -- --checkpoint RUN_OR_FILE --out FILE.pth|FILE.safetensors

Writes the encoder-predictor weights (the EMA teacher of a capi-ts run) in the reference
implementation's layout: keys backbone.<name>, float32, linear weights out x in. A .pth file
loads with torch.load and the reference hub loader (it keeps backbone.* and strips the prefix).`;

runMain(async () => {
  const { values } = parseArgs(process.argv.slice(2));
  if (values.help) {
    console.log(HELP);
    return;
  }
  const checkpoint = take(values, 'checkpoint', '');
  const out = take(values, 'out', '');
  if (!checkpoint || !out) throw new Error('export needs --checkpoint RUN_OR_FILE and --out FILE (see --help)');
  if (!/\.(pth|pt|safetensors)$/.test(out)) throw new Error(`--out ${out}: use a .pth or .safetensors file name`);
  if (Object.keys(values).length) throw new Error(`unknown option --${Object.keys(values)[0]} (see --help)`);
  await initBackend('auto', 2, () => {});
  const enc = loadEncoder(checkpoint, { evalOnly: false });
  const sd = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [k, t] of toReferenceStateDict(enc.params)) sd.set(k, { shape: t.shape, data: t.dataSync() as Float32Array });
  if (out.endsWith('.safetensors')) writeSafetensors(out, sd, { format: 'reference-layout', source: enc.source });
  else writePth(out, sd);
  console.error(`wrote ${out}: ${sd.size} tensors from ${enc.source} (${(fs.statSync(out).size / 2 ** 20).toFixed(1)} MiB)`);
});
