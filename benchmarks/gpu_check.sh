#!/usr/bin/env bash
# GPU figures in one call (benchmarks/gpu_check.py): run from anywhere on a CUDA machine,
#   bash benchmarks/gpu_check.sh [--install] [gpu_check.py options]
# Outputs go to $OUT (else ./gpu_check_out). Nothing is installed unless --install is given:
# then facebench goes in as an editable install that leaves the machine's torch alone
# (--no-deps, no build isolation: needs setuptools and wheel there); if that fails, the
# script maps the package folders onto the import path itself.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [[ "${1:-}" == "--install" ]]; then
    shift
    "$PYTHON" -m pip install -q --no-deps --no-build-isolation -e . \
        || echo "gpu_check.sh: the editable install failed; going on without it" >&2
fi
export PYTHONUNBUFFERED=1
exec "$PYTHON" benchmarks/gpu_check.py "$@"
