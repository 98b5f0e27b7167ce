"""Frequency artifacts: what a generator's upsampling and smoothing leave in the spectrum."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from .base import ArtifactError, PixelArtifact, convolve_separable, to_float, to_uint8
from ...harness.contracts.seeding import rng_for


class UpsamplingArtifact(PixelArtifact):
    """The fingerprint of a generator's upsampling layers (Durall et al. 2020; Frank et al. 2020).

    Downsample by ``factor`` (area), upsample back with ``kind`` ("transposed": zero insertion and
    an uneven 3-tap kernel, which leaves a checkerboard; "nearest"; "bilinear"), and blend
    ``(1 - strength) * x + strength * up``.
    """

    name = "upsampling"
    summary = "GAN upsampling fingerprint: spectral peaks at k/factor (nearest, bilinear, transposed)"
    KINDS = ("transposed", "nearest", "bilinear")
    # An uneven transposed-convolution kernel: the two output phases get different gains,
    # which puts energy at multiples of 1/factor cycles per pixel.
    TRANSPOSED_KERNEL = np.array([0.35, 1.0, 0.55], np.float32)

    def __init__(self, kind: str = "transposed", factor: int = 2):
        if kind not in self.KINDS:
            raise ArtifactError(f"upsampling kind must be one of {', '.join(self.KINDS)}, got {kind!r}")
        if factor not in (2, 4) or (kind == "transposed" and factor != 2):
            raise ArtifactError(f"upsampling factor must be 2 or 4 (2 for 'transposed'), got {factor}")
        self.kind = kind
        self.factor = factor

    def params(self) -> dict[str, Any]:
        return {"kind": self.kind, "factor": self.factor}

    def upsample(self, image: np.ndarray) -> np.ndarray:
        """Down then up by ``factor``; the result has the input's shape."""
        s = self.factor
        height, width = image.shape[:2]
        padded = np.pad(image, ((0, -height % s), (0, -width % s), (0, 0)), mode="edge")
        h, w = padded.shape[0] // s, padded.shape[1] // s
        small = padded.reshape(h, s, w, s, 3).mean(axis=(1, 3))
        if self.kind == "nearest":
            up = small.repeat(s, axis=0).repeat(s, axis=1)
        elif self.kind == "bilinear":
            up = np.asarray(
                np.stack(
                    [np.asarray(Image.fromarray(small[..., c]).resize((w * s, h * s), Image.BILINEAR)) for c in range(3)],
                    axis=-1,
                )
            )
        else:
            up = np.zeros_like(padded)
            up[::s, ::s] = small  # zero insertion
            kernel = self.TRANSPOSED_KERNEL * (s / self.TRANSPOSED_KERNEL.sum())  # keeps the mean brightness
            up = convolve_separable(up, kernel)
        return up[:height, :width]

    def apply_one(self, image, record, strength, rng):
        x = to_float(image)
        return to_uint8((1.0 - strength) * x + strength * self.upsample(x)), record


def radial_frequency(height: int, width: int) -> np.ndarray:
    """Radial frequency (cycles per pixel) of each bin of ``numpy.fft.rfft2`` on a ``height x width`` grid."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    return np.sqrt(fy**2 + fx**2)


class FalloffArtifact(PixelArtifact):
    """High-frequency falloff (Dzanic et al. 2020): a radial gain on each channel's spectrum.

    ``G(f) = 1 + s * clip((f - f0) / (0.5 - f0), 0, 1) ** p``, f the radial frequency in cycles
    per pixel; frequencies below ``f0`` keep their power. ``s = direction * strength * gain``:
    a subclass sets ``direction`` (-1 over-smooths, +1 adds excess high frequency). The image is
    mirrored to twice its size before the FFT, so the wrap-around seam adds no false edges.
    """

    direction: int = 0
    default_gain: float = 1.0

    def __init__(self, f0: float = 0.25, power: float = 2.0, gain: float | None = None):
        gain = self.default_gain if gain is None else gain
        if not 0.0 <= f0 < 0.5:
            raise ArtifactError(f"{self.name} f0 must be in [0, 0.5) cycles per pixel, got {f0}")
        if power <= 0:
            raise ArtifactError(f"{self.name} power must be > 0, got {power}")
        if gain <= 0 or (self.direction < 0 and gain > 1):
            limit = "in (0, 1] (more would invert the high end)" if self.direction < 0 else "> 0"
            raise ArtifactError(f"{self.name} gain must be {limit}, got {gain}")
        self.f0 = float(f0)
        self.power = float(power)
        self.gain = float(gain)

    def params(self) -> dict[str, Any]:
        return {"f0": self.f0, "power": self.power, "gain": self.gain}

    def radial_gain(self, f: np.ndarray, strength: float) -> np.ndarray:
        ramp = np.clip((f - self.f0) / (0.5 - self.f0), 0.0, 1.0) ** self.power
        return 1.0 + self.direction * strength * self.gain * ramp

    def apply_one(self, image, record, strength, rng):
        height, width = image.shape[:2]
        x = to_float(image)
        mirrored = np.concatenate([x, x[::-1]], axis=0)
        mirrored = np.concatenate([mirrored, mirrored[:, ::-1]], axis=1)  # even extension: periodic, no seam
        spectrum = np.fft.rfft2(mirrored, axes=(0, 1))
        gain = self.radial_gain(radial_frequency(2 * height, 2 * width), strength)
        filtered = np.fft.irfft2(spectrum * gain[..., None], s=(2 * height, 2 * width), axes=(0, 1))
        return to_uint8(filtered[:height, :width]), record


class HFSmoothArtifact(FalloffArtifact):
    """Over-smoothing (diffusion models): the high end of the spectrum loses power."""

    name = "hf_smooth"
    summary = "high-frequency falloff: spectrum damped above f0 (diffusion over-smoothing)"
    direction = -1
    default_gain = 1.0


class HFExcessArtifact(FalloffArtifact):
    """Excess high frequency (some GANs): the high end of the spectrum gains power."""

    name = "hf_excess"
    summary = "high-frequency excess: spectrum boosted above f0 (GAN sharpening)"
    direction = +1
    default_gain = 2.0


class PeriodicArtifact(PixelArtifact):
    """A periodic residual pattern (the diffusion fingerprint of Corvi et al. 2023).

    One zero-mean ``period x period`` pattern with a flat spectrum (equal power at every
    harmonic ``(ky, kx) / period``), drawn once from a fixed seed, so every image of the
    "generator" carries the same fingerprint. It is tiled from the top-left pixel and added to
    all channels, scaled by ``strength * amplitude * local_std``: the standard deviation of
    luminance in a ``window x window`` box, at least ``floor`` grey levels, so textured areas
    hide a stronger pattern and flat areas still carry a little. Periods that are multiples of
    8 are refused: JPEG's 8x8 grid leaves its own peaks at k/8.
    """

    name = "periodic"
    summary = "periodic residual pattern of period P scaled by local std (diffusion fingerprint)"
    PATTERN_SEED = 20230601

    def __init__(self, period: int = 4, amplitude: float = 0.5, window: int = 7, floor: float = 2.0):
        if isinstance(period, bool) or not isinstance(period, (int, np.integer)) or not 2 <= period <= 64:
            raise ArtifactError(f"periodic period must be an integer in 2..64, got {period!r}")
        if period % 8 == 0:
            raise ArtifactError(f"periodic period {period} is a multiple of 8, which collides with JPEG's 8x8 grid")
        if amplitude <= 0:
            raise ArtifactError(f"periodic amplitude must be > 0, got {amplitude}")
        if window < 3 or window % 2 == 0:
            raise ArtifactError(f"periodic window must be an odd integer >= 3, got {window}")
        if floor < 0:
            raise ArtifactError(f"periodic floor must be >= 0, got {floor}")
        self.period = int(period)
        self.amplitude = float(amplitude)
        self.window = int(window)
        self.floor = float(floor)

    def params(self) -> dict[str, Any]:
        return {"period": self.period, "amplitude": self.amplitude, "window": self.window, "floor": self.floor}

    def pattern(self) -> np.ndarray:
        """The fingerprint: float ``[period, period]``, zero mean, unit standard deviation."""
        rng = rng_for(self.PATTERN_SEED, f"artifact:periodic:pattern:{self.period}")
        spectrum = np.fft.fft2(rng.standard_normal((self.period, self.period)))
        magnitude = np.abs(spectrum)
        # keep the random phases, flatten the magnitudes (Hermitian symmetry is kept, so it stays real)
        flat = np.where(magnitude > 1e-12, spectrum / np.maximum(magnitude, 1e-12), 0.0)
        flat[0, 0] = 0.0
        pattern = np.fft.ifft2(flat).real
        return pattern / pattern.std()

    def local_std(self, x: np.ndarray) -> np.ndarray:
        """Standard deviation of luminance in a ``window`` box around each pixel, float ``[H, W]``."""
        luma = x @ np.array([0.299, 0.587, 0.114], np.float32)
        box = np.full(self.window, 1.0 / self.window, np.float32)
        mean = convolve_separable(luma[..., None], box)[..., 0]
        mean_sq = convolve_separable((luma**2)[..., None], box)[..., 0]
        return np.sqrt(np.maximum(mean_sq - mean**2, 0.0))

    def apply_one(self, image, record, strength, rng):
        height, width = image.shape[:2]
        x = to_float(image)
        tiles = (-(-height // self.period), -(-width // self.period))
        tiled = np.tile(self.pattern(), tiles)[:height, :width]
        scale = strength * self.amplitude * np.maximum(self.local_std(x), self.floor)
        return to_uint8(x + (scale * tiled)[..., None]), record
