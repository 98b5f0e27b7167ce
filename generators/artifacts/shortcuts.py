"""Format shortcuts: differences between reals and fakes that are not about the face (controls).

A detector that wins on these has learnt the corpus, not the generator; a benchmark makes
them explicit artifacts so it can show that.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from .base import PixelArtifact


class SizeArtifact(PixelArtifact):
    """The size shortcut: the fake was made at a smaller native size and resized to the corpus size.

    Each image is downscaled by ``1 - 0.5 * strength`` (box filter, i.e. area averaging; at least
    one pixel smaller) and upscaled back to its shape with bicubic interpolation, which removes
    the top of its spectrum. The record carries the factor and the intermediate ``[height, width]``.
    """

    name = "size"
    summary = "size shortcut: made smaller (box) and upscaled back to the corpus size (bicubic)"

    def params(self) -> dict[str, Any]:
        return {"down": "box", "up": "bicubic"}

    @staticmethod
    def factor(strength: float) -> float:
        return 1.0 - 0.5 * strength

    @classmethod
    def intermediate_size(cls, height: int, width: int, strength: float) -> tuple[int, int]:
        """The native size (height, width) the fake is made at."""
        factor = cls.factor(strength)
        return (
            int(min(max(1, height - 1), max(1, round(height * factor)))),
            int(min(max(1, width - 1), max(1, round(width * factor)))),
        )

    def apply_one(self, image, record, strength, rng):
        height, width = image.shape[:2]
        small_h, small_w = self.intermediate_size(height, width, strength)
        small = Image.fromarray(image).resize((small_w, small_h), Image.BOX)
        return np.array(small.resize((width, height), Image.BICUBIC)), record

    def apply(self, batch, strength):
        out = super().apply(batch, strength)
        if strength == 0.0:
            return out
        height, width = batch.images.shape[1:3]
        extra = {"factor": self.factor(strength), "intermediate_size": list(self.intermediate_size(height, width, strength))}
        records = [r.with_changes(artifacts={**r.artifacts, self.name: {**r.artifacts[self.name], **extra}}) for r in out.records]
        return type(out)(out.images, records)
