#!/usr/bin/env bash
# Makes sure Debian's OpenBLAS is installed, so that `npm ci` builds capi-native (native/: the
# native CPU path, OpenBLAS matrix products on the wasm heap). Optional: without it capi-ts runs
# on plain wasm, 1.7-3x slower (bench:pretrain).
set -euo pipefail
if dpkg -s libopenblas-dev >/dev/null 2>&1; then
  echo "OpenBLAS: installed"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "OpenBLAS: apt-get not available; skipping (capi-ts will run on plain wasm)" >&2
  exit 0
fi
source "$(dirname "$0")/lib/apt.sh"
apt_install libopenblas-dev
echo "OpenBLAS: installed"
