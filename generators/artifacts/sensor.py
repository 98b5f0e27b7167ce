"""Camera artifacts: what a generator lacks that a camera leaves (sensor noise, JPEG).

Both are made by the parametric generator by photographing the fake differently from its
real counterpart (see ``generators/parametric/camera.py``); ``missing_camera_noise`` also
works on any pixels by denoising.
"""

from __future__ import annotations

from typing import Any

from .base import CameraArtifact, PixelArtifact, to_float, to_uint8


class MissingCameraNoiseArtifact(PixelArtifact):
    """No camera noise: the fake lacks (or has weaker) PRNU and shot/read noise.

    Made by a generator with a camera: the fake's noise is scaled by ``1 - strength``.
    On other pixels: the residual ``x - median3x3(x)`` is removed by ``strength``, a
    denoiser's approximation of the same thing.
    """

    name = "missing_camera_noise"
    summary = "no sensor noise (PRNU, shot and read noise) in the fake"

    def camera_settings(self, strength: float) -> dict[str, Any]:
        return {"noise": 1.0 - strength}

    def apply_one(self, image, record, strength, rng):
        from scipy.ndimage import median_filter  # here, not at import: `facebench list` stays fast

        x = to_float(image)
        denoised = median_filter(x, size=(3, 3, 1), mode="reflect")
        return to_uint8(x - strength * (x - denoised)), record


class FormatArtifact(CameraArtifact):
    """The format shortcut: the real went through the camera's JPEG, the fake did not (PNG).

    A control, not a cue: a detector that separates these pairs may be reading compression,
    not faces. Strength moves the fake's JPEG quality from its real's towards 100; at 1 the
    fake skips JPEG entirely.
    """

    name = "format"
    summary = "shortcut: the real is JPEG-compressed, the fake is not (PNG)"

    def params(self) -> dict[str, Any]:
        return {"real": "jpg", "fake": "png"}

    def camera_settings(self, strength: float) -> dict[str, Any]:
        return {"lossless": strength}


def has_camera_route(artifact: Any) -> bool:
    """True when a generator with a camera should make ``artifact`` through :meth:`camera_settings`."""
    return hasattr(artifact, "camera_settings")
