#!/usr/bin/env bash
# The GPU check of the WebGPU path, prepared here and run on a machine with an NVIDIA GPU that has
# no network and no Node:
#   bash bench/gpu-check.sh build   # here: .gpu-check/ (about 32 MB): Node (xz), the program
#                                   # (bench/gpu-check.ts bundled with esbuild), Dawn's dawn.node (xz),
#                                   # the Vulkan loader, bench/torch_step.py
#   bash bench/gpu-check.sh run     # there, with .gpu-check/ carried: a CAPI train step and ViT-L/14
#                                   # extraction on WebGPU beside PyTorch on CUDA (float32), and the ratios
# The GPU's Vulkan driver is the machine's own (NVIDIA's nvidia_icd.json); the loader travels in
# case the machine lacks one. Nothing else is installed there.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/.gpu-check"

build() {
  local tmp="$dir.tmp"
  rm -rf "$tmp" && mkdir -p "$tmp/node_modules/webgpu/dist/linux-x64" "$tmp/lib"
  # One ESM file; native and optional packages stay outside (webgpu travels beside it, the rest is
  # never loaded on the webgpu backend). The banner gives bundled CommonJS modules their require.
  (cd "$root" && npx esbuild bench/gpu-check.ts --bundle --platform=node --format=esm --target=node20 \
    --outfile="$tmp/app.mjs" --log-level=warning \
    --external:webgpu --external:sharp --external:hnswlib-node --external:@tensorflow/tfjs-node --external:@tensorflow/tfjs-node-gpu \
    "--banner:js=import { createRequire as __capiRequire } from 'node:module'; const require = __capiRequire(import.meta.url);")
  # Started through run.mjs: inside the bundle every module's import.meta.url is app.mjs's, so no
  # bench's "am I the main script" check may match the script node starts.
  echo "import './app.mjs';" >"$tmp/run.mjs"
  cp "$root/node_modules/webgpu/index.js" "$root/node_modules/webgpu/package.json" "$tmp/node_modules/webgpu/"
  xz -T2 -6 -c "$root/node_modules/webgpu/dist/linux-x64/dawn.node" >"$tmp/dawn.node.xz"
  xz -T2 -6 -c "$(readlink -f "$(command -v node)")" >"$tmp/node.xz"
  eval "$(bash "$root/scripts/get-lavapipe.sh")" # the Vulkan loader beside lavapipe
  cp "${LD_LIBRARY_PATH%%:*}/libvulkan.so.1" "$tmp/lib/"
  cp "$root/bench/torch_step.py" "$tmp/"
  rm -rf "$dir" && mv "$tmp" "$dir"
  echo "built $dir: $(du -sh "$dir" | cut -f1) ($(node --version), dawn.node of webgpu $(node -p "require('$root/node_modules/webgpu/package.json').version"))"
}

unxz_to() { # $1 -> $2, with xz where there is one, else Python's lzma
  if command -v xz >/dev/null; then xz -dc "$1" >"$2"; else python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"; fi
}

run() {
  [ -f "$dir/app.mjs" ] || { echo "gpu-check: $dir is missing: run 'bash bench/gpu-check.sh build' first, and carry .gpu-check" >&2; exit 1; }
  local work=/tmp/capi-gpu-check
  rm -rf "$work" && cp -r "$dir" "$work"
  unxz_to "$work/node.xz" "$work/node" && chmod +x "$work/node"
  unxz_to "$work/dawn.node.xz" "$work/node_modules/webgpu/dist/linux-x64/dawn.node"
  ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1' || export LD_LIBRARY_PATH="$work/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  if [ -z "${VK_ICD_FILENAMES:-}${VK_DRIVER_FILES:-}" ]; then
    for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
      if [ -f "$icd" ]; then export VK_DRIVER_FILES="$icd"; break; fi
    done
  fi
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
  echo "node $("$work/node" --version); Vulkan loader: ${LD_LIBRARY_PATH:-system}; driver: ${VK_DRIVER_FILES:-${VK_ICD_FILENAMES:-default}}"
  cd "$work" && exec ./node run.mjs
}

case "${1:-}" in
  build) build ;;
  run) run ;;
  *) echo "usage: bash bench/gpu-check.sh build|run" >&2; exit 2 ;;
esac
