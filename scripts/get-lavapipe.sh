#!/usr/bin/env bash
# Mesa's lavapipe (a Vulkan driver on the CPU) for testing the WebGPU path on a machine without a
# GPU, in .cache/lavapipe/: Dawn rejects bookworm's Mesa 22.3, so mesa-vulkan-drivers comes from
# bookworm-backports (25.x), downloaded and unpacked only (a private apt list: nothing on the
# system changes), with the Vulkan loader beside it. Its one system dependency, libllvm15, is
# installed with apt if missing. Prints the two variables that point Dawn at it; nothing else
# uses it (a GPU machine has its vendor's driver instead).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/.cache/lavapipe"
if [ -f "$dest/lvp_icd.json" ] && [ -f "$dest/lib/libvulkan_lvp.so" ] && [ -f "$dest/lib/libvulkan.so.1" ]; then
  echo "export LD_LIBRARY_PATH=$dest/lib VK_ICD_FILENAMES=$dest/lvp_icd.json"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "lavapipe: apt-get not available; install Mesa >= 24 with its lavapipe Vulkan driver" >&2
  exit 1
fi
if ! dpkg -s libllvm15 >/dev/null 2>&1; then
  source "$root/scripts/lib/apt.sh"
  apt_install libllvm15 >&2
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/archives/partial"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm-backports main" >"$work/backports.list"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main" >"$work/main.list"
for list in backports main; do
  opts=(-o "Dir::Etc::sourcelist=$work/$list.list" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$work/lists-$list"
    -o "Dir::Cache::archives=$work/archives" -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
  mkdir -p "$work/lists-$list/partial"
  apt-get "${opts[@]}" update -qq >&2
  pkg=$([ "$list" = backports ] && echo mesa-vulkan-drivers || echo libvulkan1)
  (cd "$work" && apt-get "${opts[@]}" download "$pkg" >&2 2>/dev/null)
done
mkdir -p "$work/root" "$dest/lib"
for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$work/root"; done
cp "$work"/root/usr/lib/*/libvulkan_lvp.so "$work"/root/usr/lib/*/libvulkan.so.1 "$dest/lib/"
printf '{"file_format_version": "1.0.0", "ICD": {"library_path": "%s", "api_version": "1.3.0"}}\n' "$dest/lib/libvulkan_lvp.so" \
  >"$dest/lvp_icd.json"
echo "lavapipe: $(ls "$work"/*.deb | xargs -n1 basename | tr '\n' ' ')-> $dest" >&2
echo "export LD_LIBRARY_PATH=$dest/lib VK_ICD_FILENAMES=$dest/lvp_icd.json"
