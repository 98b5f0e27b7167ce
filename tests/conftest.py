"""Shared helpers: small synthetic batches that need no renderer."""

from __future__ import annotations

import numpy as np
import pytest

from facebench.harness.contracts.types import Batch, Record


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


def few_of(split, n_each: int = 6, n_test: int = 5):
    """``n_each`` real and ``n_each`` fake train images and ``n_test`` test images of a
    (train x, train y, test x, test y) split: enough for the detector contract tests."""
    train_x, train_y, test_x, _ = split
    pick = np.r_[np.flatnonzero(train_y == 0)[:n_each], np.flatnonzero(train_y == 1)[:n_each]]
    return train_x[pick], train_y[pick], test_x[:n_test]


def fitted_auc(detector, split) -> float:
    """Fit ``detector`` on a split's train half and return its AUC on the test half."""
    from sklearn.metrics import roc_auc_score

    train_x, train_y, test_x, test_y = split
    detector.fit(train_x, train_y)
    return roc_auc_score(test_y, detector.score(test_x))


def check_score_contract(make_detector, small, atol: float) -> None:
    """Scores are float64 probabilities, repeatable, the same (within ``atol``) whatever the
    detector's internal chunking or the batch they come in, and an empty batch gives none."""
    train_x, train_y, test_x = small
    first, second = make_detector(), make_detector(batch_size=2)
    first.fit(train_x, train_y)
    second.fit(train_x, train_y)
    scores = first.score(test_x)
    assert scores.shape == (len(test_x),) and scores.dtype == np.float64
    assert np.all((scores >= 0) & (scores <= 1))
    assert np.array_equal(scores, first.score(test_x))
    # another detector fitted on the same data, extracting features two images at a time
    np.testing.assert_allclose(second.score(test_x), scores, rtol=0, atol=atol)
    assert np.allclose([first.score(test_x[i : i + 1])[0] for i in range(len(test_x))], scores, atol=atol)
    assert first.score(test_x[:0]).shape == (0,)


def check_fit_contract(detector, small) -> None:
    """An unfitted detector refuses to score; a fit on one class, on labels of the wrong length or
    on non-uint8 images is a ValueError that says so."""
    train_x, train_y, _ = small
    with pytest.raises(RuntimeError, match="not fitted"):
        detector.score(train_x[:2])
    for one_class in (np.zeros(len(train_x)), np.ones(len(train_x))):
        with pytest.raises(ValueError, match="both real"):
            detector.fit(train_x, one_class)
    with pytest.raises(ValueError, match="one label per image"):
        detector.fit(train_x, train_y[:-1])
    with pytest.raises(ValueError, match="uint8"):
        detector.fit(train_x.astype(np.float32), train_y)
