#!/usr/bin/env bash
# Makes sure Debian's Slurm (slurm-wlm) and munge are installed: the tests of `--launcher slurm`
# start a one-node cluster of their own (test/helpers/slurm.ts) and stop it by PID. Nothing is
# started here. The daemons need root, as CI runs.
set -euo pipefail
if command -v slurmctld >/dev/null 2>&1 && command -v munged >/dev/null 2>&1; then
  echo "Slurm: installed"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "Slurm: apt-get not available; install slurm-wlm and munge for the --launcher slurm tests" >&2
  exit 1
fi
source "$(dirname "$0")/lib/apt.sh"
apt_install slurm-wlm munge
echo "Slurm: installed"
