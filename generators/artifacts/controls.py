"""Controls: fakes that differ from their reals by nothing a detector should find.

Two controls exist, each named in an artifact spec on its own (never joined with ``+``):

- ``none``: the fake is a byte copy of its real. Every detector's score shift over the pairs
  is exactly 0; a fitted detector sees the same image under both labels and scores every
  image alike, so its AUC is 0.5 with no width. A sanity check of the plumbing, nothing more.
- ``null``: the fake is *another real image* of the same generator and camera, from a seed
  outside the corpus, labelled fake. Reals and fakes come from one distribution, so a sound
  pipeline's AUC interval covers 0.5 and has real width; a leaky one (pairs that straddle
  the split, a file-format or size difference, a detector that reads more than pixels)
  shows as an AUC away from 0.5.

The null fake's source is never an image of the corpus, so no image appears twice and
none can leak across the split by pair. Each generator chooses its source seeds: the
parametric generator uses ``seed + NULL_SEED_OFFSET``, the folder generator the second
half of the folder. The source seed is recorded as ``artifacts["null"]["source_seed"]``.
"""

from __future__ import annotations

import re
from typing import Any

from .base import ArtifactError, mark
from ...harness.contracts.constants import CONTROLS, NONE, NULL, is_control_artifact  # noqa: F401 - re-exported
from ...harness.contracts.types import FAKE, Batch

#: The parametric generator's null fake of seed ``s`` is the real of seed ``s + NULL_SEED_OFFSET``.
NULL_SEED_OFFSET = 1_000_000_000
#: What each control records beside its strength.
CONTROL_PARAMS = {NONE: {"control": "copy of its real"}, NULL: {"control": "real of another seed"}}


def null_source_seed(seed: int) -> int:
    """The seed whose real image is the parametric null fake of ``seed`` (outside any corpus's seeds)."""
    seed = int(seed)
    if not 0 <= seed < NULL_SEED_OFFSET:
        raise ArtifactError(
            f"the null control draws its fakes from seed + {NULL_SEED_OFFSET}, so seeds must be in "
            f"0..{NULL_SEED_OFFSET - 1}, got {seed}; use smaller seeds"
        )
    return seed + NULL_SEED_OFFSET


def refuse_null(specs, generator: str) -> None:
    """ArtifactError when ``specs`` ask for the null control from ``generator``, which makes no real images."""
    if any(getattr(spec, "control", "") == NULL for spec in specs):
        raise ArtifactError(
            f"the null control's fakes are real images of other seeds, and {generator} makes no real images "
            "to draw them from; use null with parametric, or with folder and label='real'"
        )


def fake_id(record_id: str, slug: str) -> str:
    """A fake's id: its real's id with the ``-real`` (or ``-fake``) ending replaced by ``slug``."""
    return f"{re.sub(r'-(real|fake)$', '', record_id)}-{slug}"


def copy_fakes(reals: Batch) -> Batch:
    """The ``none`` control: each real copied, labelled fake and marked ``none``."""
    records = [mark(r.with_changes(id=fake_id(r.id, NONE), label=FAKE), NONE, 1.0, CONTROL_PARAMS[NONE])
               for r in reals.records]
    return Batch(reals.images.copy(), records)


def null_fakes(reals: Batch, sources: Batch) -> Batch:
    """The ``null`` control: ``sources[i]`` (the real of another seed) stands as the fake of ``reals[i]``'s pair.

    The fake takes the pair, seed and id stem of its real, and the pixels, landmarks, masks,
    meta and format of its source; ``artifacts["null"]`` records the source's seed.
    """
    if len(reals) != len(sources):
        raise ValueError(f"null_fakes needs one source per real, got {len(sources)} sources for {len(reals)} reals")
    records = []
    for real, source in zip(reals.records, sources.records):
        if source.seed == real.seed:
            raise ArtifactError(f"null fake of {real.id!r}: its source must be another seed, not its own")
        fake = real.with_changes(id=fake_id(real.id, NULL), label=FAKE, landmarks=source.landmarks,
                                 masks=dict(source.masks), meta=dict(source.meta), format=source.format)
        params: dict[str, Any] = {**CONTROL_PARAMS[NULL], "source_seed": int(source.seed)}
        records.append(mark(fake, NULL, 1.0, params))
    return Batch(sources.images.copy(), records)
