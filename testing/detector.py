"""``check_detector``: the detector contract, checked on a class and its parameters."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable

import numpy as np

from .runner import run_checks
from ..harness.contracts.types import Detector

#: Images per class in the default sample, and their side.
SAMPLE_PER_CLASS = 8
SAMPLE_SIDE = 64


def synthetic_sample(per_class: int = SAMPLE_PER_CLASS, side: int = SAMPLE_SIDE, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images [2n, side, side, 3], labels [2n]): smooth noisy scenes as reals, the same scenes
    upsampled 2x from half size (nearest) as fakes, reals first. Enough to fit and score a detector
    that reads any pixels; a detector that needs faces takes ``sample=`` instead."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(40, 210, size=(per_class, side // 8, side // 8, 3))
    scenes = coarse.repeat(8, axis=1).repeat(8, axis=2) + rng.normal(0, 4, (per_class, side, side, 3))
    reals = np.clip(scenes, 0, 255).astype(np.uint8)
    fakes = reals[:, ::2, ::2].repeat(2, axis=1).repeat(2, axis=2)
    return np.concatenate([reals, fakes]), np.r_[np.zeros(per_class, int), np.ones(per_class, int)]


@dataclass
class DetectorCase:
    """What the checks work on: the class, its parameters and a labelled sample."""

    cls: type
    params: dict[str, Any]
    images: np.ndarray
    labels: np.ndarray
    atol: float

    def build(self, **overrides: Any) -> Any:
        return self.cls(**{**self.params, **overrides})

    def ready(self, **overrides: Any) -> Any:
        """A detector fitted on the sample when it ``requires_fit``, as the runner would."""
        detector = self.build(**overrides)
        if detector.requires_fit:
            detector.fit(self.images, self.labels)
        return detector

    @cached_property
    def fitted(self) -> Any:
        """One :meth:`ready` detector that the checks share (they do not change it)."""
        return self.ready()


def _attributes(case: DetectorCase) -> None:
    cls = case.cls
    for key in ("name", "version"):
        value = getattr(cls, key, None)
        assert isinstance(value, str) and value, f"class attribute {key!r} must be a non-empty string, got {value!r}"
    assert isinstance(getattr(cls, "requires_fit", None), bool), "class attribute 'requires_fit' must be True or False"
    inputs = getattr(cls, "inputs", None)
    assert isinstance(inputs, tuple) and all(isinstance(i, str) for i in inputs), \
        f"class attribute 'inputs' must be a tuple of strings such as ('pixels',), got {inputs!r}"
    if hasattr(cls, "score_range"):
        low, high = cls.score_range
        assert np.isfinite([low, high]).all() and low < high, f"score_range must be (low, high) with low < high, got {cls.score_range!r}"


def _instance(case: DetectorCase) -> None:
    detector = case.build()
    assert isinstance(detector.device, str) and detector.device, f"device must be a string such as 'cpu', got {detector.device!r}"
    size = detector.batch_size
    assert isinstance(size, int) and not isinstance(size, bool) and size >= 1, f"batch_size must be an integer >= 1, got {size!r}"
    assert isinstance(detector, Detector), "the instance does not satisfy facebench.harness.contracts.types.Detector"


def _fit_coherent(case: DetectorCase) -> None:
    detector = case.build()
    if detector.requires_fit:
        try:
            detector.score(case.images[:2])
        except Exception:
            pass
        else:
            raise AssertionError("requires_fit is True, but score() works before fit(); raise an error (e.g. RuntimeError 'not fitted')")
        one_class = np.zeros(len(case.images), int)
        try:
            detector.fit(case.images, one_class)
        except ValueError:
            pass
        else:
            raise AssertionError("fit() on labels of one class must raise ValueError: it cannot learn real from fake")
    else:
        scores = detector.score(case.images[:2])
        assert len(scores) == 2, "requires_fit is False, so score() must work without fit()"


def _scores(case: DetectorCase) -> None:
    scores = case.fitted.score(case.images)
    assert isinstance(scores, np.ndarray), f"score() must return a numpy array, got {type(scores).__name__}"
    assert scores.shape == (len(case.images),), f"score() of {len(case.images)} images returned shape {scores.shape}"
    assert np.issubdtype(scores.dtype, np.floating), f"scores must be floats, got {scores.dtype}"
    assert np.isfinite(scores).all(), f"scores must be finite, got {scores[~np.isfinite(scores)][:3]}"
    if hasattr(case.cls, "score_range"):
        low, high = case.cls.score_range
        outside = scores[(scores < low) | (scores > high)]
        assert not len(outside), f"scores {outside[:3]} lie outside the declared score_range {case.cls.score_range}"


def _deterministic(case: DetectorCase) -> None:
    detector = case.fitted
    first = detector.score(case.images)
    assert np.array_equal(first, detector.score(case.images)), "scoring the same images twice gave different scores"
    again = case.ready().score(case.images)
    np.testing.assert_allclose(again, first, rtol=0, atol=case.atol,
                               err_msg="a second detector with the same parameters (fitted on the same images) scores differently")


def _batch_independent(case: DetectorCase) -> None:
    detector = case.fitted
    whole = detector.score(case.images)
    one_by_one = np.concatenate([detector.score(case.images[i : i + 1]) for i in range(len(case.images))])
    np.testing.assert_allclose(one_by_one, whole, rtol=0, atol=case.atol,
                               err_msg="an image's score depends on the other images in the call")
    size = detector.batch_size
    try:
        detector.batch_size = 3  # the same fitted detector, working 3 images at a time
        chunked = detector.score(case.images)
    finally:
        detector.batch_size = size
    np.testing.assert_allclose(chunked, whole, rtol=0, atol=case.atol,
                               err_msg="scores change with batch_size (chunks of 3 against the whole sample)")


def _empty_input(case: DetectorCase) -> None:
    scores = case.fitted.score(case.images[:0])
    assert len(scores) == 0, f"score() of no images must return an empty array, got {len(scores)} scores"


def _bad_input(case: DetectorCase) -> None:
    detector = case.fitted
    good = case.images[:2]
    bad = {
        "float32 pixels": good.astype(np.float32),
        "grey [N, H, W]": good[..., 0],
        "RGBA [N, H, W, 4]": np.concatenate([good, good[..., :1]], axis=-1),
        "channels first [N, 3, H, W]": np.ascontiguousarray(good.transpose(0, 3, 1, 2)),
    }
    for what, images in bad.items():
        try:
            detector.score(images)
        except (ValueError, TypeError) as exc:
            message = str(exc)
            assert message and "\n" not in message.strip(), f"the error for {what} must be one clear line, got {message!r}"
        else:
            raise AssertionError(f"score() accepted {what}; images are uint8 [N, H, W, 3] RGB: raise ValueError")


#: (name, check) in the order they run; each raises AssertionError with what is wrong.
DETECTOR_CHECKS: tuple[tuple[str, Callable[[DetectorCase], None]], ...] = (
    ("attributes", _attributes),
    ("instance", _instance),
    ("fit_coherent", _fit_coherent),
    ("scores", _scores),
    ("deterministic", _deterministic),
    ("batch_independent", _batch_independent),
    ("empty_input", _empty_input),
    ("bad_input", _bad_input),
)


def check_detector(cls: type, *, sample: tuple[np.ndarray, np.ndarray] | None = None, atol: float = 1e-6,
                   **params: Any) -> None:
    """Check that ``cls(**params)`` keeps the detector contract; AssertionError naming the first failed check.

    Checks, in order: class attributes (``name``, ``version``, ``requires_fit``, ``inputs``,
    ``score_range`` if declared); the instance (``device``, ``batch_size``, the Detector
    protocol); fit and ``requires_fit`` agree (an unfitted detector that needs a fit refuses to
    score, a fit on one class is a ValueError); scores (a float array, one finite score per
    image, inside ``score_range``); determinism; batch independence (one image at a time,
    chunks of 3 (``batch_size`` set to 3) and the whole sample agree within ``atol``); no images give
    no scores; bad input (float, grey, RGBA, channels-first) is a one-line ValueError (or TypeError).

    ``sample``: ``(images, labels)`` to fit and score on (uint8 ``[N, H, W, 3]``, both classes);
    by default :func:`synthetic_sample`.
    """
    images, labels = sample if sample is not None else synthetic_sample()
    case = DetectorCase(cls, dict(params), images, np.asarray(labels), atol)
    run_checks(f"check_detector({cls.__name__})", DETECTOR_CHECKS, case)
