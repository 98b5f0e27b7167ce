"""A task's detector: the three-way split of a corpus by pair, and the detector fitted on its fit part."""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.progress import Progress

from ..contracts import registry
from ..data.corpus import Corpus, CorpusError
from ..data.suite import DetectorSpec, SplitSpec
from .inputs import fit_inputs, policy_of
from .progress import advance, track
from .timing import set_eval


def three_way_split(corpus: Corpus, split: SplitSpec) -> tuple[Corpus, Corpus, Corpus]:
    """(fit, calibration, test) views by pair; calibration is empty when its fraction is 0."""
    train, test = corpus.split(split.test_fraction, split.seed)
    if split.calibration_fraction <= 0:
        return train, train.select(ids=()), test
    fit, calibration = train.split(split.calibration_fraction, split.seed + 1)
    return fit, calibration, test


def fitted_detector(spec: DetectorSpec, label: str, corpus: Corpus, split: SplitSpec,
                    progress: Progress | None = None) -> Any:
    """``spec``'s detector fitted on ``corpus``'s fit split (if it learns), in eval mode."""
    detector = registry.create("detector", spec.name, **spec.params)
    fit_part, _, test = three_way_split(corpus, split)
    if len(test) == 0:
        raise CorpusError(f"{corpus.root}: the test split is empty; generate more images")
    if detector.requires_fit:
        if len(np.unique(fit_part.labels)) < 2:
            raise CorpusError(f"{corpus.root}: the train split needs real and fake images to fit {spec.label!r}")
        task = track(progress, f"fit {spec.label} on {label}", 1)
        fit_on_sizes(detector, spec.label, fit_part)
        advance(progress, task)
    set_eval(detector)
    return detector


def fit_on_sizes(detector: Any, label: str, fit_part: Corpus) -> None:
    """Fit ``detector`` on ``fit_part`` brought to its input policy: ``fit(images, labels)`` when
    every image then has one size (as always for a corpus of one size); images of several sizes go
    to ``fit_sizes(arrays, labels)`` (one array per size, labels in the same order), which
    :class:`~facebench.harness.contracts.detector.FeatureDetector` has; CorpusError otherwise."""
    policy = policy_of(detector)
    arrays, labels = fit_inputs(fit_part, policy)
    if len(arrays) == 1:
        detector.fit(arrays[0], labels)
    elif callable(getattr(detector, "fit_sizes", None)):
        detector.fit_sizes(arrays, labels)
    else:
        sizes = ", ".join(f"{a.shape[2]}x{a.shape[1]}" for a in arrays[:4]) + (", ..." if len(arrays) > 4 else "")
        raise CorpusError(f"{fit_part.root}: detector {label!r} fits on images of one size, but its fit split holds "
                          f"{len(arrays)} sizes after its input policy ({policy.describe()}: {sizes}); fit it on a "
                          "corpus of one size, or give it a fixed-size input policy")
