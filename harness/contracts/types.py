"""Data contracts shared by generators, the corpus, detectors and the runner.

Images cross every boundary as ``numpy.uint8`` arrays of shape ``[N, H, W, 3]`` (RGB).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Protocol, Sequence, runtime_checkable

import numpy as np

REAL = 0
FAKE = 1

#: Landmark names a generator may record, each an ``(x, y)`` position in pixels.
LANDMARK_NAMES = ("eye_left", "eye_right", "mouth_left", "mouth_right")

IMAGE_FORMATS = ("png", "jpg")


@dataclass(frozen=True)
class Record:
    """What is known about one image: its label, where it came from, and its artifacts.

    ``artifacts`` maps an artifact name to its parameters; every entry has a ``strength``.
    ``landmarks`` maps names from :data:`LANDMARK_NAMES` to ``(x, y)`` pixel positions.
    ``masks`` maps an artifact name to a boolean ``[H, W]`` array marking where it acts, and
    may hold the regions ``face``, ``hair`` and ``background`` as ground truth.
    """

    id: str
    label: int
    source: str
    source_version: str
    seed: int
    pair: str
    artifacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    landmarks: dict[str, tuple[float, float]] | None = None
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    #: How the generator made the image, beyond the seed (JSON-serialisable), e.g. truncation.
    meta: dict[str, Any] = field(default_factory=dict)
    format: str = "png"

    def __post_init__(self) -> None:
        if self.label not in (REAL, FAKE):
            raise ValueError(f"record {self.id!r}: label must be 0 (real) or 1 (fake), got {self.label!r}")
        if not self.id or "/" in self.id or "\\" in self.id or self.id.startswith("."):
            raise ValueError(f"record id {self.id!r} is not a safe file name")
        if self.format not in IMAGE_FORMATS:
            raise ValueError(f"record {self.id!r}: format must be one of {IMAGE_FORMATS}, got {self.format!r}")
        for name, params in self.artifacts.items():
            if "strength" not in params:
                raise ValueError(f"record {self.id!r}: artifact {name!r} has no strength")

    def with_changes(self, **changes: Any) -> "Record":
        return replace(self, **changes)


@dataclass
class Batch:
    """Images with one :class:`Record` each: uint8 ``[N, H, W, 3]``, or, from a source of images
    of many sizes (e.g. the folder generator with ``resolution="native"``), a list of uint8
    ``[H, W, 3]`` arrays (:attr:`mixed_sizes`). Artifacts take the array form only."""

    images: np.ndarray | list[np.ndarray]
    records: list[Record]

    def __post_init__(self) -> None:
        if isinstance(self.images, list):
            for image in self.images:
                check_images(image[None] if isinstance(image, np.ndarray) else image)
        else:
            check_images(self.images)
        if len(self.records) != len(self.images):
            raise ValueError(f"batch has {len(self.images)} images but {len(self.records)} records")
        for image, record in zip(self.images, self.records):
            height, width = image.shape[:2]
            for name, mask in record.masks.items():
                if mask.shape != (height, width) or mask.dtype != bool:
                    raise ValueError(
                        f"record {record.id!r}: mask {name!r} must be bool [{height}, {width}], "
                        f"got {mask.dtype} {list(mask.shape)}"
                    )

    def __len__(self) -> int:
        return len(self.records)

    @property
    def mixed_sizes(self) -> bool:
        """Whether the images come as a list (a source of many sizes) rather than one array."""
        return isinstance(self.images, list)

    @staticmethod
    def concat(batches: Sequence["Batch"]) -> "Batch":
        if not batches:
            raise ValueError("cannot concatenate zero batches")
        records = [r for b in batches for r in b.records]
        if any(b.mixed_sizes for b in batches):
            return Batch(images=[image for b in batches for image in b.images], records=records)
        return Batch(images=np.concatenate([b.images for b in batches]), records=records)


def check_images(images: np.ndarray) -> None:
    """Raise ``ValueError`` unless ``images`` is uint8 ``[N, H, W, 3]``."""
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        shape = getattr(images, "shape", None)
        dtype = getattr(images, "dtype", type(images).__name__)
        raise ValueError(f"images must be uint8 [N, H, W, 3] RGB, got {dtype} {shape}")


@runtime_checkable
class Generator(Protocol):
    """A source of images. Constructor keyword arguments are its config."""

    name: ClassVar[str]
    version: ClassVar[str]

    def generate(self, seeds: Sequence[int]) -> Batch:
        """All images made from ``seeds``; the same seed gives the same pixels."""
        ...


@runtime_checkable
class Detector(Protocol):
    """Scores pixels: higher means more likely fake. It never sees records.

    Optional: ``score_range = (low, high)``, the interval every score lies in (e.g. ``(0.0, 1.0)``
    for a calibrated detector). The runner fails a task whose scores leave the declared range;
    without it any finite score is accepted. (Not a protocol member, so detectors that do not
    declare it still satisfy ``isinstance(obj, Detector)``.)
    """

    name: ClassVar[str]
    version: ClassVar[str]
    requires_fit: ClassVar[bool]
    #: What it reads, for `facebench list`: ("pixels",), or e.g. ("pixels", "eye localiser").
    inputs: ClassVar[tuple[str, ...]]
    device: str
    batch_size: int

    def fit(self, images: np.ndarray, labels: np.ndarray) -> None: ...

    def score(self, images: np.ndarray) -> np.ndarray:
        """One float per image, in [0, 1] where the detector is calibrated."""
        ...


@runtime_checkable
class Artifact(Protocol):
    """A named transform that turns real images into fakes carrying one known artifact.

    Random draws come from ``rng_for(record.seed, ...)`` per image, so an image's pixels
    never depend on which other images share its batch.
    """

    name: ClassVar[str]
    #: True when the artifact acts on part of the image and writes a mask.
    local: ClassVar[bool]
    #: What the artifact needs besides pixels, e.g. ("landmarks",).
    needs: ClassVar[tuple[str, ...]]

    def apply(self, batch: Batch, strength: float) -> Batch:
        """The batch with the artifact applied and recorded on every record."""
        ...
