/** The pretrain command's user-facing behaviour: --help, and one-line errors for bad input. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { tinyFlags } from '../pretrain/helpers.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'capi-cli-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function pretrain(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/pretrain.ts', ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The error line (the last line of stderr) and that it is the only `error:` line. */
function errorLine(stderr: string): string {
  const lines = stderr
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('error:'));
  expect(lines.length).toBe(1);
  return lines[0];
}

const TINY = tinyFlags({ depth: 1, numClusters: 16, batchSize: 2, numPredictions: 2 });

describe('pretrain CLI', () => {
  it('--help lists the options and config fields', () => {
    const r = pretrain('--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('--preset');
    expect(r.stdout).toContain('--resume');
    expect(r.stdout).toContain('--prediction-subsampling');
  });

  it('missing dataset: names the folder and how to get the data', () => {
    const r = pretrain('--out', path.join(tmp, 'a'), '--dataDir', path.join(tmp, 'nowhere'), '--steps', '1');
    expect(r.code).toBe(1);
    const line = errorLine(r.stderr);
    expect(line).toContain('Fashion-MNIST not found');
    expect(line).toContain(path.join(tmp, 'nowhere'));
    expect(line).toContain('apt-get install dataset-fashion-mnist');
  });

  it('invalid config values and unknown fields', () => {
    let line = errorLine(pretrain('--lr', 'fast').stderr);
    expect(line).toBe("error: invalid --lr 'fast': expected a number > 0 (see --help)");
    line = errorLine(pretrain('--maskRatio', '1.5').stderr);
    expect(line).toBe("error: invalid --mask-ratio '1.5': expected a number >= 0 and < 1 (see --help)");
    line = errorLine(pretrain('--learningRate', '1').stderr);
    expect(line).toContain("Unknown option '--learning-rate'");
    line = errorLine(pretrain('--preset', 'vit-h').stderr);
    expect(line).toContain("invalid --preset 'vit-h': expected one of fmnist-tiny, vit-s14");
  });

  it('an unreadable image: names the file before anything is written', async () => {
    const dir = path.join(tmp, 'images');
    fs.mkdirSync(dir);
    for (let i = 0; i < 3; i++) {
      await sharp({ create: { width: 40, height: 30, channels: 3, background: { r: 60 * i, g: 100, b: 200 } } })
        .png()
        .toFile(path.join(dir, `ok${i}.png`));
    }
    fs.writeFileSync(path.join(dir, 'broken.png'), 'this is not a png');
    const out = path.join(tmp, 'bad-run');
    const r = pretrain('--out', out, '--data', dir, '--steps', '6', '--checkpointEvery', '1', ...TINY);
    expect(r.code).toBe(1);
    const line = errorLine(r.stderr);
    expect(line).toBe(
      `error: ${path.join(dir, 'broken.png')}: unreadable (Input file contains unsupported image format); fix or remove it, or pass --skip-bad-images to leave bad files out`,
    );
    expect(fs.existsSync(out)).toBe(false); // nothing written, not even the folder
  });
});
