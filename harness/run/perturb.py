"""Perturbations applied to test images before scoring (the robustness protocol).

A spec string names one perturbation: ``"jpeg:75"``, ``"blur:2"``, ``"resize:0.5"``,
``"noise:5"``, ``"crop:10"``; steps joined with ``+`` run left to right
(``"jpeg:50+blur:2"``); ``"none"`` is the identity. Every step maps a uint8 RGB batch
``[N, H, W, 3]`` to a uint8 RGB batch of the same shape.

Kinds:

- ``jpeg:Q``   Pillow JPEG encode/decode in memory, integer quality 1..100, 4:2:0 chroma subsampling.
- ``blur:S``   Gaussian blur of each channel with ``scipy.ndimage.gaussian_filter``, sigma S > 0 px,
  ``mode="reflect"`` (edge pixel repeated: d c b a | a b c d), kernel truncated at 4 sigma.
- ``resize:F`` "resize then restore": Pillow bicubic resize to ``round(F*W) x round(F*H)`` (Pillow
  widens the kernel when shrinking, so downscaling is antialiased), then bicubic back to ``W x H``.
  0 < F <= 4; F = 1 is the identity.
- ``noise:S``  additive Gaussian noise, std S in 0..255 pixel units (0 < S <= 255), rounded and clipped.
- ``crop:P``   centre crop removing P percent of each side in total (0 < P < 100): the central
  ``(1 - P/100)`` fraction of the width and of the height is kept (sub-pixel exact box), then
  Lanczos-resized back to ``W x H``; content is magnified by ``1 / (1 - P/100)``.

Noise is the only random step. Its stream depends on the image's key (integers and strings
are hashed via ``str(key)`` with SHA-256, so keys 5 and "5" are the same key), on the step's
canonical name, and on how many identical steps came before it in the chain; never on batch
order or composition. So ``"jpeg:50+noise:5"`` adds exactly the noise ``"noise:5"`` would.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from ..contracts.constants import CLEAN
from ..contracts.errors import FacebenchError
from ..contracts.seeding import purpose_key, rng_for


class PerturbationError(FacebenchError, ValueError):
    """A perturbation spec that cannot be parsed or is out of range."""


# kind -> (the range in words, whether the value must be an integer, check)
_KINDS: dict[str, tuple[str, bool, Callable[[float], bool]]] = {
    "jpeg": ("quality, integer 1..100", True, lambda v: 1 <= v <= 100),
    "blur": ("Gaussian sigma in pixels, > 0", False, lambda v: v > 0),
    "resize": ("scale factor, 0 < F <= 4", False, lambda v: 0 < v <= 4),
    "noise": ("Gaussian std in 0..255 units, 0 < S <= 255", False, lambda v: 0 < v <= 255),
    "crop": ("percent removed, 0 < P < 100", False, lambda v: 0 < v < 100),
}
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")

#: The robustness grid a suite gets with ``"default"`` (the chain is SIDBench's).
DEFAULT_GRID: tuple[str, ...] = (
    "jpeg:95", "jpeg:75", "jpeg:50", "jpeg:30",
    "blur:1", "blur:2", "blur:3",
    "resize:0.5", "resize:0.75",
    "noise:2", "noise:5", "noise:10",
    "crop:10", "crop:20",
    "jpeg:50+blur:2",
)  # fmt: skip


def describe_kinds() -> dict[str, str]:
    """Each perturbation kind with its value's meaning and range, e.g. ``{"jpeg": "quality, integer 1..100"}``."""
    return {kind: words for kind, (words, _, _) in _KINDS.items()}


def _valid_kinds() -> str:
    return "; ".join(f"{k}:<{rng}>" for k, (rng, _, _) in _KINDS.items()) + "; or 'none' alone"


def _format_value(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


@dataclass(frozen=True)
class Step:
    """One perturbation step: a kind and its value."""

    kind: str
    value: float

    @property
    def name(self) -> str:
        """Canonical spec of this step, e.g. ``"jpeg:75"`` or ``"resize:0.5"``."""
        return f"{self.kind}:{_format_value(self.value)}"


@dataclass(frozen=True)
class Perturbation:
    """A parsed spec: ``name`` is the canonical string, ``steps`` run left to right."""

    name: str
    steps: tuple[Step, ...]

    @property
    def is_random(self) -> bool:
        """Whether applying it needs per-image keys."""
        return any(s.kind == "noise" for s in self.steps)

    def apply(self, images: np.ndarray, keys: Sequence | np.ndarray | None = None) -> np.ndarray:
        """Perturb a uint8 ``[N, H, W, 3]`` batch; ``keys`` (one per image) seed the noise."""
        images = _check_batch(images)
        if keys is not None and len(keys) != len(images):
            raise ValueError(f"got {len(keys)} keys for {len(images)} images")
        if self.is_random and keys is None:
            raise ValueError(f"perturbation {self.name!r} is random: pass one key per image")
        seen: dict[str, int] = {}
        out = images
        for step in self.steps:
            occurrence = seen.get(step.name, 0)
            seen[step.name] = occurrence + 1
            out = _APPLY[step.kind](out, step.value, keys, f"perturb/{step.name}#{occurrence}")
        return out if out is not images else images.copy()


def _parse_step(part: str, spec: str) -> Step:
    kind, sep, raw = part.partition(":")
    kind, raw = kind.strip().lower(), raw.strip()
    if kind not in _KINDS:
        raise PerturbationError(f"unknown perturbation {part!r} in {spec!r}; valid: {_valid_kinds()}")
    words, integer, ok = _KINDS[kind]
    if not sep or not raw:
        raise PerturbationError(f"{part!r} in {spec!r} needs a value: {kind}:<{words}>")
    if not _NUMBER.fullmatch(raw):
        raise PerturbationError(f"{part!r} in {spec!r}: {raw!r} is not a number; {kind} takes {words}")
    value = float(raw)
    if not math.isfinite(value) or not ok(value) or (integer and not value.is_integer()):
        raise PerturbationError(f"{part!r} in {spec!r} is out of range; {kind} takes {words}")
    return Step(kind, value)


def parse(spec: str | Perturbation) -> Perturbation:
    """Parse a spec string such as ``"jpeg:50+blur:2"`` (a Perturbation passes through)."""
    if isinstance(spec, Perturbation):
        return spec
    if not isinstance(spec, str):
        raise PerturbationError(f"a perturbation spec must be a string, got {type(spec).__name__}")
    if spec.strip().lower() == "none":
        return Perturbation("none", ())
    parts = spec.split("+")
    steps = []
    for i, part in enumerate(parts):
        if not part.strip():
            raise PerturbationError(f"empty step {i + 1} in perturbation {spec!r}; valid: {_valid_kinds()}")
        if part.strip().lower() == "none":
            raise PerturbationError(f"'none' cannot be part of a chain: {spec!r}")
        steps.append(_parse_step(part, spec))
    return Perturbation("+".join(s.name for s in steps), tuple(steps))


#: Clean images: no perturbation (named :data:`~facebench.harness.contracts.constants.CLEAN`).
IDENTITY = parse(CLEAN)


def parse_grid(specs: str | Iterable[str]) -> tuple[Perturbation, ...]:
    """Parse a suite's list of specs; ``"default"`` expands to DEFAULT_GRID; duplicates are errors."""
    if isinstance(specs, str):
        specs = [specs]
    expanded: list[str] = []
    for spec in specs:
        expanded += DEFAULT_GRID if isinstance(spec, str) and spec.strip().lower() == "default" else [spec]
    out: dict[str, Perturbation] = {}
    for spec in expanded:
        p = parse(spec)
        if p.name in out:
            raise PerturbationError(f"perturbation {p.name!r} is listed twice (as given: {spec!r})")
        out[p.name] = p
    return tuple(out.values())


def apply(spec: str | Perturbation, images: np.ndarray, keys: Sequence | np.ndarray | None = None) -> np.ndarray:
    """Apply ``spec`` to a uint8 ``[N, H, W, 3]`` batch; ``keys`` are per-image ids (needed for noise)."""
    return parse(spec).apply(images, keys)


def _check_batch(images: np.ndarray) -> np.ndarray:
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        got = f"{images.dtype} {images.shape}" if isinstance(images, np.ndarray) else type(images).__name__
        raise ValueError(f"perturbations take a uint8 [N, H, W, 3] batch, got {got}")
    return images


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _per_image(images: np.ndarray, fn) -> np.ndarray:
    out = np.empty_like(images)
    for i, img in enumerate(images):
        out[i] = np.asarray(fn(Image.fromarray(img)))
    return out


def _jpeg(images, quality, keys, purpose):
    def roundtrip(im: Image.Image) -> Image.Image:
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=int(quality), subsampling="4:2:0")
        return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")

    return _per_image(images, roundtrip)


def _blur(images, sigma, keys, purpose):
    out = np.empty_like(images)
    for i, img in enumerate(images):  # one image at a time keeps the float copy small
        out[i] = _to_uint8(ndimage.gaussian_filter(img, sigma=(sigma, sigma, 0), mode="reflect", output=np.float32))
    return out


def _resize(images, factor, keys, purpose):
    h, w = images.shape[1:3]
    small = (max(1, round(w * factor)), max(1, round(h * factor)))
    if small == (w, h):
        return images
    return _per_image(images, lambda im: im.resize(small, Image.BICUBIC).resize((w, h), Image.BICUBIC))


def _noise(images, std, keys, purpose):
    out = np.empty_like(images)
    for i, (img, key) in enumerate(zip(images, keys)):
        z = rng_for(purpose_key(str(key)), purpose).standard_normal(img.shape, dtype=np.float32)
        out[i] = _to_uint8(img + np.float32(std) * z)
    return out


def _crop(images, percent, keys, purpose):
    h, w = images.shape[1:3]
    mx, my = w * percent / 200, h * percent / 200
    box = (mx, my, w - mx, h - my)
    return _per_image(images, lambda im: im.resize((w, h), Image.LANCZOS, box=box))


_APPLY = {"jpeg": _jpeg, "blur": _blur, "resize": _resize, "noise": _noise, "crop": _crop}
