"""Deterministic random streams derived from (seed, purpose)."""

from __future__ import annotations

import hashlib

import numpy as np


def purpose_key(purpose: str) -> int:
    """A stable 64-bit integer for a purpose string (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.sha256(purpose.encode("utf-8")).digest()[:8], "little")


def rng_for(seed: int, purpose: str) -> np.random.Generator:
    """A numpy Generator that depends only on ``seed`` and ``purpose``."""
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return np.random.default_rng(np.random.SeedSequence([int(seed), purpose_key(purpose)]))
