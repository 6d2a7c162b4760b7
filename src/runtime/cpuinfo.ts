/** /proc/cpuinfo, or '' where there is none (not Linux): what the CPU is and which vector extensions it has. */
import * as fs from 'node:fs';

export function readCpuinfo(): string {
  try {
    return fs.readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return '';
  }
}
