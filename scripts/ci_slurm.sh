#!/usr/bin/env bash
# CI: the workflow through profiles/slurm on a real (throwaway, single-node) SLURM.
#
#   scripts/ci_slurm.sh            # after `make install` (the venv with the SLURM executor plugin)
#
# Installs and starts the cluster (scripts/slurm_cluster.sh: Debian 12, root, no systemd), runs
# tests/test_slurm.py with VIDCAP_REQUIRE_SLURM=1 (a cluster that does not answer is a failure, not
# a skip), and stops exactly the daemons it started, also when the tests fail.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}

SUDO=()
if [[ $(id -u) != 0 ]]; then
    command -v sudo >/dev/null || { echo "ci_slurm: needs root (or sudo) to install and start SLURM" >&2; exit 1; }
    SUDO=(sudo --preserve-env=VIDCAP_SLURM_GPUS,VIDCAP_SLURM_CPUS,VIDCAP_SLURM_STATE)
fi

"$VENV/bin/python" -c "import snakemake_executor_plugin_slurm" 2>/dev/null || {
    echo "ci_slurm: snakemake-executor-plugin-slurm missing from $VENV (run make install)" >&2; exit 1; }

started=0
cleanup() { if ((started)); then "${SUDO[@]}" scripts/slurm_cluster.sh stop || true; fi; }
trap cleanup EXIT
if "${SUDO[@]}" scripts/slurm_cluster.sh status >/dev/null 2>&1; then
    echo "ci_slurm: reusing the SLURM cluster that is already up (left running afterwards)"
else
    started=1
    "${SUDO[@]}" scripts/slurm_cluster.sh start
fi

export VIDCAP_REQUIRE_SLURM=1
"$VENV/bin/pytest" -q -rs tests/test_slurm.py "$@"
