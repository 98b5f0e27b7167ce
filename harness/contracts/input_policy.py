"""What size a detector sees: its input policy, declared on the detector and applied by the runner.

A corpus may hold images of many sizes. Each detector declares, as ``input_policy``, what it
needs; the runner applies the policy to every image (after any perturbation) and hands the
detector batches of images that share the size the policy gives. Policies, as spec strings::

    "any"                  any size, as stored (the default)
    "even"                 any size; an odd height or width loses its last row or column
    "centre_crop:224"      the centred 224x224 square; smaller images are refused
    "crop_or_pad:224"      the centred 224x224 square, smaller images padded with black first
                           (torchvision's CenterCrop)
    "resize:256:bicubic"   resized to 256x256 with the named filter (nearest, box, bilinear,
                           hamming, bicubic, lanczos; aspect ratio not kept)

The class attribute is a spec string (so ``facebench list`` reads it without importing the
detector); an instance may set its own (e.g. from a ``crop`` parameter or its weights).
Nothing else resizes images: a suite that wants every image resized names the ``resize``
perturbation, so its effect is measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from .errors import FacebenchError

KINDS = ("any", "even", "centre_crop", "crop_or_pad", "resize")
#: Pillow filters a ``resize`` policy may name.
FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "box": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
    "hamming": Image.Resampling.HAMMING,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


class InputPolicyError(FacebenchError, ValueError):
    """A policy spec does not parse, or an image cannot be brought to the size a policy asks for."""


@dataclass(frozen=True)
class InputPolicy:
    """One detector's input policy: ``kind`` (one of :data:`KINDS`), the side ``size`` of the
    square it makes (crop, pad and resize kinds) and the resize ``filter``."""

    kind: str = "any"
    size: int | None = None
    filter: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputPolicyError(f"input policy {self.kind!r}: expected one of {', '.join(KINDS)}")
        sized = self.kind in ("centre_crop", "crop_or_pad", "resize")
        if sized and (isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1):
            raise InputPolicyError(f"input policy {self.kind}: needs a side in pixels (an integer >= 1), got {self.size!r}")
        if not sized and self.size is not None:
            raise InputPolicyError(f"input policy {self.kind}: takes no size, got {self.size!r}")
        if self.kind == "resize" and self.filter not in FILTERS:
            raise InputPolicyError(f"input policy resize: filter must be one of {', '.join(FILTERS)}, got {self.filter!r}")
        if self.kind != "resize" and self.filter is not None:
            raise InputPolicyError(f"input policy {self.kind}: takes no filter, got {self.filter!r}")

    @classmethod
    def parse(cls, spec: "str | InputPolicy | None") -> "InputPolicy":
        """The policy of a spec string such as ``"crop_or_pad:224"`` (None: ``"any"``)."""
        if spec is None:
            return cls()
        if isinstance(spec, InputPolicy):
            return spec
        if not isinstance(spec, str):
            raise InputPolicyError(f"input policy must be a spec string such as 'centre_crop:224', got {spec!r}")
        kind, *rest = spec.strip().split(":")
        if kind == "resize" and len(rest) == 1:
            rest.append("bilinear")
        expected = {"any": 0, "even": 0, "centre_crop": 1, "crop_or_pad": 1, "resize": 2}.get(kind)
        if expected is None or len(rest) != expected or (rest and not rest[0].isdigit()):
            raise InputPolicyError(f"input policy {spec!r} does not parse; expected any, even, centre_crop:N, "
                                   "crop_or_pad:N or resize:N:FILTER")
        return cls(kind, int(rest[0]) if rest else None, rest[1] if len(rest) > 1 else None)

    def __str__(self) -> str:
        return ":".join(str(part) for part in (self.kind, self.size, self.filter) if part is not None)

    def describe(self) -> str:
        """The policy in words, as ``facebench list`` and ``info`` show it."""
        if self.kind == "any":
            return "any size (native, as stored)"
        if self.kind == "even":
            return "any size, cut to even (an odd height or width loses its last row or column)"
        if self.kind == "centre_crop":
            return f"centre crop {self.size}x{self.size} (smaller images refused)"
        if self.kind == "crop_or_pad":
            return f"centre crop {self.size}x{self.size}, smaller images padded with black first"
        return f"resize to {self.size}x{self.size} ({self.filter})"

    def short(self) -> str:
        """A few words, for ``facebench list``'s column."""
        return {"any": "any size", "even": "any size, even", "centre_crop": f"centre crop {self.size}",
                "crop_or_pad": f"crop or pad {self.size}", "resize": f"resize {self.size} {self.filter}"}[self.kind]

    @property
    def fixed(self) -> bool:
        """Whether every image comes out the same size."""
        return self.size is not None

    def output_size(self, height: int, width: int, what: str = "an image") -> tuple[int, int]:
        """(height, width) an image of ``height x width`` has after the policy; InputPolicyError
        naming ``what`` when the policy cannot take it."""
        if self.kind == "any":
            return height, width
        if self.kind == "even":
            if height < 2 or width < 2:
                raise InputPolicyError(f"{what} is {width}x{height}: too small for an even size")
            return height - height % 2, width - width % 2
        assert self.size is not None
        if self.kind == "centre_crop" and (height < self.size or width < self.size):
            raise InputPolicyError(
                f"{what} is {width}x{height}, smaller than the {self.size}x{self.size} centre crop the detector takes; "
                f"drop the smaller images, or give the detector a smaller crop"
            )
        return self.size, self.size

    def apply(self, image: np.ndarray, what: str = "an image") -> np.ndarray:
        """One uint8 ``[H, W, 3]`` image as the detector sees it (the same array when nothing changes)."""
        height, width = image.shape[:2]
        out_h, out_w = self.output_size(height, width, what)
        if self.kind == "resize":
            if (height, width) == (out_h, out_w):
                return image
            return np.asarray(Image.fromarray(image).resize((out_w, out_h), FILTERS[str(self.filter)]), dtype=np.uint8)
        if self.kind == "crop_or_pad" and (height < out_h or width < out_w):
            pad_h, pad_w = max(out_h - height, 0), max(out_w - width, 0)
            # as torchvision's CenterCrop: the extra pixel of an odd difference goes right/bottom
            image = np.pad(image, ((pad_h // 2, (pad_h + 1) // 2), (pad_w // 2, (pad_w + 1) // 2), (0, 0)))
            height, width = image.shape[:2]
        if (height, width) == (out_h, out_w):
            return image
        if self.kind == "even":
            return image[:out_h, :out_w]
        top, left = int(round((height - out_h) / 2.0)), int(round((width - out_w) / 2.0))
        return image[top : top + out_h, left : left + out_w]


ANY = InputPolicy()


def policy_of(detector: Any) -> InputPolicy:
    """The input policy a detector (class or instance) declares (``input_policy``); ``"any"`` without one."""
    return InputPolicy.parse(getattr(detector, "input_policy", None))
