"""facebench.testing: every built-in plug-in that needs no downloaded weights passes check_detector /
check_generator, and deliberately broken plug-ins fail with the right check named."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from facebench.detectors.checkpoint import CheckpointDetector, random_resnet
from facebench.detectors.cnn import CNNDetector
from facebench.detectors.command import CommandDetector
from facebench.detectors.dct import DCTDetector
from facebench.detectors.eyes import CornealDetector, EyePositionDetector, IrisColourDetector, PupilDetector
from facebench.detectors.hf_falloff import HFFalloffDetector
from facebench.detectors.residual_period import ResidualPeriodDetector
from facebench.detectors.spectrum import SpectrumDetector
from facebench.detectors.srm import SRMDetector
from facebench.detectors.surroundings import BackgroundBlurDetector, EarringDetector
from facebench.generators.folder import FolderGenerator
from facebench.generators.parametric import ParametricGenerator
from facebench.harness.contracts.detector import FeatureDetector, integer
from facebench.harness.contracts.types import Batch, Record, check_images
from facebench.testing import DETECTOR_CHECKS, GENERATOR_CHECKS, check_detector, check_generator, synthetic_sample

ROOT = Path(__file__).resolve().parents[1]
BRIGHTNESS = ROOT / "docs" / "examples" / "brightness_detector.py"


@pytest.fixture(scope="module")
def faces():
    """Parametric faces at 256 px, real and with mismatched highlights: the eye detectors need eyes to fit."""
    batch = ParametricGenerator(resolution=256, artifacts="highlight_mismatch").generate(range(8))
    return batch.images, np.array([r.label for r in batch.records])


@pytest.mark.parametrize(
    ("cls", "params"),
    [
        (SpectrumDetector, {}),
        (DCTDetector, {}),
        (SRMDetector, {}),
        (HFFalloffDetector, {}),
        (ResidualPeriodDetector, {}),
        (BackgroundBlurDetector, {}),
        (EarringDetector, {}),
        (EyePositionDetector, {}),
        (CNNDetector, {"epochs": 1, "width": 4, "input_size": 32}),
        (CommandDetector, {"command": [sys.executable, str(BRIGHTNESS)], "timeout": 30}),
    ],
    ids=lambda value: value.name if isinstance(value, type) else "",
)
def test_built_in_detectors_pass(cls, params):
    check_detector(cls, **params)


@pytest.mark.parametrize("cls", [PupilDetector, CornealDetector, IrisColourDetector], ids=lambda cls: cls.name)
def test_eye_detectors_pass_on_faces(cls, faces):
    check_detector(cls, sample=faces)


def test_checkpoint_detector_passes_with_local_weights(tmp_path):
    path = tmp_path / "w.pth"
    torch.save(random_resnet("resnet18", 1).state_dict(), path)
    check_detector(CheckpointDetector, weights=str(path), arch="resnet18", atol=1e-5)


@pytest.mark.parametrize("artifacts", ["upsampling,eyes_fixed", "null", "none"])
def test_parametric_generator_passes(artifacts):
    check_generator(ParametricGenerator, resolution=64, artifacts=artifacts)


@pytest.mark.parametrize("artifacts", ["", "upsampling", "null"])
def test_folder_generator_passes(tmp_path, artifacts):
    images, _ = synthetic_sample(per_class=4, side=32)
    for i, image in enumerate(images):
        Image.fromarray(image).save(tmp_path / f"photo{i:02d}.png")
    check_generator(FolderGenerator, path=str(tmp_path), resolution=32, artifacts=artifacts)


def test_a_generator_of_mixed_sizes_passes(tmp_path):
    for i, side in enumerate([24, 32, 40, 24, 32, 40]):
        Image.fromarray(np.full((side, side + 8, 3), 20 * i, np.uint8)).save(tmp_path / f"photo{i:02d}.png")
    check_generator(FolderGenerator, path=str(tmp_path), resolution="native")


# -- deliberately broken detectors --------------------------------------------------------------


class Roughness(FeatureDetector):
    """A sound detector to break: mean step between neighbouring pixels (per channel) into a logistic regression."""

    name = "roughness"
    version = "0.1.0"
    requires_fit = True
    inputs = ("pixels",)
    checks = {"power": integer(1, 3)}

    def __init__(self, power: int = 1, batch_size: int = 8):
        super().__init__(power=power, batch_size=batch_size)

    def batch_features(self, images):
        return np.abs(np.diff(images.astype(float), axis=2)).mean(axis=(1, 2)) ** self.power

    def make_model(self):
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression()


class NoVersion(Roughness):
    version = ""


class ZeroBatch(Roughness):
    def __init__(self):
        super().__init__()
        self.batch_size = 0


class ScoresUnfitted(Roughness):
    def score(self, images):
        return np.full(len(images), 0.5) if self.model is None else super().score(images)


class OneScoreShort(Roughness):
    def score(self, images):
        return super().score(images)[:-1]


class OutOfRange(Roughness):
    def score(self, images):
        return super().score(images) + 1.0


class NotANumber(Roughness):
    def score(self, images):
        scores = super().score(images)
        scores[:1] = np.nan
        return scores


class Noisy(Roughness):
    def score(self, images):
        return np.clip(super().score(images) + np.random.default_rng().normal(0, 0.1, len(images)), 0, 1)


class BatchRelative(Roughness):
    """Each score relative to the others in the call."""

    def score(self, images):
        scores = super().score(images)
        return np.clip(scores - scores.mean() + 0.5, 0, 1)


class ChunkRelative(Roughness):
    """Features that grow with the chunk: the scores depend on batch_size."""

    def batch_features(self, images):
        return super().batch_features(images) + 0.5 * len(images)


class EmptyCrash(Roughness):
    def score(self, images):
        if len(images) == 0:
            raise IndexError("nothing to score")
        return super().score(images)


class TakesAnything(Roughness):
    """Never checks its input."""

    def score(self, images):
        if self.model is None:
            raise RuntimeError("not fitted")
        return np.full(len(images), 0.5)


class FitsOneClass(Roughness):
    def fit(self, images, labels):
        check_images(images)
        self.model = "fitted"

    def score(self, images):
        check_images(images)
        if self.model is None:
            raise RuntimeError("not fitted")
        return np.full(len(images), 0.5)


def test_the_sound_detector_passes():
    check_detector(Roughness)


@pytest.mark.parametrize(
    ("cls", "check"),
    [
        (NoVersion, "attributes"),
        (ZeroBatch, "instance"),
        (ScoresUnfitted, "fit_coherent"),
        (FitsOneClass, "fit_coherent"),
        (OneScoreShort, "scores"),
        (OutOfRange, "scores"),
        (NotANumber, "scores"),
        (Noisy, "deterministic"),
        (BatchRelative, "batch_independent"),
        (ChunkRelative, "batch_independent"),
        (EmptyCrash, "empty_input"),
        (TakesAnything, "bad_input"),
    ],
    ids=lambda value: value.__name__ if isinstance(value, type) else value,
)
def test_a_broken_detector_fails_the_right_check(cls, check):
    with pytest.raises(AssertionError, match=rf"check_detector\({cls.__name__}\): check '{check}' failed"):
        check_detector(cls)


def test_every_detector_check_is_exercised_by_a_broken_detector():
    broken = {"attributes", "instance", "fit_coherent", "scores", "deterministic", "batch_independent", "empty_input",
              "bad_input"}
    assert {name for name, _ in DETECTOR_CHECKS} == broken


# -- deliberately broken generators -------------------------------------------------------------


class Squares:
    """A sound generator to break: one real and one fake square image per seed."""

    name = "squares"
    version = "0.1.0"

    def __init__(self, side: int = 16):
        self.side = side

    def pixels(self, seed: int, seeds) -> np.ndarray:
        return np.random.default_rng(seed).integers(0, 256, (self.side, self.side, 3), dtype=np.uint8)

    def record(self, seed: int, label: int, seeds) -> Record:
        kind = "fake" if label else "real"
        return Record(id=f"squares-{seed:08d}-{kind}", label=label, source=self.name, source_version=self.version,
                      seed=seed, pair=f"squares-{seed:08d}")

    def generate(self, seeds) -> Batch:
        seeds = [int(s) for s in seeds]
        images = [self.pixels(s, seeds) if label == 0 else 255 - self.pixels(s, seeds) for s in seeds for label in (0, 1)]
        records = [self.record(s, label, seeds) for s in seeds for label in (0, 1)]
        return Batch(np.stack(images), records)


class NotABatch(Squares):
    def generate(self, seeds):
        return super().generate(seeds).images


class RepeatedIds(Squares):
    def record(self, seed, label, seeds):
        return super().record(seed, label, seeds).with_changes(id=f"squares-{seed:08d}")


class PairAcrossSeeds(Squares):
    def record(self, seed, label, seeds):
        return super().record(seed, label, seeds).with_changes(pair="squares-all")


class Unseeded(Squares):
    def pixels(self, seed, seeds):
        return np.random.default_rng().integers(0, 256, (self.side, self.side, 3), dtype=np.uint8)


class BatchSeeded(Squares):
    """Draws every image from the batch's first seed: pixels depend on the company."""

    def pixels(self, seed, seeds):
        rng = np.random.default_rng(seeds[0])
        return rng.integers(0, 256, (len(seeds), self.side, self.side, 3), dtype=np.uint8)[seeds.index(seed)]


def test_the_sound_generator_passes():
    check_generator(Squares)


@pytest.mark.parametrize(
    ("cls", "check"),
    [
        (NotABatch, "batch"),
        (RepeatedIds, "records"),
        (PairAcrossSeeds, "pair_groups"),
        (Unseeded, "same_seed_same_pixels"),
        (BatchSeeded, "batch_independent"),
    ],
    ids=lambda value: value.__name__ if isinstance(value, type) else value,
)
def test_a_broken_generator_fails_the_right_check(cls, check):
    with pytest.raises(AssertionError, match=rf"check_generator\({cls.__name__}\): check '{check}' failed"):
        check_generator(cls)


def test_a_generator_without_a_name_fails_attributes():
    class Nameless(Squares):
        name = None

    with pytest.raises(AssertionError, match="check 'attributes' failed: class attribute 'name'"):
        check_generator(Nameless)
    assert [name for name, _ in GENERATOR_CHECKS][0] == "attributes"
