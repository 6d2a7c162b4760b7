// Install step of capi-native: builds the addon with node-gyp against the Node headers on this
// machine (--nodedir, so nothing is downloaded) and Debian's OpenBLAS. Optional by design: when
// the library is missing or the build fails it prints one line and exits 0; capi-ts then runs
// on the wasm backend.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const say = (line) => console.log(`capi-native: ${line}`);
// CAPI_NATIVE_CBLAS_H: the one header to look for (tests use it to simulate a machine without OpenBLAS).
const headers = process.env.CAPI_NATIVE_CBLAS_H
  ? [process.env.CAPI_NATIVE_CBLAS_H]
  : ['/usr/include/x86_64-linux-gnu/cblas.h', '/usr/include/aarch64-linux-gnu/cblas.h', '/usr/include/cblas.h'];
const nodeDir = process.env.CAPI_NATIVE_NODEDIR ?? path.resolve(process.execPath, '..', '..');
if (process.env.CAPI_NATIVE === 'off') {
  say('skipped (CAPI_NATIVE=off); capi-ts runs on the wasm backend');
  process.exit(0);
}
if (!headers.some((h) => fs.existsSync(h))) {
  say('skipped: OpenBLAS not found (apt-get install libopenblas-dev for the native CPU path); capi-ts runs on the wasm backend');
  process.exit(0);
}
if (!fs.existsSync(path.join(nodeDir, 'include', 'node', 'node_api.h'))) {
  say(`skipped: no Node headers under ${nodeDir}/include/node (install the nodejs headers); capi-ts runs on the wasm backend`);
  process.exit(0);
}
const gyp = process.env.npm_config_node_gyp ?? path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
const here = path.dirname(new URL(import.meta.url).pathname);
const r = spawnSync(process.execPath, [gyp, 'rebuild', `--nodedir=${nodeDir}`, '--loglevel=error'], { cwd: here, stdio: ['ignore', 'ignore', 'inherit'] });
if (r.status !== 0) {
  say('build failed (see above); capi-ts runs on the wasm backend');
  process.exit(0);
}
say('built build/Release/capi_native.node (OpenBLAS)');
