"""Plug-ins for tests/test_executors.py, in a module of their own so Ray workers can import them
(the tests put this folder on the workers' PYTHONPATH)."""

from __future__ import annotations

import os
from pathlib import Path

from facebench.generators.parametric.generator import ParametricGenerator

#: A folder; while it holds ``armed`` and not ``fired``, the shard starting at CRASH_SEED kills its worker once.
CRASH_DIR = "FACEBENCH_TEST_CRASH_DIR"
CRASH_SEED = 4


class CrashyGenerator(ParametricGenerator):
    """The parametric generator, whose worker dies (os._exit) on the first attempt at one shard.

    It keeps the name "parametric" (and so the record ids): a test puts it in the built-in's place."""

    def generate(self, seeds):
        folder = os.environ.get(CRASH_DIR)
        if folder and seeds and seeds[0] == CRASH_SEED:
            armed, fired = Path(folder) / "armed", Path(folder) / "fired"
            if armed.exists() and not fired.exists():
                fired.write_text(str(os.getpid()))
                os._exit(1)
        return super().generate(seeds)


class BrokenDetector:
    """Raises on every batch."""

    name = "broken"
    version = "1"
    requires_fit = False
    inputs = "pixels"
    batch_size = 8

    def score(self, images):
        raise ValueError("broken detector: no scores today")

