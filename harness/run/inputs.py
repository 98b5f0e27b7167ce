"""Images as a detector sees them: perturbed at their own size, its input policy applied, and
batched by the size the policy gives (a corpus may hold images of many sizes).

Every place that hands images to a detector (fitting, scoring, calibration, the timing phase,
the sweep, every executor) goes through here, so no path resizes silently. Rows keep their
order: scores are put back at their rows' positions.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np

from ..contracts.input_policy import InputPolicy, InputPolicyError, policy_of  # noqa: F401 - policy_of: re-exported
from ..data.corpus import Corpus
from .perturb import IDENTITY, Perturbation


def policy_sizes(sizes: Sequence[tuple[int, int]], policy: InputPolicy, names: Sequence[str] = (),
                 where: str = "") -> list[tuple[int, int]]:
    """The (height, width) each image of ``sizes`` has after ``policy``; InputPolicyError naming
    the first image it cannot take (``names``: the images' ids; ``where``: e.g. the corpus)."""
    out = []
    for index, (height, width) in enumerate(sizes):
        what = f"{where}image {names[index] if names else index}"
        out.append(policy.output_size(int(height), int(width), what))
    return out


def positions_by_key(keys: Sequence[Any]) -> dict[Any, list[int]]:
    """The positions of ``keys`` grouped by key, keys in order of first appearance and positions
    in order within each: how this module groups images by size."""
    groups: dict[Any, list[int]] = {}
    for index, key in enumerate(keys):
        groups.setdefault(key, []).append(index)
    return groups


def size_batches(sizes: Sequence[tuple[int, int]], batch_size: int) -> list[np.ndarray]:
    """Row indices in batches of at most ``batch_size`` that share one size of ``sizes``: the
    sizes in order of first appearance, rows in their order within each. Rows of one size give
    the batches ``range(0, n, batch_size)`` gives."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    out = []
    for indices in positions_by_key([tuple(size) for size in sizes]).values():
        out += [np.array(indices[start : start + batch_size], dtype=np.int64) for start in range(0, len(indices), batch_size)]
    return out


def perturb_list(perturbation: Perturbation, images: list[np.ndarray], keys: Sequence[str]) -> list[np.ndarray]:
    """``perturbation`` applied to every image at its own size (images of one size as one batch;
    every kind works image by image, so grouping never changes a pixel)."""
    if not perturbation.steps or not images:
        return images
    out: list[np.ndarray] = [np.empty(0, np.uint8)] * len(images)
    for indices in positions_by_key([image.shape for image in images]).values():
        done = perturbation.apply(np.stack([images[i] for i in indices]), keys=[keys[i] for i in indices])
        for i, image in zip(indices, done):
            out[i] = image
    return out


def detector_inputs(images: list[np.ndarray], policy: InputPolicy, keys: Sequence[str] = (),
                    perturbation: Perturbation = IDENTITY, names: Sequence[str] = (),
                    where: str = "") -> list[tuple[np.ndarray, np.ndarray]]:
    """``images`` perturbed at their own size (``keys``: one per image, the noise streams), then
    brought to ``policy``: (positions in ``images``, stacked uint8 ``[n, h, w, 3]``) per size
    after the policy, sizes in order of first appearance. ``names`` (the images' ids) and
    ``where`` name an image the policy cannot take."""
    images = perturb_list(perturbation, images, keys)
    seen = [policy.apply(image, f"{where}image {names[i] if names else i}") for i, image in enumerate(images)]
    groups = positions_by_key([image.shape for image in seen])
    return [(np.array(indices, dtype=np.int64), np.stack([seen[i] for i in indices])) for indices in groups.values()]


def split_batches(split: Corpus, batch_size: int, policy: InputPolicy) -> Iterator[np.ndarray]:
    """Row indices of ``split`` in batches of at most ``batch_size`` sharing their size after
    ``policy`` (:func:`size_batches`; a split of one size: consecutive rows, as before)."""
    yield from size_batches(policy_sizes(split.sizes, policy, split.ids, f"{split.root}: "), batch_size)


def policy_images(split: Corpus, rows: Sequence[dict[str, Any]], policy: InputPolicy) -> list[tuple[np.ndarray, np.ndarray]]:
    """The images of ``rows`` decoded and brought to ``policy``, grouped as :func:`detector_inputs` groups them."""
    ids = [row["id"] for row in rows]
    return detector_inputs(split.load_image_list(rows), policy, names=ids, where=f"{split.root}: ")


def largest_group(split: Corpus, rows: Sequence[dict[str, Any]], policy: InputPolicy) -> np.ndarray:
    """The images of ``rows`` after ``policy`` that share the commonest size (the first such size
    on a tie), stacked: what the timing phase and the sweep time (one size, so every round does
    the same work). All of them when they share one size."""
    groups = policy_images(split, rows, policy)
    return max(groups, key=lambda group: len(group[0]))[1]


def timed_size_note(split: Corpus, rows: int, policy: InputPolicy) -> str:
    """For a split whose first ``rows`` images reach the detector at more than one size (after
    ``policy``), the words that say which size the timing phase times (:func:`largest_group`'s,
    from the manifest, nothing decoded), e.g. ``"[timed at 128x96: 40 of 64 images, 3 sizes]"``;
    "" when they share one size."""
    sizes = policy_sizes(split.sizes[:rows], policy, split.ids[:rows], f"{split.root}: ")
    groups = positions_by_key(sizes)
    if len(groups) < 2:
        return ""
    (height, width), positions = max(groups.items(), key=lambda item: len(item[1]))
    return f"[timed at {width}x{height}: {len(positions)} of {len(sizes)} images, {len(groups)} sizes]"


def fit_inputs(corpus: Corpus, policy: InputPolicy) -> tuple[list[np.ndarray], np.ndarray]:
    """The images of ``corpus`` brought to ``policy`` as one stacked array per size (in order of
    first appearance), and the labels in the same order (the arrays' rows, one after another)."""
    labels = corpus.labels
    groups = policy_images(corpus, corpus.rows(), policy)
    return [images for _, images in groups], np.concatenate([labels[indices] for indices, _ in groups])
