/** `npm run export -- --checkpoint RUN --out FILE.pth|FILE.safetensors`: weights in the reference layout. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { loadEncoder } from '../model/io/load.js';
import { writePth } from '../model/io/pth-writer.js';
import { toReferenceStateDict } from '../model/io/reference.js';
import { writeSafetensors } from '../model/io/safetensors.js';
import { ensureWritableDir } from '../runtime/atomic.js';
import { initBackend } from '../runtime/backend.js';
import { commandConfig, isMain, runMain, userPath } from './command.js';

export const EXPORT_COMMAND = {
  usage: 'npm run export -- --checkpoint RUN_OR_FILE --out FILE.pth|FILE.safetensors',
  summary:
    'Writes the encoder-predictor weights (the EMA teacher of a capi-ts run) in the reference\n' +
    "implementation's layout: keys backbone.<name>, float32, linear weights out x in. A .pth file\n" +
    'loads with torch.load and the reference hub loader (it keeps backbone.* and strips the prefix).',
  schema: z.object({
    checkpoint: z.string().min(1).describe('a capi-ts run folder, teacher export, checkpoint.safetensors, or a reference file'),
    out: z
      .string()
      .regex(/\.(pth|pt|safetensors)$/, 'a file name ending in .pth, .pt or .safetensors')
      .describe('the file to write (.pth or .safetensors)'),
  }),
};

export async function main(argv = process.argv.slice(2)): Promise<void> {
  const parsed = commandConfig(EXPORT_COMMAND, argv);
  if (!parsed) return;
  const checkpoint = userPath(parsed.config.checkpoint);
  const out = userPath(parsed.config.out);
  ensureWritableDir(path.dirname(out), '--out');
  await initBackend('auto', 2, () => {});
  const enc = await loadEncoder(checkpoint, { evalOnly: false });
  const sd = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [k, t] of toReferenceStateDict(enc.params)) sd.set(k, { shape: t.shape, data: (await t.data()) as Float32Array });
  if (out.endsWith('.safetensors')) writeSafetensors(out, sd, { format: 'reference-layout', source: enc.source });
  else writePth(out, sd);
  console.error(`wrote ${out}: ${sd.size} tensors from ${enc.source} (${(fs.statSync(out).size / 2 ** 20).toFixed(1)} MiB)`);
}

if (isMain(import.meta.url)) runMain(main);
