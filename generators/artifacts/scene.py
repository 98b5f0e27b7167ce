"""Scene artifacts: faults a generator paints into the face itself (eyes, earrings).

Each edits the scene parameters (a ``FaceParams`` of the parametric renderer); the
generator renders the edited scene and records as the artifact's mask every pixel that
differs from the render without the edit. Sources: ../shared/ARTIFACTS.md.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import replace
from typing import Any

import numpy as np

from .base import ArtifactError, SceneArtifact

#: Harmonics k of an irregular pupil's boundary (Guo et al. 2022).
PUPIL_HARMONICS = (2, 3, 4, 5, 6)


class IrregularPupilsArtifact(SceneArtifact):
    """Pupils that are not round or elliptical (Guo et al. ICASSP 2022, "Eyes tell all").

    The boundary becomes ``r(t) = r0 (1 + sum_k c_k cos(k t + phi_k))``, k = 2..6, with
    ``c_k = strength * U(0.3, 1) * max_amplitude`` drawn independently for each eye.
    """

    name = "irregular_pupils"
    summary = "pupils with a wobbly, non-elliptical boundary, different in each eye"

    def __init__(self, max_amplitude: float = 0.1):
        if not 0.0 < max_amplitude <= 0.2:
            raise ArtifactError(f"irregular_pupils max_amplitude must be in (0, 0.2], got {max_amplitude}")
        self.max_amplitude = float(max_amplitude)

    def params(self) -> dict[str, Any]:
        return {"max_amplitude": self.max_amplitude}

    def edit(self, face, strength, rng):
        def harmonics():
            amplitudes = strength * self.max_amplitude * rng.uniform(0.3, 1.0, len(PUPIL_HARMONICS))
            phases = rng.uniform(0.0, 2 * math.pi, len(PUPIL_HARMONICS))
            return tuple((float(c), float(p)) for c, p in zip(amplitudes, phases))

        return replace(face, pupil_wobble_left=harmonics(), pupil_wobble_right=harmonics())


class HighlightMismatchArtifact(SceneArtifact):
    """Corneal highlights that disagree between the eyes (Hu, Li, Lyu ICASSP 2021).

    One light puts the highlight at the same iris-relative spot in both eyes; the artifact
    moves one eye's highlight by ``strength * shift`` iris radii in a random direction.
    """

    name = "highlight_mismatch"
    summary = "corneal highlights at different spots in the two eyes"

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


class IrisColorMismatchArtifact(SceneArtifact):
    """Irises of different colours (Matern et al. WACVW 2019): one iris' hue rotated.

    The hue turns by ``strength * max_turn`` of the colour circle; saturation is raised to
    at least ``min_saturation`` so that a greyish iris shows the change too.
    """

    name = "iris_mismatch"
    summary = "one iris' hue rotated: eyes of two colours"

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
