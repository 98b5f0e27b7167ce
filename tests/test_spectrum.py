import numpy as np
import pytest

from facebench.detectors.spectrum import SpectrumDetector, radial_spectrum
from facebench.generators.artifacts import UpsamplingArtifact
from facebench.harness.run.metrics import compute_metrics
from facebench.harness.contracts.types import Batch, Record


def photos(n, seed, size=64):
    """Smooth random scenes with sensor-like noise: a stand-in for camera images."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(40, 210, size=(n, size // 8, size // 8, 3))
    smooth = coarse.repeat(8, axis=1).repeat(8, axis=2)
    kernel = np.ones(9) / 9
    for axis in (1, 2):
        smooth = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="same"), axis, smooth)
    return np.clip(smooth + rng.normal(0, 3, smooth.shape), 0, 255).astype(np.uint8)


def upsampled(images):
    records = [Record(id=f"x{i}", label=0, source="t", source_version="1", seed=i, pair=f"p{i}") for i in range(len(images))]
    return UpsamplingArtifact("transposed").apply(Batch(images, records), 1.0).images


def test_radial_spectrum_shape_and_any_size():
    assert radial_spectrum(np.zeros((2, 64, 48, 3), np.uint8) + 7).shape == (2, 64)
    assert radial_spectrum(np.zeros((1, 33, 33, 3), np.uint8), n_bins=8).shape == (1, 8)


def test_separates_upsampled_images_from_camera_images():
    train_real, test_real = photos(40, 1), photos(40, 2)
    train = np.concatenate([train_real, upsampled(photos(40, 3))])
    test = np.concatenate([test_real, upsampled(photos(40, 4))])
    labels = np.r_[np.zeros(40), np.ones(40)]
    detector = SpectrumDetector()
    detector.fit(train, labels)
    scores = detector.score(test)
    assert scores.shape == (80,) and np.all((scores >= 0) & (scores <= 1))
    assert compute_metrics(labels, scores)["auc"] >= 0.95


def test_chance_when_fakes_carry_no_artifact():
    detector = SpectrumDetector()
    detector.fit(np.concatenate([photos(40, 5), photos(40, 6)]), np.r_[np.zeros(40), np.ones(40)])
    scores = detector.score(np.concatenate([photos(60, 7), photos(60, 8)]))
    assert abs(compute_metrics(np.r_[np.zeros(60), np.ones(60)], scores)["auc"] - 0.5) < 0.15


def test_score_before_fit_and_one_class_fit_are_errors():
    detector = SpectrumDetector()
    with pytest.raises(RuntimeError, match="not fitted"):
        detector.score(photos(2, 0))
    with pytest.raises(ValueError, match="both real and fake"):
        detector.fit(photos(4, 0), np.zeros(4))
    with pytest.raises(ValueError, match="uint8"):
        radial_spectrum(np.zeros((1, 8, 8), np.float32))
