"""``check_generator``: the generator contract, checked on a class and its parameters."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from .runner import run_checks
from ..harness.contracts.types import FAKE, REAL, Batch, Record

#: Seeds the checks generate by default.
SEEDS = (0, 1, 2)


@dataclass
class GeneratorCase:
    """What the checks work on: the class, its parameters and the seeds."""

    cls: type
    params: dict[str, Any]
    seeds: tuple[int, ...]
    first: Batch | None = None

    def generate(self, seeds: Sequence[int] | None = None) -> Batch:
        """A new generator's batch of ``seeds``; of the case's seeds, made once and kept."""
        if seeds is not None:
            return self.cls(**self.params).generate(list(seeds))
        if self.first is None:
            self.first = self.cls(**self.params).generate(list(self.seeds))
        return self.first


def _attributes(case: GeneratorCase) -> None:
    for key in ("name", "version"):
        value = getattr(case.cls, key, None)
        assert isinstance(value, str) and value, f"class attribute {key!r} must be a non-empty string, got {value!r}"


def _batch(case: GeneratorCase) -> None:
    batch = case.generate()
    assert isinstance(batch, Batch), f"generate() must return a facebench Batch, got {type(batch).__name__}"
    if isinstance(batch.images, list):  # a batch of mixed sizes: one [H, W, 3] array per image
        images = batch.images
        assert all(isinstance(i, np.ndarray) and i.dtype == np.uint8 and i.ndim == 3 and i.shape[-1] == 3
                   for i in images), "images of mixed sizes must each be uint8 [H, W, 3] RGB"
    else:
        images = batch.images
        assert images.dtype == np.uint8 and images.ndim == 4 and images.shape[-1] == 3, \
            f"images must be uint8 [N, H, W, 3] RGB, got {images.dtype} {images.shape}"
    assert len(batch.records) == len(images) >= len(case.seeds), \
        f"{len(case.seeds)} seeds gave {len(images)} images and {len(batch.records)} records; expected one or more per seed"
    assert all(isinstance(r, Record) for r in batch.records), "every record must be a facebench Record"


def _records(case: GeneratorCase) -> None:
    records = case.generate().records
    ids = [r.id for r in records]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    assert not repeated, f"record ids must be unique, repeated: {repeated[:3]}"
    labels = {r.label for r in records}
    assert labels <= {REAL, FAKE}, f"labels must be 0 (real) or 1 (fake), got {sorted(labels)}"
    seeds = {r.seed for r in records}
    assert seeds <= set(case.seeds), f"records carry seeds {sorted(seeds - set(case.seeds))} that were not asked for"
    assert seeds == set(case.seeds), f"no record for seeds {sorted(set(case.seeds) - seeds)}"
    for record in records:
        assert isinstance(record.source, str) and record.source, f"record {record.id!r}: source must be a non-empty string"
        assert isinstance(record.source_version, str), f"record {record.id!r}: source_version must be a string"


def _pair_groups(case: GeneratorCase) -> None:
    seeds_of_pair: dict[str, set[int]] = defaultdict(set)
    for record in case.generate().records:
        assert isinstance(record.pair, str) and record.pair, f"record {record.id!r}: pair must be a non-empty string"
        seeds_of_pair[record.pair].add(record.seed)
    spanning = {pair: sorted(seeds) for pair, seeds in seeds_of_pair.items() if len(seeds) > 1}
    assert not spanning, f"a pair must hold the images of one seed (the split is by pair), but {spanning}"


def _same_seed_same_pixels(case: GeneratorCase) -> None:
    first, second = case.generate(), case.generate(case.seeds)
    assert [r.id for r in first.records] == [r.id for r in second.records], "the same seeds gave other record ids"
    differ = [r.id for r, a, b in zip(first.records, first.images, second.images) if not np.array_equal(a, b)]
    assert not differ, f"the same seed gave other pixels: {differ[:3]}"


def _batch_independent(case: GeneratorCase) -> None:
    whole = case.generate()
    alone = case.generate(case.seeds[-1:])
    pixels = {r.id: image for r, image in zip(whole.records, whole.images)}
    for record, image in zip(alone.records, alone.images):
        assert record.id in pixels, f"seed {record.seed} alone gave record {record.id!r}, which it does not give among others"
        assert np.array_equal(pixels[record.id], image), \
            f"record {record.id!r} has other pixels when its seed is generated alone: a seed's pixels must not depend on the batch"


#: (name, check) in the order they run; each raises AssertionError with what is wrong.
GENERATOR_CHECKS: tuple[tuple[str, Callable[[GeneratorCase], None]], ...] = (
    ("attributes", _attributes),
    ("batch", _batch),
    ("records", _records),
    ("pair_groups", _pair_groups),
    ("same_seed_same_pixels", _same_seed_same_pixels),
    ("batch_independent", _batch_independent),
)


def check_generator(cls: type, *, seeds: Sequence[int] = SEEDS, **params: Any) -> None:
    """Check that ``cls(**params)`` keeps the generator contract; AssertionError naming the first failed check.

    Checks, in order: class attributes (``name``, ``version``); ``generate(seeds)`` returns a
    :class:`~facebench.harness.contracts.types.Batch` of uint8 RGB images with one
    :class:`~facebench.harness.contracts.types.Record` each; records (unique ids, labels 0/1,
    exactly the seeds asked for, a source); pair groups (a pair holds one seed's images); the
    same seeds give the same pixels; a seed gives the same pixels alone as among others.
    """
    case = GeneratorCase(cls, dict(params), tuple(int(s) for s in seeds))
    run_checks(f"check_generator({cls.__name__})", GENERATOR_CHECKS, case)
