"""A small camera model for the real pipeline: sensor pattern noise (PRNU) plus shot and read noise.

Every draw is seeded by the image's seed, so a real image and its fakes share the same
noise field and differ only by their artifacts.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from facebench.harness.seeding import rng_for

N_CAMERAS = 4


@lru_cache(maxsize=32)
def prnu_pattern(camera: int, height: int, width: int, strength: float = 0.01) -> np.ndarray:
    """The multiplicative sensor pattern ``1 + K`` of one simulated camera, [H, W, 1] float32."""
    k = rng_for(camera, "camera:prnu").normal(0.0, strength, size=(height, width, 1))
    return (1.0 + k).astype(np.float32)


def capture(image: np.ndarray, seed: int, *, read_noise: float = 1.5, shot_gain: float = 0.04) -> np.ndarray:
    """Simulate photographing ``image`` (uint8 [H, W, 3]) with the camera chosen by ``seed``."""
    rng = rng_for(seed, "camera:capture")
    camera = int(rng.integers(N_CAMERAS))
    x = image.astype(np.float32) * prnu_pattern(camera, image.shape[0], image.shape[1])
    noise_std = np.sqrt(read_noise**2 + shot_gain * x)
    x = x + noise_std * rng.standard_normal(x.shape, dtype=np.float32)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)
