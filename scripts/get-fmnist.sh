#!/usr/bin/env bash
# Makes sure Fashion-MNIST is where `npm run pretrain` looks by default (Debian package
# dataset-fashion-mnist -> /usr/share/datasets/fashion-mnist). Elsewhere, download the four
# upstream idx .gz files into a folder and pass --dataDir FOLDER instead.
set -euo pipefail
dir=/usr/share/datasets/fashion-mnist
if [ -f "$dir/train-images-idx3-ubyte.gz" ]; then
  echo "Fashion-MNIST: $dir"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: Fashion-MNIST not found in $dir and apt-get is not available: download the upstream idx files and pass --dataDir DIR" >&2
  exit 1
fi
source "$(dirname "$0")/lib/apt.sh"
apt_install dataset-fashion-mnist
echo "Fashion-MNIST: $dir"
