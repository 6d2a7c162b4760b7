/** `npm run pretrain -- --preset fmnist-tiny --out runs/NAME [--steps N] [--resume] [--<field> value ...]` */
import * as os from 'node:os';
import * as path from 'node:path';
import { z } from 'zod';
import { CONFIG_OVERRIDE_FIELDS, FMNIST_TINY_DEFAULTS, isBuiltinData, PRESET_NAMES, resolvePretrainConfig } from '../pretrain/config.js';
import { knnMonitor } from '../eval/monitor.js';
import { TASKS } from '../eval/tasks.js';
import { evalCommand, progressOnStep, runPretraining } from '../pretrain/loop.js';
import { BACKEND_FIELDS, initBackend } from '../runtime/backend.js';
import { kebabCase } from '../runtime/schema.js';
import { commandConfig, isMain, runMain, userPath } from './command.js';
import { ProgressBar } from './progress.js';

const RUN_FIELDS = {
  preset: z
    .enum(PRESET_NAMES as [string, ...string[]])
    .default('fmnist-tiny')
    .describe('model and training preset'),
  out: z.string().default('').describe("run folder; '': runs/<preset>"),
  resume: z.boolean().default(false).describe('continue the run in --out from its checkpoint'),
  stopAfter: z.number().int().min(0).default(0).describe('stop (with a checkpoint) after N steps in total; resume later'),
  takeOver: z
    .boolean()
    .default(false)
    .describe("take the run folder's lock although another process holds it (only if that process is gone)"),
  forceResume: z.boolean().default(false).describe("resume although the checkpoint's config or the images differ from the run folder's"),
  skipBadImages: z
    .boolean()
    .default(false)
    .describe('leave unreadable or out-of-bounds images out (counted in config.json) instead of stopping'),
  monitorEvery: z
    .number()
    .int()
    .min(0)
    .default(0)
    .describe("every N steps and at the end: the teacher's k-NN top-1 on Fashion-MNIST into metrics.jsonl (monitorKnnTop1); 0: off"),
  monitorTrain: z.number().int().min(1).default(5000).describe('monitor: first N Fashion-MNIST training images (the k-NN memory)'),
  monitorTest: z.number().int().min(1).default(1000).describe('monitor: first N Fashion-MNIST test images (scored)'),
  ...BACKEND_FIELDS,
};

/** Run flags, then every model and training field (given ones override the preset). */
export const PRETRAIN_COMMAND = {
  usage: 'npm run pretrain -- [--preset P] [--out DIR] [--resume] [--<field> value ...]',
  summary:
    'Pretrains a CAPI encoder; teacher export, checkpoints and metrics under --out.\nDefaults shown are the fmnist-tiny preset; other presets change the model and a few training fields.',
  schema: z.object({ ...RUN_FIELDS, ...CONFIG_OVERRIDE_FIELDS }),
  aliases: { batch: 'batchSize' },
  shownDefaults: FMNIST_TINY_DEFAULTS(),
  epilog:
    'Outputs: config.json (resolved config, backend, seed), metrics.jsonl (one line per step),\n' +
    '         checkpoint.safetensors (resume), teacher/ (tfjs weights of the EMA encoder + predictor).',
};

/** Path-valued training fields, resolved against the shell's folder. */
function pathOverrides(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (typeof o.dataDir === 'string' && o.dataDir) out.dataDir = userPath(o.dataDir);
  if (typeof o.data === 'string' && !isBuiltinData(o.data)) out.data = userPath(o.data);
  return out;
}

export async function main(argv = process.argv.slice(2)): Promise<void> {
  const parsed = commandConfig(PRETRAIN_COMMAND, argv);
  if (!parsed) return;
  const { preset, resume, stopAfter, backend: backendName, threads, forceResume, skipBadImages, takeOver } = parsed.config;
  const out = userPath(parsed.config.out || path.join('runs', preset));
  const overrides = Object.fromEntries(Object.entries(parsed.values).filter(([k]) => !(k in RUN_FIELDS)));
  if (resume && Object.keys(overrides).length > 0 && !forceResume) {
    throw new Error(
      `--resume continues the saved config; drop the overrides ${Object.keys(overrides)
        .map((k) => `--${kebabCase(k)}`)
        .join(' ')}, or add --force-resume to change them from the checkpoint on (recorded in config.json)`,
    );
  }
  const cfg = resolvePretrainConfig(preset, { ...overrides, ...pathOverrides(overrides) });
  const backend = await initBackend(backendName, threads);
  const { monitorEvery, monitorTrain, monitorTest } = parsed.config;
  const monitor =
    monitorEvery > 0
      ? knnMonitor({
          task: TASKS.fmnist,
          dataDir: cfg.train.data === 'fmnist' ? cfg.train.dataDir : '',
          every: monitorEvery,
          train: monitorTrain,
          test: monitorTest,
        })
      : undefined;
  let bar: ProgressBar | undefined;
  const result = await runPretraining(cfg, {
    out,
    resume,
    stopAfter,
    backend,
    forceResume,
    skipBadImages,
    takeOver,
    resumeOverrides: resume ? { ...overrides, ...pathOverrides(overrides) } : undefined,
    requestedPreset: parsed.values.preset,
    monitor,
    log: (l) => console.error(l),
    onStep: progressOnStep((total, start) => {
      bar = new ProgressBar(total, 'pretrain', start);
      return bar;
    }),
  });
  bar?.finish();
  if (result.interrupted) process.exitCode = 128 + (os.constants.signals[result.interrupted] ?? 15);
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
  if (!result.stoppedEarly && !result.alreadyComplete) console.error(`next, evaluate it: ${evalCommand(result.config, out)}`);
}

if (isMain(import.meta.url)) runMain(main);
