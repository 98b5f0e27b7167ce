"""Perturbation specs: the strings a suite, the runner and the reports share (``"jpeg:50+blur:2"``).

A spec names one perturbation; steps joined with ``+`` run left to right; ``"none"`` is the
identity. Each step is ``KIND:VALUE`` where KIND is a perturbation plug-in found through the
registry (the built-ins are in :mod:`facebench.harness.run.perturb`, which says what each does).
A kind declares its ``name``, what its value means (``value``), whether it must be an integer
(``integer``), which values it takes (``accepts``), whether it is random (``random``) and the
pixel work (``apply``).

Noise is the only random built-in. Its stream depends on the image's key (integers and strings
are hashed via ``str(key)`` with SHA-256, so keys 5 and "5" are the same key), on the step's
canonical name, and on how many identical steps came before it in the chain; never on batch
order or composition. So ``"jpeg:50+noise:5"`` adds exactly the noise ``"noise:5"`` would.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import registry
from .errors import FacebenchError


class PerturbationError(FacebenchError, ValueError):
    """A perturbation spec that cannot be parsed or is out of range."""


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


def kind(name: str) -> Any:
    """The perturbation plug-in class called ``name`` (from the registry)."""
    return registry.load("perturbation", name)


def describe_kinds() -> dict[str, str]:
    """Each perturbation kind with its value's meaning and range, e.g. ``{"jpeg": "quality, integer 1..100"}``.

    Built-ins are read without importing them."""
    return {name: str(registry.attributes("perturbation", name).get("value", "a number"))
            for name in registry.names("perturbation")}


def _valid_kinds() -> str:
    return "; ".join(f"{k}:<{words}>" for k, words in describe_kinds().items()) + "; or 'none' alone"


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
        return any(getattr(kind(s.kind), "random", False) for s in self.steps)

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
            out = kind(step.kind).apply(out, step.value, keys, f"perturb/{step.name}#{occurrence}")
        return out if out is not images else images.copy()


def _parse_step(part: str, spec: str) -> Step:
    name, sep, raw = part.partition(":")
    name, raw = name.strip().lower(), raw.strip()
    if name not in registry.names("perturbation"):
        raise PerturbationError(f"unknown perturbation {part!r} in {spec!r}; valid: {_valid_kinds()}")
    cls = kind(name)
    words = cls.value
    if not sep or not raw:
        raise PerturbationError(f"{part!r} in {spec!r} needs a value: {name}:<{words}>")
    if not _NUMBER.fullmatch(raw):
        raise PerturbationError(f"{part!r} in {spec!r}: {raw!r} is not a number; {name} takes {words}")
    value = float(raw)
    if not math.isfinite(value) or not cls.accepts(value) or (cls.integer and not value.is_integer()):
        raise PerturbationError(f"{part!r} in {spec!r} is out of range; {name} takes {words}")
    return Step(name, value)


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
