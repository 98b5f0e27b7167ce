#!/usr/bin/env bash
# The full known-answer matrix: every cue detector on every single-artifact corpus,
# 200 seeds at 512 px, where the pupils span enough pixels for the pupil detector (tests/test_matrix.py runs a small version in CI).
# Writes results/matrix-full/matrix.md and matrix.png; extra arguments go to `facebench matrix`.
set -euo pipefail
facebench matrix --count 200 --resolution 512 --out results/matrix-full "$@"
