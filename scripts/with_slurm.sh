#!/usr/bin/env bash
# Run a command with a real (throwaway) SLURM up, e.g. CI's `scripts/with_slurm.sh make test`.
#
# Installs and starts the cluster (scripts/slurm_cluster.sh: Debian 12, root, no systemd; two nodes,
# each in its own network and UTS namespace, unless VIDCAP_SLURM_NODES says otherwise), runs the
# command with VIDCAP_REQUIRE_SLURM=1 (tests/test_slurm.py then fails instead of skipping when the
# cluster does not answer), and stops exactly the daemons it started, also when the command fails.
set -euo pipefail
cd "$(dirname "$0")/.."

export VIDCAP_SLURM_NODES=${VIDCAP_SLURM_NODES:-2}
SUDO=()
if [[ $(id -u) != 0 ]]; then
    command -v sudo >/dev/null || { echo "with_slurm: needs root (or sudo) to install and start SLURM" >&2; exit 1; }
    SUDO=(sudo --preserve-env=VIDCAP_SLURM_GPUS,VIDCAP_SLURM_CPUS,VIDCAP_SLURM_STATE,VIDCAP_SLURM_NODES)
fi

started=0
cleanup() { if ((started)); then "${SUDO[@]}" scripts/slurm_cluster.sh stop || true; fi; }
trap cleanup EXIT
if "${SUDO[@]}" scripts/slurm_cluster.sh status >/dev/null 2>&1; then
    echo "with_slurm: reusing the SLURM cluster that is already up (left running afterwards)"
else
    started=1
    "${SUDO[@]}" scripts/slurm_cluster.sh start
fi

export VIDCAP_REQUIRE_SLURM=1
"$@"
