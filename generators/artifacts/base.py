"""What every artifact shares: the error type, the base classes and small pixel helpers.

Three kinds of artifact exist, by what they need to be made:

- :class:`PixelArtifact` works on pixels (plus landmarks or region masks where it says so),
  so it applies to any :class:`~facebench.harness.contracts.types.Batch`, a folder of photos included;
- :class:`SceneArtifact` changes the rendered scene (a pupil, an earring), so only a generator
  that renders from parameters (``parametric``) can make it; its mask is the set of pixels the
  change touched;
- :class:`CameraArtifact` changes how the real camera pipeline treats the fake (noise, JPEG).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ...harness.contracts.errors import EXIT_USAGE, FacebenchError
from ...harness.contracts.seeding import rng_for
from ...harness.contracts.types import FAKE, Batch, Record

#: Region masks a generator may record on every image (real and fake).
REGION_NAMES = ("face", "hair", "background")


class ArtifactError(FacebenchError, ValueError):
    """An artifact spec is malformed, or an artifact lacks what it needs: the input is wrong (exit code 2)."""

    exit_code = EXIT_USAGE


class PixelArtifact:
    """Base for artifacts applied image by image; subclasses implement :meth:`apply_one`.

    ``needs`` may hold ``"landmarks"`` (eye centres, mouth corners) and ``"regions"``
    (the face/hair/background masks in ``record.masks``). A local artifact (``local = True``)
    returns a record whose ``masks[name]`` marks the pixels it changed.
    """

    name: ClassVar[str]
    local: ClassVar[bool] = False
    needs: ClassVar[tuple[str, ...]] = ()
    #: One line for ``facebench list``.
    summary: ClassVar[str] = ""

    def params(self) -> dict[str, Any]:
        """Parameters recorded beside the strength."""
        return {}

    def apply_one(self, image: np.ndarray, record: Record, strength: float, rng: np.random.Generator) -> tuple[np.ndarray, Record]:
        raise NotImplementedError

    def apply(self, batch: Batch, strength: float) -> Batch:
        check_strength(self.name, strength)
        if strength == 0.0:
            return batch  # strength 0 means absent
        images, records = [], []
        for image, record in zip(batch.images, batch.records):
            self.check_needs(record)
            rng = rng_for(record.seed, f"artifact:{self.name}")
            new_image, new_record = self.apply_one(image, record, strength, rng)
            images.append(new_image)
            records.append(mark(new_record, self.name, strength, self.params()))
        return Batch(np.stack(images), records)

    def check_needs(self, record: Record) -> None:
        if "landmarks" in self.needs and not record.landmarks:
            raise ArtifactError(
                f"artifact {self.name!r} needs eye landmarks, and image {record.id!r} has none; "
                "use a generator that records landmarks (parametric, or folder, stylegan2 or stylegan3 with "
                "pip install 'facebench[faces]')"
            )
        if "regions" in self.needs:
            missing = [r for r in REGION_NAMES if r not in record.masks]
            if missing:
                raise ArtifactError(
                    f"artifact {self.name!r} needs the face/hair/background masks, and image {record.id!r} "
                    f"lacks {', '.join(missing)}; use a generator that records them (parametric, or folder, "
                    "stylegan2 or stylegan3 with pip install 'facebench[faces]')"
                )


class SceneArtifact:
    """Base for artifacts made by changing the scene's parameters and rendering again.

    Subclasses implement :meth:`edit`, which returns the changed parameters. The generator
    renders both and records as the mask every pixel that differs.
    """

    name: ClassVar[str]
    local: ClassVar[bool] = True
    needs: ClassVar[tuple[str, ...]] = ("scene",)
    summary: ClassVar[str] = ""

    def params(self) -> dict[str, Any]:
        return {}

    def edit(self, face: Any, strength: float, rng: np.random.Generator) -> Any:
        """The scene parameters (a ``FaceParams``) with the artifact put in."""
        raise NotImplementedError

    def apply(self, batch: Batch, strength: float) -> Batch:
        raise ArtifactError(
            f"artifact {self.name!r} changes the rendered scene, so it can only be made by a generator "
            "that renders from parameters (parametric), not applied to existing pixels"
        )


class CameraArtifact:
    """Base for artifacts that change how the camera pipeline treats the fake.

    The parametric generator asks :meth:`camera_settings` how to photograph the fake;
    :meth:`apply` is the pixel-only fallback where a subclass has one.
    """

    name: ClassVar[str]
    local: ClassVar[bool] = False
    needs: ClassVar[tuple[str, ...]] = ("camera",)
    summary: ClassVar[str] = ""

    def params(self) -> dict[str, Any]:
        return {}

    def camera_settings(self, strength: float) -> dict[str, Any]:
        """Keyword arguments for ``camera.capture`` that put the artifact in."""
        raise NotImplementedError

    def apply(self, batch: Batch, strength: float) -> Batch:
        raise ArtifactError(
            f"artifact {self.name!r} changes the camera pipeline, so only a generator with a camera "
            "stage (parametric) can make it"
        )


def check_strength(name: str, strength: float) -> None:
    if not 0.0 <= strength <= 1.0:
        raise ArtifactError(f"artifact {name!r}: strength must be in [0, 1], got {strength}")


def mark(record: Record, name: str, strength: float, params: dict[str, Any]) -> Record:
    """``record`` labelled fake, with the artifact and its parameters recorded."""
    artifacts = {**record.artifacts, name: {"strength": float(strength), **params}}
    return record.with_changes(label=FAKE, artifacts=artifacts)


def to_float(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32)


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def convolve_separable(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """'same' convolution of each channel along rows then columns, edges reflected."""
    radius = len(kernel) // 2
    out = np.pad(image, ((radius, radius), (0, 0), (0, 0)), mode="reflect")
    out = sum(kernel[i] * out[i : i + image.shape[0]] for i in range(len(kernel)))
    out = np.pad(out, ((0, 0), (radius, radius), (0, 0)), mode="reflect")
    return sum(kernel[i] * out[:, i : i + image.shape[1]] for i in range(len(kernel)))
