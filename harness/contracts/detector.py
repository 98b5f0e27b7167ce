"""An optional base for detectors: declared parameter checks, ``device`` and ``batch_size``, work in batches.

A detector needs none of this (the :class:`~facebench.harness.contracts.types.Detector`
protocol is the contract); the base only saves writing the same plumbing again::

    class MyDetector(FeatureDetector):
        checks = {"scale": number()}

        def __init__(self, scale: float = 1.0, batch_size: int = 64):
            super().__init__(scale=scale, batch_size=batch_size)

        def batch_features(self, images):       # uint8 [n, H, W, 3] -> float [n, k]
            ...

        def make_model(self):                   # anything with fit(x, y) and predict_proba(x)
            ...

Each check is a function ``(name, value) -> value`` that returns the value to keep (converted,
e.g. to ``int``) or raises ``ValueError`` with a one-line message naming the parameter. The
constructor's signature stays explicit, so ``facebench info`` and ``-p KEY=VALUE`` read it.
"""

from __future__ import annotations

import re
from typing import Any, Callable, ClassVar, Iterable, Mapping, Sequence

import numpy as np

from .types import check_images

Check = Callable[[str, Any], Any]

_DEVICE = re.compile(r"^(cpu|cuda(:\d+)?)$")


# --------------------------------------------------------------------------------------------
# checks: each returns a function (name, value) -> value


def integer(minimum: int = 1, maximum: int | None = None) -> Check:
    """An integer (not a bool) in ``minimum..maximum``; kept as ``int``."""

    def check(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
        if maximum is not None and value > maximum:
            raise ValueError(f"{name} must be <= {maximum}, got {value}")
        return int(value)

    return check


def number() -> Check:
    """A finite number > 0 (not a bool); kept as ``float``."""

    def check(name: str, value: Any) -> float:
        is_number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
        if not is_number or not np.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        return float(value)

    return check


def non_negative() -> Check:
    """A finite number >= 0 (not a bool); kept as ``float``."""

    def check(name: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < np.inf:
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        return float(value)

    return check


def probability() -> Check:
    """A number in [0, 1] (not a bool); kept as ``float``."""

    def check(name: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
        return float(value)

    return check


def choice(options: Iterable[str]) -> Check:
    """One of ``options``."""
    allowed = tuple(options)

    def check(name: str, value: Any) -> Any:
        if not isinstance(value, str) or value not in allowed:
            raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        return value

    return check


def flag() -> Check:
    """``True`` or ``False`` (not 0 or 1)."""

    def check(name: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, got {value!r}")
        return value

    return check


def device() -> Check:
    """"cpu", "cuda" or "cuda:N", usable here (torch is imported only for a CUDA device)."""

    def check(name: str, value: Any) -> str:
        if not isinstance(value, str) or not _DEVICE.match(value):
            raise ValueError(f"{name} must be 'cpu', 'cuda' or 'cuda:N', got {value!r}")
        if value.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                raise ValueError(f"{name} {value!r} asked for, but torch finds no CUDA device here (torch {torch.__version__})")
        return value

    return check


def check_device(value: Any) -> str:
    """``value`` checked as a detector's ``device`` parameter (see :func:`device`)."""
    return device()("device", value)


def require(test: Callable[[Any], bool], message: str) -> Check:
    """A value for which ``test(value)`` is true; otherwise ``message`` formatted with ``{name}`` and ``{value}``."""

    def check(name: str, value: Any) -> Any:
        if not test(value):
            raise ValueError(message.format(name=name, value=value))
        return value

    return check


def optional(inner: Check) -> Check:
    """``None``, or a value that passes ``inner``."""

    def check(name: str, value: Any) -> Any:
        return None if value is None else inner(name, value)

    return check


def all_of(*checks: Check) -> Check:
    """Each of ``checks`` in turn, each on what the one before returned."""

    def check(name: str, value: Any) -> Any:
        for inner in checks:
            value = inner(name, value)
        return value

    return check


def check_labels(detector: str, images: np.ndarray, labels: Any) -> np.ndarray:
    """``labels`` as ints, or ValueError unless there is one per image and both classes occur."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(f"{detector} detector: need one label per image, got {labels.shape} labels for {len(images)} images")
    found = np.unique(labels).tolist()
    if set(found) != {0, 1}:
        raise ValueError(f"{detector} detector needs both real (0) and fake (1) images to fit, got labels {found}")
    return labels.astype(int)


# --------------------------------------------------------------------------------------------
# the bases


class DetectorBase:
    """Checks and stores the constructor's parameters; runs work ``batch_size`` images at a time.

    A subclass declares ``checks`` (parameter name -> check) and calls
    ``super().__init__(name=value, ...)`` from its own ``__init__``: each value is checked (a
    name without a check is kept as given) and stored as an attribute of that name.
    ``batch_size`` is always checked (an integer >= 1); ``device`` is "cpu" unless a
    parameter sets it (declare ``"device": device()`` then).
    """

    #: Parameter name -> check; the checks of base classes apply too (a subclass's win).
    checks: ClassVar[Mapping[str, Check]] = {}
    #: What size it takes (:mod:`~facebench.harness.contracts.input_policy`): the runner applies it.
    input_policy: str = "any"
    device: str = "cpu"
    batch_size: int

    def __init__(self, **params: Any):
        table = self.all_checks()
        for name, value in params.items():
            check = table.get(name)
            setattr(self, name, value if check is None else check(name, value))

    @classmethod
    def all_checks(cls) -> dict[str, Check]:
        """The checks of this class and its bases (the most derived class's win)."""
        table: dict[str, Check] = {"batch_size": integer()}
        for klass in reversed(cls.__mro__):
            table.update(vars(klass).get("checks", {}))
        return table

    def in_batches(self, work: Callable[[np.ndarray], np.ndarray], images: np.ndarray) -> np.ndarray:
        """``work`` applied to ``images`` ``batch_size`` at a time (bounds memory), results concatenated."""
        check_images(images)
        if len(images) == 0:
            raise ValueError("no images given")
        size = self.batch_size
        return np.concatenate([work(images[start : start + size]) for start in range(0, len(images), size)])


class FeatureDetector(DetectorBase):
    """A cue detector: features of each image, into a model fitted on the train split.

    A subclass defines :meth:`batch_features` (float ``[n, k]`` of uint8 ``[n, H, W, 3]``) and
    :meth:`make_model` (an unfitted object with ``fit(x, y)`` and ``predict_proba(x)``, as in
    scikit-learn). The score is the model's probability of "fake".
    """

    #: Scores are probabilities of "fake"; the runner checks it.
    score_range = (0.0, 1.0)
    requires_fit = True

    name: str
    model: Any = None

    def batch_features(self, images: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def make_model(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def features(self, images: np.ndarray) -> np.ndarray:
        """float ``[N, k]`` features of every image, computed ``batch_size`` images at a time."""
        return self.in_batches(self.batch_features, images)

    def fit(self, images: np.ndarray, labels: np.ndarray) -> None:
        labels = check_labels(self.name, images, labels)
        x = self.features(images)
        model = self.make_model()
        model.fit(x, labels)
        self.model = model

    def fit_sizes(self, arrays: Sequence[np.ndarray], labels: np.ndarray) -> None:
        """Fit on images of several sizes: one uint8 ``[n, H, W, 3]`` array per size, ``labels``
        of their rows one array after another (the features of each image have one length at
        every size, so the runner sends a corpus of mixed sizes here)."""
        total = sum(len(images) for images in arrays)
        labels = check_labels(self.name, np.empty(total), labels)
        x = np.concatenate([self.features(images) for images in arrays])
        model = self.make_model()
        model.fit(x, labels)
        self.model = model

    def score(self, images: np.ndarray) -> np.ndarray:
        if self.model is None:
            raise RuntimeError(f"{self.name} detector is not fitted; call fit() first")
        check_images(images)
        if len(images) == 0:
            return np.zeros(0)
        x = self.features(images)
        fitted = getattr(self.model, "n_features_in_", x.shape[1])
        if x.shape[1] != fitted:
            raise ValueError(f"{self.name} detector: {x.shape[1]} features, but it was fitted on {fitted}")
        return np.clip(self.model.predict_proba(x)[:, 1], 0.0, 1.0).astype(np.float64)
