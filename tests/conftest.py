"""Shared helpers: small synthetic batches that need no renderer."""

from __future__ import annotations

import numpy as np
import pytest

from facebench.harness.types import Batch, Record


def synthetic_batch(seeds, size: int = 32, with_mask: bool = False) -> Batch:
    """For each seed a real (random texture) and a fake (the real, brightened), sharing a pair."""
    images, records = [], []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        real = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
        fake = np.clip(real.astype(int) + 10, 0, 255).astype(np.uint8)
        mask = np.zeros((size, size), bool)
        mask[: size // 2, : size // 3] = True
        common = dict(source="synthetic", source_version="1", seed=seed, pair=f"p{seed:04d}")
        records.append(Record(id=f"s{seed:04d}-real", label=0, landmarks={"eye_left": (10.0, 12.0), "eye_right": (20.0, 12.5)}, **common))
        records.append(
            Record(
                id=f"s{seed:04d}-fake",
                label=1,
                artifacts={"brighten": {"strength": 0.5, "amount": 10}},
                masks={"brighten": mask} if with_mask else {},
                **common,
            )
        )
        images += [real, fake]
    return Batch(np.stack(images), records)


@pytest.fixture
def make_batch():
    return synthetic_batch


class ParametricCorpora:
    """In-memory parametric corpora by artifact spec, made once each, split by pair (seed).

    ``corpora("upsampling")`` -> (train images, train labels, test images, test labels).
    """

    def __init__(self, resolution: int, seeds: int, train_seeds: int):
        self.resolution, self.seeds, self.train_seeds = resolution, seeds, train_seeds
        self.cache: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}

    def __call__(self, artifacts: str):
        from facebench.generators.parametric import ParametricGenerator

        if artifacts not in self.cache:
            batch = ParametricGenerator(resolution=self.resolution, artifacts=artifacts).generate(range(self.seeds))
            seeds = np.array([r.seed for r in batch.records])
            labels = np.array([r.label for r in batch.records])
            train = seeds < self.train_seeds  # split by seed, i.e. by pair
            self.cache[artifacts] = (batch.images[train], labels[train], batch.images[~train], labels[~train])
        return self.cache[artifacts]
