#!/usr/bin/env bash
# The full known-answer matrix: every cue detector on every single-artifact corpus,
# 200 seeds (about 100 test pairs) at 512 px, where the pupils span enough pixels for the pupil
# detector to be judged too. `facebench matrix` at its defaults (80 seeds at 256 px) judges every
# other row in a few minutes; tests/test_matrix.py runs small versions.
# Writes results/matrix-full/matrix.md and matrix.png; extra arguments go to `facebench matrix`
# (add --strict to exit 1 on a missed target or an unexpected cell).
set -euo pipefail
facebench matrix --count 200 --resolution 512 --out results/matrix-full "$@"
