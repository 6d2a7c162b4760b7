import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Writes `bytes` to `file` atomically: a temp file in the same folder, then a rename, so a reader
 * (or a crash) never sees a half-written file. The folder is created if needed.
 */
export function writeFileAtomic(file: string, bytes: string | Uint8Array): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    fs.writeFileSync(tmp, bytes);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}
