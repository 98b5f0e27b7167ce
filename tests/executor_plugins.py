"""Plug-ins for tests/test_executors.py, in a module of their own so Ray workers can import them
(the tests put this folder on the workers' PYTHONPATH)."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import numpy as np

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



#: A folder; the slow plug-ins below write one line per batch started and ended into its ``calls.log``.
LOG_DIR = "FACEBENCH_TEST_LOG_DIR"


def log_call(event: str, batch: str) -> None:
    """Append ``event batch node pid time`` to the calls log (where the log folder is set)."""
    folder = os.environ.get(LOG_DIR)
    if not folder:
        return
    import ray

    node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else "driver"
    with open(Path(folder) / "calls.log", "a") as log:
        log.write(f"{event} {batch} {node} {os.getpid()} {time.time():.3f}\n")


class SlowGenerator(ParametricGenerator):
    """The parametric generator (same name, same records), pausing mid-batch and logging each
    batch's start and end: a test kills a node while a batch is under way."""

    pause = 0.5

    def generate(self, seeds):
        log_call("start", f"g{seeds[0]}")
        time.sleep(self.pause)
        batch = super().generate(seeds)
        log_call("end", f"g{seeds[0]}")
        return batch


class SlowDetector:
    """Mean brightness, pausing mid-batch and logging each batch's start and end (by its first image)."""

    name = "slow"
    version = "1"
    requires_fit = False
    inputs = "pixels"
    batch_size = 2
    pause = 0.3

    def score(self, images):
        batch = "s" + hashlib.sha256(np.ascontiguousarray(images[0]).tobytes()).hexdigest()[:10]
        log_call("start", batch)
        time.sleep(self.pause)
        log_call("end", batch)
        return np.asarray(images, dtype=float).mean(axis=(1, 2, 3)) / 255.0


class MeanOfCrop:
    """Scores an image by its mean brightness, seen through a centre crop of 24 px; records nothing."""

    name = "mean_of_crop"
    version = "1"
    requires_fit = False
    input_policy = "centre_crop:24"

    def score(self, images):
        assert images.shape[1:3] == (24, 24), images.shape
        return images.reshape(len(images), -1).mean(axis=1) / 255.0


class MeanAnySize(MeanOfCrop):
    """Scores an image by its mean brightness at its own size."""

    name = "mean_any_size"
    input_policy = "any"

    def score(self, images):
        return images.reshape(len(images), -1).mean(axis=1) / 255.0
