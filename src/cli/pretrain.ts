/** `npm run pretrain -- --preset fmnist-tiny --out runs/NAME [--steps N] [--resume] [field value ...]` */
import * as path from 'node:path';
import { MODEL_PRESETS } from '../model/config.js';
import { resolvePretrainConfig, PRESET_NAMES } from '../pretrain/config.js';
import { runPretraining } from '../pretrain/loop.js';
import { BACKEND_CHOICES, initBackend } from '../runtime/backend.js';
import type { BackendRequest } from '../runtime/backend.js';
import { parseArgs, runMain, take } from './args.js';
import { ProgressBar } from './progress.js';

const HELP = `Usage: npm run pretrain -- [options] [--<field> <value> ...]

Pretrains a CAPI encoder (teacher export, checkpoints and metrics under --out).

Options:
  --preset NAME      ${PRESET_NAMES.join(' | ')} (default fmnist-tiny)
  --out DIR          run folder (default runs/<preset>)
  --resume           continue the run in --out from its checkpoint
  --stop-after N     stop (with a checkpoint) after N steps in total; resume later
  --backend NAME     ${BACKEND_CHOICES.join(' | ')} (default auto)
  --threads N        wasm threads (default 2)
  --batch B          alias of --batch-size
  --help             this text

Config fields (any can be set, e.g. --lr 1e-3 --steps 500 --data path/to/images):
  model: ${Object.keys(MODEL_PRESETS['fmnist-tiny']).join(', ')}
  train: data (fmnist | image folder), dataDir, batchSize, epochs, steps, seed, lr, finalLr,
         warmupFraction, truncation, weightDecay, beta1, beta2, eps, teacherMomentum, clusterLr,
         clusterWeightDecay, studentTemp, targetTemp, clusterTemp, skIterations, positionwiseSK,
         masking (inverse-block | block | uniform), maskRatio, roll, predictionSubsampling,
         numPredictions, dropPath, cropScaleMin, cropScaleMax, hflip, checkpointEvery, logEvery
Outputs: config.json (resolved config, backend, seed), metrics.jsonl (one line per step),
         checkpoint.safetensors (resume), teacher/ (tfjs weights of the EMA encoder + predictor).`;

runMain(async () => {
  const { values } = parseArgs(process.argv.slice(2));
  if (values.help) {
    console.log(HELP);
    return;
  }
  const preset = take(values, 'preset', 'fmnist-tiny');
  const out = take(values, 'out', path.join('runs', preset));
  const resume = take(values, 'resume', 'false') === 'true';
  const stopAfter = Number(take(values, 'stopAfter', '0'));
  const backendName = take(values, 'backend', 'auto') as BackendRequest;
  const threads = Number(take(values, 'threads', '2'));
  if ('batch' in values) values.batchSize = take(values, 'batch', '');
  if (!BACKEND_CHOICES.includes(backendName)) throw new Error(`invalid --backend '${backendName}': choose ${BACKEND_CHOICES.join(', ')}`);
  if (!Number.isInteger(stopAfter) || stopAfter < 0) throw new Error(`invalid --stop-after '${stopAfter}': a non-negative integer`);
  if (resume && Object.keys(values).length > 0) {
    throw new Error(`--resume continues the saved config; drop the overrides ${Object.keys(values).map((k) => `--${k}`).join(' ')}`);
  }
  const cfg = resolvePretrainConfig(preset, values);
  const backend = await initBackend(backendName, threads);
  let bar: ProgressBar | undefined;
  const result = await runPretraining(cfg, {
    out, resume, stopAfter, backend,
    log: (l) => console.error(l),
    onStep: (m, total) => {
      bar ??= new ProgressBar(total, 'pretrain', m.step);
      bar.update(m.step + 1, `loss ${m.capiLoss.toFixed(3)} clust ${m.clusteringLoss.toFixed(3)} H ${m.targetEntropy.toFixed(2)} ${m.imagesPerSec.toFixed(1)} img/s`);
    },
  });
  bar?.finish();
  const r = result.records;
  if (r.length > 0) {
    const first = r.slice(0, Math.min(10, r.length));
    const last = r.slice(-Math.min(10, r.length));
    const mean = (xs: typeof r, f: (x: (typeof r)[0]) => number) => xs.reduce((a, x) => a + f(x), 0) / xs.length;
    console.error(
      `${result.stoppedEarly ? 'stopped' : 'done'} at step ${result.state.step}/${result.totalSteps}: ` +
        `capi loss ${mean(first, (x) => x.capiLoss).toFixed(3)} -> ${mean(last, (x) => x.capiLoss).toFixed(3)}, ` +
        `target entropy ${mean(last, (x) => x.targetEntropy).toFixed(2)}, ${mean(r, (x) => x.imagesPerSec).toFixed(1)} img/s; outputs in ${out}`,
    );
  }
});
