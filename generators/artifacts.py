"""The artifact library: named transforms that turn a real image into a fake with one known artifact.

Each artifact records itself (name, strength, parameters) on the image's record and sets
its label to fake. Spec strings name the fakes to make per real image::

    "upsampling:0.5,eyes_fixed"            two fakes per real, one artifact each
    "eyes_fixed+upsampling:0.5"            one fake carrying both
    "none"                                  one fake carrying no artifact (a control)

See ../shared/ARTIFACTS.md for the sources of each artifact.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from facebench.harness.errors import FacebenchError
from facebench.harness.seeding import rng_for
from facebench.harness.types import FAKE, Batch, Record

#: FFHQ alignment puts the eyes here, as fractions of the image side (x, y).
FFHQ_EYE_LEFT = (0.375, 0.475)
FFHQ_EYE_RIGHT = (0.625, 0.475)


class ArtifactError(FacebenchError, ValueError):
    """An artifact spec is malformed, or an artifact lacks what it needs."""


class PixelArtifact:
    """Base for artifacts applied image by image; subclasses implement :meth:`apply_one`."""

    name: ClassVar[str]
    local: ClassVar[bool] = False
    needs: ClassVar[tuple[str, ...]] = ()

    def params(self) -> dict[str, Any]:
        """Parameters recorded beside the strength."""
        return {}

    def apply_one(self, image: np.ndarray, record: Record, strength: float, rng: np.random.Generator) -> tuple[np.ndarray, Record]:
        raise NotImplementedError

    def apply(self, batch: Batch, strength: float) -> Batch:
        if not 0.0 <= strength <= 1.0:
            raise ArtifactError(f"artifact {self.name!r}: strength must be in [0, 1], got {strength}")
        if strength == 0.0:
            return batch  # strength 0 means absent
        images, records = [], []
        for image, record in zip(batch.images, batch.records):
            self._check_needs(record)
            rng = rng_for(record.seed, f"artifact:{self.name}")
            new_image, new_record = self.apply_one(image, record, strength, rng)
            artifacts = {**new_record.artifacts, self.name: {"strength": float(strength), **self.params()}}
            images.append(new_image)
            records.append(new_record.with_changes(label=FAKE, artifacts=artifacts))
        return Batch(np.stack(images), records)

    def _check_needs(self, record: Record) -> None:
        if "landmarks" in self.needs and not record.landmarks:
            raise ArtifactError(
                f"artifact {self.name!r} needs eye landmarks, and image {record.id!r} has none; "
                "use a generator that records landmarks"
            )


def _to_float(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


class UpsamplingArtifact(PixelArtifact):
    """The fingerprint of a generator's upsampling layers (Durall et al. 2020; Frank et al. 2020).

    Downsample by ``factor`` (area), upsample back with ``kind`` ("transposed": zero insertion and
    an uneven 3-tap kernel, which leaves a checkerboard; "nearest"; "bilinear"), and blend
    ``(1 - strength) * x + strength * up``.
    """

    name = "upsampling"
    KINDS = ("transposed", "nearest", "bilinear")
    # An uneven transposed-convolution kernel: the two output phases get different gains,
    # which puts energy at multiples of 1/factor cycles per pixel.
    TRANSPOSED_KERNEL = np.array([0.35, 1.0, 0.55], np.float32)

    def __init__(self, kind: str = "transposed", factor: int = 2):
        if kind not in self.KINDS:
            raise ArtifactError(f"upsampling kind must be one of {', '.join(self.KINDS)}, got {kind!r}")
        if factor not in (2, 4) or (kind == "transposed" and factor != 2):
            raise ArtifactError(f"upsampling factor must be 2 or 4 (2 for 'transposed'), got {factor}")
        self.kind = kind
        self.factor = factor

    def params(self) -> dict[str, Any]:
        return {"kind": self.kind, "factor": self.factor}

    def upsample(self, image: np.ndarray) -> np.ndarray:
        """Down then up by ``factor``; the result has the input's shape."""
        s = self.factor
        height, width = image.shape[:2]
        padded = np.pad(image, ((0, -height % s), (0, -width % s), (0, 0)), mode="edge")
        h, w = padded.shape[0] // s, padded.shape[1] // s
        small = padded.reshape(h, s, w, s, 3).mean(axis=(1, 3))
        if self.kind == "nearest":
            up = small.repeat(s, axis=0).repeat(s, axis=1)
        elif self.kind == "bilinear":
            up = np.asarray(
                np.stack(
                    [np.asarray(Image.fromarray(small[..., c]).resize((w * s, h * s), Image.BILINEAR)) for c in range(3)],
                    axis=-1,
                )
            )
        else:
            up = np.zeros_like(padded)
            up[::s, ::s] = small  # zero insertion
            kernel = self.TRANSPOSED_KERNEL * (s / self.TRANSPOSED_KERNEL.sum())  # keeps the mean brightness
            up = _convolve_separable(up, kernel)
        return up[:height, :width]

    def apply_one(self, image, record, strength, rng):
        x = _to_float(image)
        return _to_uint8((1.0 - strength) * x + strength * self.upsample(x)), record


def _convolve_separable(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """'same' convolution of each channel along rows then columns, edges reflected."""
    radius = len(kernel) // 2
    out = np.pad(image, ((radius, radius), (0, 0), (0, 0)), mode="reflect")
    out = sum(kernel[i] * out[i : i + image.shape[0]] for i in range(len(kernel)))
    out = np.pad(out, ((0, 0), (radius, radius), (0, 0)), mode="reflect")
    return sum(kernel[i] * out[:, i : i + image.shape[1]] for i in range(len(kernel)))


class EyesFixedArtifact(PixelArtifact):
    """Eyes at the fixed FFHQ position (the alignment every StyleGAN face shares; Farid 2023).

    A similarity transform (scale, rotation, shift) moves the recorded eye centres onto the
    canonical FFHQ positions, plus a shift of standard deviation ``(1 - strength) * jitter``
    image sides. Needs eye landmarks; updates all landmarks.
    """

    name = "eyes_fixed"
    needs = ("landmarks",)

    def __init__(self, jitter: float = 0.04):
        if jitter < 0:
            raise ArtifactError(f"eyes_fixed jitter must be >= 0, got {jitter}")
        self.jitter = jitter

    def params(self) -> dict[str, Any]:
        return {"jitter": self.jitter}

    def targets(self, width: int, height: int, strength: float, rng: np.random.Generator) -> tuple[complex, complex]:
        """Where the left and right eye centres go (x + iy, pixels): FFHQ plus a jitter."""
        side = float(min(height, width))
        shift = rng.normal(0.0, (1.0 - strength) * self.jitter * side, size=2)
        return (
            complex(FFHQ_EYE_LEFT[0] * width + shift[0], FFHQ_EYE_LEFT[1] * height + shift[1]),
            complex(FFHQ_EYE_RIGHT[0] * width + shift[0], FFHQ_EYE_RIGHT[1] * height + shift[1]),
        )

    def apply_one(self, image, record, strength, rng):
        target_left, target_right = self.targets(image.shape[1], image.shape[0], strength, rng)
        eye_left = complex(*record.landmarks["eye_left"])
        eye_right = complex(*record.landmarks["eye_right"])
        if abs(eye_right - eye_left) < 1e-6:
            raise ArtifactError(f"image {record.id!r}: eye landmarks coincide")
        scale_rot = (target_right - target_left) / (eye_right - eye_left)  # z' = a z + b
        offset = target_left - scale_rot * eye_left
        warped = warp_similarity(image, scale_rot, offset)
        landmarks = {}
        for key, (x, y) in record.landmarks.items():
            moved = scale_rot * complex(x, y) + offset
            landmarks[key] = (float(moved.real), float(moved.imag))
        masks = {k: warp_similarity(m.astype(np.uint8) * 255, scale_rot, offset, nearest=True) > 127 for k, m in record.masks.items()}
        return warped, record.with_changes(landmarks=landmarks, masks=masks)


def warp_similarity(image: np.ndarray, scale_rot: complex, offset: complex, *, nearest: bool = False) -> np.ndarray:
    """Warp ``image`` by ``z' = scale_rot * z + offset`` (pixel coordinates as complex x + iy).

    Pixels that come from outside the image are filled by mirroring its border, so no
    black corners betray the warp.
    """
    height, width = image.shape[:2]
    pad = max(height, width) // 2
    pad_spec = ((pad, pad), (pad, pad)) + ((0, 0),) * (image.ndim - 2)
    padded = np.pad(image, pad_spec, mode="symmetric")
    # PIL wants the inverse map: source = inv * (dest) + c, in padded coordinates.
    inv = 1.0 / scale_rot
    a, b = inv.real, -inv.imag
    d, e = inv.imag, inv.real
    src0 = -inv * offset  # where destination (0, 0) comes from
    coefficients = (a, b, src0.real + pad, d, e, src0.imag + pad)
    resample = Image.NEAREST if nearest else Image.BILINEAR
    mode = "RGB" if image.ndim == 3 else "L"
    warped = Image.fromarray(padded, mode).transform((width, height), Image.AFFINE, coefficients, resample=resample)
    return np.asarray(warped)


ARTIFACTS: dict[str, type[PixelArtifact]] = {
    UpsamplingArtifact.name: UpsamplingArtifact,
    EyesFixedArtifact.name: EyesFixedArtifact,
}


@dataclass(frozen=True)
class FakeSpec:
    """One kind of fake: artifacts applied in order, each with a strength."""

    artifacts: tuple[tuple[str, float], ...]

    @property
    def slug(self) -> str:
        if not self.artifacts:
            return "none"
        return "+".join(f"{name}{'' if strength == 1.0 else f'-{strength:g}'}" for name, strength in self.artifacts)


def parse_fake_specs(text: str) -> list[FakeSpec]:
    """Parse "a:0.5,b+c" into fake specs; unknown names get a clear error."""
    specs = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            raise ArtifactError(f"empty entry in artifact list {text!r}")
        if part == "none":
            specs.append(FakeSpec(()))
            continue
        items = []
        for item in part.split("+"):
            name, _, strength_text = item.strip().partition(":")
            if name not in ARTIFACTS:
                close = difflib.get_close_matches(name, list(ARTIFACTS), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(ARTIFACTS)}, none"
                raise ArtifactError(f"unknown artifact {name!r}{hint}")
            try:
                strength = float(strength_text) if strength_text else 1.0
            except ValueError:
                raise ArtifactError(f"artifact {name!r}: strength {strength_text!r} is not a number") from None
            if not 0.0 < strength <= 1.0:
                raise ArtifactError(f"artifact {name!r}: strength must be in (0, 1], got {strength}")
            items.append((name, strength))
        specs.append(FakeSpec(tuple(items)))
    slugs = [s.slug for s in specs]
    if len(set(slugs)) != len(slugs):
        raise ArtifactError(f"artifact list {text!r} names the same fake twice")
    return specs


def make_fakes(reals: Batch, spec: FakeSpec, id_suffix: str | None = None) -> Batch:
    """Fakes made from ``reals`` by ``spec``: same pair and seed, new ids, label fake."""
    suffix = id_suffix or spec.slug
    records = [r.with_changes(id=f"{r.id.removesuffix('-real')}-{suffix}", label=FAKE) for r in reals.records]
    batch = Batch(reals.images.copy(), records)
    for name, strength in spec.artifacts:
        batch = ARTIFACTS[name]().apply(batch, strength)
    return batch
