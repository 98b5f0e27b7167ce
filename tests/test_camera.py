"""The real pipeline's camera: PRNU, shot/read noise, Bayer demosaicking, JPEG."""

import numpy as np
import pytest

from facebench.generators.parametric.camera import (
    JPEG_QUALITY_RANGE,
    N_CAMERAS,
    camera_of,
    capture,
    demosaic,
    jpeg_roundtrip,
    mosaic,
    prnu_pattern,
)


def test_demosaic_is_exact_on_flat_and_linear_images():
    flat = np.full((16, 16, 3), (200.0, 100.0, 50.0), np.float32)
    assert np.array_equal(demosaic(mosaic(flat)), flat)
    ramp = np.broadcast_to((np.arange(16, dtype=np.float32) * 7.0)[None, :, None], (16, 16, 3)).copy()
    assert np.allclose(demosaic(mosaic(ramp))[1:-1, 1:-1], ramp[1:-1, 1:-1])


def test_mosaic_keeps_one_colour_per_pixel_in_rggb_order():
    image = np.zeros((4, 4, 3), np.float32)
    image[..., 0], image[..., 1], image[..., 2] = 1.0, 2.0, 3.0
    raw = mosaic(image)
    assert raw[0, 0] == 1.0 and raw[0, 1] == 2.0 and raw[1, 0] == 2.0 and raw[1, 1] == 3.0


def test_demosaic_blurs_an_edge_by_at_most_one_pixel():
    image = np.zeros((16, 16, 3), np.float32)
    image[:, 8:] = 255.0
    out = demosaic(mosaic(image))
    assert np.array_equal(out[:, :7], image[:, :7]) and np.array_equal(out[:, 9:], image[:, 9:])


def test_capture_is_seeded_and_differs_between_seeds():
    image = np.full((64, 64, 3), 128, np.uint8)
    assert np.array_equal(capture(image, 3), capture(image, 3))
    assert not np.array_equal(capture(image, 3), capture(image, 4))


def test_noise_zero_and_lossless_leave_a_flat_image_unchanged():
    image = np.full((32, 32, 3), 90, np.uint8)
    assert np.array_equal(capture(image, 5, noise=0.0, lossless=1.0), image)
    noisy = capture(image, 5, lossless=1.0).astype(float)
    assert 1.0 < noisy.std() < 6.0  # read noise 1.5 plus shot noise at 90: a few levels


def test_jpeg_quality_comes_from_a_realistic_range_and_varies():
    qualities = {camera_of(seed)[1] for seed in range(200)}
    cameras = {camera_of(seed)[0] for seed in range(200)}
    assert min(qualities) >= JPEG_QUALITY_RANGE[0] and max(qualities) <= JPEG_QUALITY_RANGE[1]
    assert len(qualities) > 10 and cameras == set(range(N_CAMERAS))


def test_jpeg_stage_changes_pixels_a_little_and_lossless_skips_it():
    rng = np.random.default_rng(0)
    image = (rng.random((64, 64, 3)) * 255).astype(np.uint8)
    with_jpeg, without = capture(image, 1).astype(float), capture(image, 1, lossless=1.0).astype(float)
    assert 0.5 < np.abs(with_jpeg - without).mean() < 40.0
    quality = camera_of(1)[1]
    assert np.array_equal(capture(image, 1), jpeg_roundtrip(capture(image, 1, lossless=1.0), quality))


@pytest.mark.parametrize("camera", range(N_CAMERAS))
def test_prnu_strength_is_in_the_range_of_real_sensors(camera):
    k = prnu_pattern(camera, 128, 128)
    assert 0.004 < k.std() < 0.021 and abs(k.mean()) < 0.002
