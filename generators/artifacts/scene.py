"""Scene artifacts: faults a generator paints into the face itself (eyes, earrings).

Each edits the scene parameters (a ``FaceParams`` of the parametric renderer); the
generator renders the edited scene and records as the artifact's mask every pixel that
differs from the render without the edit. The eye artifacts also paint their fault on
photographs whose records carry located irises (:mod:`.eyes`). Sources: ../shared/ARTIFACTS.md.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import replace
from typing import Any

import numpy as np

from . import eyes as photo_eyes
from .base import ArtifactError, SceneArtifact, check_strength, mark
from ...harness.contracts.seeding import rng_for
from ...harness.contracts.types import Batch

#: Harmonics k of an irregular pupil's boundary (Guo et al. 2022).
PUPIL_HARMONICS = (2, 3, 4, 5, 6)


class EyeSceneArtifact(SceneArtifact):
    """A scene artifact of the eyes that also works on existing pixels where irises are located.

    ``parametric`` edits its scene (:meth:`edit`); on other images (photographs analysed with
    ``pip install 'facebench[faces]'``, whose records carry ``iris_*`` and eye-contour landmarks)
    :meth:`apply` paints the fault on the real eyes (:meth:`paint`), records as the mask every
    pixel it changed and leaves every other pixel byte-identical.
    """

    needs = ("scene", "landmarks")

    def paint(self, image: np.ndarray, eyes: dict, strength: float, rng: np.random.Generator) -> np.ndarray:
        """``image`` with the artifact painted on ``eyes`` (side -> :class:`~.eyes.Eye`)."""
        raise NotImplementedError

    def apply(self, batch: Batch, strength: float) -> Batch:
        check_strength(self.name, strength)
        if strength == 0.0:
            return batch
        images, records = [], []
        for image, record in zip(batch.images, batch.records):
            located = photo_eyes.located_eyes(self.name, image, record)
            painted = self.paint(image, located, strength, rng_for(record.seed, f"artifact:{self.name}"))
            mask = np.any(painted != image, axis=-1)
            images.append(painted)
            records.append(mark(record.with_changes(masks={**record.masks, self.name: mask}),
                                self.name, strength, self.params()))
        return Batch(np.stack(images), records)


class IrregularPupilsArtifact(EyeSceneArtifact):
    """Pupils that are not round or elliptical (Guo et al. ICASSP 2022, "Eyes tell all").

    The boundary becomes ``r(t) = r0 (1 + sum_k c_k cos(k t + phi_k))``, k = 2..6, with
    ``c_k = strength * U(0.3, 1) * max_amplitude`` drawn independently for each eye. On a
    photograph each located pupil gets that boundary: the iris is stretched radially to meet it
    and the new pupil darkened (:func:`~.eyes.wobble_pupil`).
    """

    name = "irregular_pupils"
    summary = "pupils with a wobbly, non-elliptical boundary, different in each eye (photographs: faces extra)"

    def __init__(self, max_amplitude: float = 0.1):
        if not 0.0 < max_amplitude <= 0.2:
            raise ArtifactError(f"irregular_pupils max_amplitude must be in (0, 0.2], got {max_amplitude}")
        self.max_amplitude = float(max_amplitude)

    def params(self) -> dict[str, Any]:
        return {"max_amplitude": self.max_amplitude}

    def edit(self, face, strength, rng):
        return replace(face, pupil_wobble_left=self.harmonics(strength, rng), pupil_wobble_right=self.harmonics(strength, rng))

    def harmonics(self, strength: float, rng: np.random.Generator) -> tuple[tuple[float, float], ...]:
        """One eye's ``(c_k, phi_k)``, k = 2..6."""
        amplitudes = strength * self.max_amplitude * rng.uniform(0.3, 1.0, len(PUPIL_HARMONICS))
        phases = rng.uniform(0.0, 2 * math.pi, len(PUPIL_HARMONICS))
        return tuple((float(c), float(p)) for c, p in zip(amplitudes, phases))

    def paint(self, image, eyes, strength, rng):
        out = image
        for side in ("left", "right"):
            out = photo_eyes.wobble_pupil(out, eyes[side], self.harmonics(strength, rng))
        return out


class HighlightMismatchArtifact(EyeSceneArtifact):
    """Corneal highlights that disagree between the eyes (Hu, Li, Lyu ICASSP 2021).

    One light puts the highlight at the same iris-relative spot in both eyes; the artifact
    moves one eye's highlight by ``strength * shift`` iris radii in a random direction. On a
    photograph the moved eye's highlight is erased and painted again at the other eye's spot
    plus that shift (turned until it lands on the visible iris); an eye without a highlight
    to copy gets one painted at the upper left.
    """

    name = "highlight_mismatch"
    summary = "corneal highlights at different spots in the two eyes (photographs: faces extra)"

    def __init__(self, shift: float = 0.9):
        if not 0.0 < shift <= 2.0:
            raise ArtifactError(f"highlight_mismatch shift must be in (0, 2] iris radii, got {shift}")
        self.shift = float(shift)

    def params(self) -> dict[str, Any]:
        return {"shift": self.shift}

    def edit(self, face, strength, rng):
        angle = rng.uniform(0.0, 2 * math.pi)
        offset = (strength * self.shift * math.cos(angle), strength * self.shift * math.sin(angle))
        field = "highlight_shift_left" if rng.uniform() < 0.5 else "highlight_shift_right"
        old = getattr(face, field)
        return replace(face, **{field: (old[0] + offset[0], old[1] + offset[1])})

    def paint(self, image, eyes, strength, rng):
        angle = rng.uniform(0.0, 2 * math.pi)
        moved = "left" if rng.uniform() < 0.5 else "right"
        kept = "right" if moved == "left" else "left"
        spots = {side: photo_eyes.highlight_spot(image, eyes[side]) for side in (kept, moved)}
        reference = spots[kept] or spots[moved] or photo_eyes.DEFAULT_HIGHLIGHT
        out = image
        if spots[kept] is None:
            out = photo_eyes.paint_highlight(out, eyes[kept], *reference)
        out = photo_eyes.erase_highlight(out, eyes[moved])
        target = photo_eyes.highlight_target(eyes[moved], reference[0], strength * self.shift, angle)
        return photo_eyes.paint_highlight(out, eyes[moved], target, reference[1])


class IrisColorMismatchArtifact(EyeSceneArtifact):
    """Irises of different colours (Matern et al. WACVW 2019): one iris' hue rotated.

    The hue turns by ``strength * max_turn`` of the colour circle; saturation is raised to
    at least ``min_saturation`` so that a greyish iris shows the change too. On a photograph
    every pixel of the located iris is turned so (its disc inside the eye contour, pupil and
    highlight left out).
    """

    name = "iris_mismatch"
    summary = "one iris' hue rotated: eyes of two colours (photographs: faces extra)"

    def __init__(self, max_turn: float = 0.5, min_saturation: float = 0.35):
        if not 0.0 < max_turn <= 0.5 or not 0.0 <= min_saturation <= 1.0:
            raise ArtifactError(
                f"iris_mismatch needs max_turn in (0, 0.5] and min_saturation in [0, 1], got {max_turn}, {min_saturation}"
            )
        self.max_turn = float(max_turn)
        self.min_saturation = float(min_saturation)

    def params(self) -> dict[str, Any]:
        return {"max_turn": self.max_turn, "min_saturation": self.min_saturation}

    def edit(self, face, strength, rng):
        field = "iris_left" if rng.uniform() < 0.5 else "iris_right"
        hue, saturation, value = colorsys.rgb_to_hsv(*getattr(face, field))
        saturation = max(saturation, strength * self.min_saturation)
        turned = colorsys.hsv_to_rgb((hue + strength * self.max_turn) % 1.0, saturation, value)
        return replace(face, **{field: tuple(float(np.clip(c, 0.0, 1.0)) for c in turned)})

    def paint(self, image, eyes, strength, rng):
        side = "left" if rng.uniform() < 0.5 else "right"
        return photo_eyes.recolour_iris(image, eyes[side], strength * self.max_turn, strength * self.min_saturation)


class EarringSingleArtifact(SceneArtifact):
    """A single or mismatched earring (the LinkedIn fleet's tell).

    A face with a pair keeps one earring and shrinks the other to ``1 - strength`` of its
    size (gone at 1). A face without earrings gets one, on a random side, ``strength`` of
    full size.
    """

    name = "earring_single"
    summary = "one earring only, or two of different sizes"

    #: Index of the earring kind added to a face that wears none (see face.EARRINGS).
    ADDED_KIND = 2

    def edit(self, face, strength, rng):
        side = "left" if rng.uniform() < 0.5 else "right"
        other = "right" if side == "left" else "left"
        if face.earring_left or face.earring_right:
            size = getattr(face, f"earring_size_{side}") * (1.0 - strength)
            return replace(face, **{f"earring_size_{side}": size})
        return replace(
            face,
            **{f"earring_{side}": self.ADDED_KIND, f"earring_size_{side}": strength,
               f"earring_{other}": 0},
        )
