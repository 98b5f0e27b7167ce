"""Fake specs: which fakes to make per real image, and making them from pixels.

Grammar: fakes are separated by ``,``; one fake's artifacts are joined by ``+``; each is
``NAME[KEY=VALUE;...]:STRENGTH`` with the options and the strength optional::

    upsampling[kind=nearest;factor=4]:0.5,eyes_fixed+blob

The controls ``none`` (a byte copy of the real) and ``null`` (the real of another seed) stand
alone; see :mod:`~facebench.generators.artifacts.controls`.
"""

from __future__ import annotations

import difflib
import inspect
import re
from dataclasses import dataclass
from typing import Any

from .base import ArtifactError
from .catalog import ARTIFACTS
from .controls import CONTROLS, NONE, copy_fakes, refuse_null
from ...harness.contracts.types import FAKE, Batch

_ITEM = re.compile(r"^(?P<name>[A-Za-z0-9_]+)(?:\[(?P<options>[^\]]*)\])?(?::(?P<strength>.*))?$")


@dataclass(frozen=True)
class FakeSpec:
    """One kind of fake: artifacts applied in order, each with a strength and its options."""

    artifacts: tuple[tuple[str, float], ...]
    #: Constructor options per entry of ``artifacts`` (same order), as sorted (key, value) pairs.
    options: tuple[tuple[tuple[str, Any], ...], ...] = ()
    #: A control (``"none"`` or ``"null"``) instead of artifacts; ``artifacts`` is then empty.
    control: str = ""

    def __post_init__(self) -> None:
        if not self.options:
            object.__setattr__(self, "options", tuple(() for _ in self.artifacts))

    @property
    def slug(self) -> str:
        """A file-name-safe name of the fake, used in image ids."""
        if not self.artifacts:
            return self.control or NONE
        parts = []
        for (name, strength), options in zip(self.artifacts, self.options):
            part = name if strength == 1.0 else f"{name}-{strength:g}"
            parts.append(part + "".join(f"~{key}={value}" for key, value in options))
        return "+".join(parts)

    def build(self) -> list[tuple[Any, float]]:
        """The artifact objects of this spec with their strengths."""
        return [(make_artifact(name, dict(options)), strength) for (name, strength), options in zip(self.artifacts, self.options)]


def make_artifact(name: str, options: dict[str, Any]) -> Any:
    """Artifact ``name`` built with ``options``; a wrong option gets a clear error."""
    cls = ARTIFACTS[name]
    try:
        return cls(**options)
    except TypeError:
        accepted = [p for p in inspect.signature(cls).parameters if p != "self"]
        unknown = sorted(set(options) - set(accepted))
        takes = f"it takes {', '.join(accepted)}" if accepted else "it takes no options"
        raise ArtifactError(f"artifact {name!r} has no option {', '.join(map(repr, unknown)) or '?'}; {takes}") from None


def _parse_value(text: str) -> Any:
    text = text.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _parse_options(name: str, text: str | None) -> tuple[tuple[str, Any], ...]:
    if not text:
        return ()
    options = {}
    for pair in text.split(";"):
        key, equals, value = pair.partition("=")
        if not equals or not key.strip() or not value.strip():
            raise ArtifactError(f"artifact {name!r}: option {pair!r} is not KEY=VALUE")
        options[key.strip()] = _parse_value(value)
    make_artifact(name, options)  # fail now, not halfway through a corpus
    return tuple(sorted(options.items()))


def parse_fake_specs(text: str) -> list[FakeSpec]:
    """Parse "a:0.5,b+c[key=value]" into fake specs (``all``: one fake per built-in artifact).

    Unknown names and options get a clear error.
    """
    specs = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            raise ArtifactError(f"empty entry in artifact list {text!r}")
        if part in CONTROLS:
            specs.append(FakeSpec((), control=part))
            continue
        if part == "all":
            specs.extend(FakeSpec(((name, 1.0),)) for name in ARTIFACTS)
            continue
        items, options = [], []
        for item in part.split("+"):
            match = _ITEM.match(item.strip())
            if not match:
                raise ArtifactError(f"cannot read artifact {item.strip()!r}; write NAME, NAME:STRENGTH or NAME[KEY=VALUE;...]:STRENGTH")
            name, strength_text = match["name"], match["strength"]
            if name in CONTROLS:
                raise ArtifactError(f"{name!r} is a control and cannot be joined with '+' ({part!r}); "
                                    f"name it as a fake of its own, e.g. '{name},upsampling'")
            if name not in ARTIFACTS:
                close = difflib.get_close_matches(name, list(ARTIFACTS), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(ARTIFACTS)}, {', '.join(CONTROLS)}, all"
                raise ArtifactError(f"unknown artifact {name!r}{hint}")
            try:
                strength = float(strength_text) if strength_text else 1.0
            except ValueError:
                raise ArtifactError(f"artifact {name!r}: strength {strength_text!r} is not a number") from None
            if not 0.0 < strength <= 1.0:
                raise ArtifactError(f"artifact {name!r}: strength must be in (0, 1], got {strength}")
            items.append((name, strength))
            options.append(_parse_options(name, match["options"]))
        specs.append(FakeSpec(tuple(items), tuple(options)))
    slugs = [s.slug for s in specs]
    if len(set(slugs)) != len(slugs):
        raise ArtifactError(f"artifact list {text!r} names the same fake twice")
    return specs


def make_fakes(reals: Batch, spec: FakeSpec, id_suffix: str | None = None) -> Batch:
    """Fakes made from ``reals`` by ``spec``: same pair and seed, new ids, label fake.

    ``reals`` may already be fakes (e.g. StyleGAN images given an editing pass): the new id
    replaces the ``-real`` or ``-fake`` ending with the spec's name. The ``none`` control copies
    each image (marked ``none``); the ``null`` control needs reals of other seeds, which only the
    generator can make (see :func:`~facebench.generators.artifacts.controls.null_fakes`).
    """
    if spec.control == NONE:
        return copy_fakes(reals)
    refuse_null([spec], "this generator")
    suffix = id_suffix or spec.slug
    records = [r.with_changes(id=f"{re.sub(r'-(real|fake)$', '', r.id)}-{suffix}", label=FAKE) for r in reals.records]
    batch = Batch(reals.images.copy(), records)
    for artifact, strength in spec.build():
        batch = artifact.apply(batch, strength)
    return batch
