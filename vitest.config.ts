import * as os from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    // At least two test files at a time: vitest's default leaves one core free, which on our
    // 2-core machines ran the suite file by file while the Slurm tests mostly wait on their jobs
    // (wasm-native suite 1,096 s with one worker, 689 s with two, same machine, 2026-12-05).
    maxWorkers: Math.max(2, os.availableParallelism() - 1),
    testTimeout: 120_000,
    hookTimeout: 120_000,
    setupFiles: ['test/setup.ts'],
  },
});
