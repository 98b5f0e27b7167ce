"""Fake specs: which fakes to make per real image, and making them from pixels."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from facebench.generators.artifacts.base import ArtifactError
from facebench.generators.artifacts.catalog import ARTIFACTS
from facebench.harness.types import FAKE, Batch


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
    """Parse "a:0.5,b+c" into fake specs (``all``: one fake per built-in artifact); unknown names get a clear error."""
    specs = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            raise ArtifactError(f"empty entry in artifact list {text!r}")
        if part == "none":
            specs.append(FakeSpec(()))
            continue
        if part == "all":
            specs.extend(FakeSpec(((name, 1.0),)) for name in ARTIFACTS)
            continue
        items = []
        for item in part.split("+"):
            name, _, strength_text = item.strip().partition(":")
            if name not in ARTIFACTS:
                close = difflib.get_close_matches(name, list(ARTIFACTS), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(ARTIFACTS)}, none, all"
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
