"""Constants that plug-ins and the harness share: one definition each."""

from __future__ import annotations

import numpy as np

#: FFHQ alignment puts the eyes here, as fractions of the image side (x, y).
FFHQ_EYE_LEFT = (0.375, 0.475)
FFHQ_EYE_RIGHT = (0.625, 0.475)

#: ITU-R BT.601 luma weights of R, G, B.
LUMA = np.array([0.299, 0.587, 0.114], np.float32)

#: The control "artifacts": a fake that is a copy of its real, and a fake that is the real of another seed.
NONE = "none"
NULL = "null"
#: The control names; a corpus whose fakes carry only these is a control corpus.
CONTROLS = (NONE, NULL)

#: The perturbation name of clean (unperturbed) test images, as rows and reports carry it.
CLEAN = "none"


def is_control_artifact(name: str) -> bool:
    """Whether ``name`` is a control (``none`` or ``null``) rather than an artifact."""
    return name in CONTROLS


#: Fewer test images than this in either class: a row is too small to judge. Its bootstrap
#: interval says little (with one pair it has zero width whatever the detector), so reports
#: mark it, show no interval and rank it after every row that is large enough.
MIN_IMAGES_PER_CLASS = 30


def too_small(n_real: int, n_fake: int) -> bool:
    """Whether a row of ``n_real`` reals and ``n_fake`` fakes has fewer than
    :data:`MIN_IMAGES_PER_CLASS` images in either class."""
    return min(int(n_real), int(n_fake)) < MIN_IMAGES_PER_CLASS
