"""Known answers and contracts of the eye detectors: eye_position, pupil, corneal, iris_colour.

Corpora come from the parametric generator at 256 px, 60 seeds: the first 30 seeds (pairs)
train, the other 30 test. The detectors find the eyes with the localiser's ``auto`` backend
(whatever is installed; the built-in search alone passes these tests too).

Measured AUC (train seeds 0..29, test 30..59; auto = dlib + cascades + builtin / builtin only):

    detector       eyes_fixed  irregular_pupils  highlight_mismatch  iris_mismatch  upsampling  earring_single  none
    eye_position   1.00/0.93   0.48/0.49         0.48/0.53           0.50/0.50      0.49/0.44   0.50/0.50       0.50
    pupil          0.74/0.74   0.51/0.52         0.69/0.70           0.54/0.57      0.57/0.51   0.53/0.50       0.50
    corneal        0.83/0.72   0.60/0.51         0.99/0.97           0.50/0.47      0.73/0.71   0.46/0.50       0.50
    iris_colour    0.84/0.63   0.49/0.48         0.60/0.57           0.97/0.99      0.56/0.62   0.54/0.50       0.50

What physics says, and the tests therefore do not assert:

- ``pupil`` on ``irregular_pupils`` at 256 px is near chance. The pupils there have radii of
  1.5..3 px; the artifact moves their outline by a fraction of a pixel, and the camera
  (Bayer demosaicking, shot/read noise, JPEG 75..95) hides that: without the camera the
  same features reach ~0.88 at 256 px, with it ~0.55. At 512 px (pupil radii 3..6 px) they
  reach ~0.95 through the camera, which ``test_pupil_catches_irregular_pupils_at_512px``
  asserts.
- The fitted detectors (pupil, corneal, iris_colour) pick up ``eyes_fixed``: FFHQ framing
  makes every fake's face the same, larger size, so how sharply the eyes are resolved
  differs from the reals' spread of sizes, and a logistic regression learns that.
- ``corneal`` sees ``upsampling`` (~0.7): down- and upsampling by 2 snaps a highlight of
  1..1.5 px radius to the coarse grid, so the two highlights' iris-relative positions agree
  less. ``pupil`` sees ``highlight_mismatch`` (~0.7): a highlight moved off the pupil
  leaves its outline whole.
So the off-target check uses ``earring_single`` (a small edit far from the eyes).
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from facebench.detectors.eyes import (
    CornealDetector,
    EyePositionDetector,
    IrisColourDetector,
    PupilDetector,
    boundary_iou,
    srgb_to_lab,
)
from facebench.generators.parametric import ParametricGenerator
from facebench.detectors import localise
from facebench.harness.contracts import registry
from facebench.harness.contracts.types import Detector

from conftest import check_fit_contract, check_score_contract, few_of, fitted_auc

DETECTORS = {
    "eye_position": EyePositionDetector,
    "pupil": PupilDetector,
    "corneal": CornealDetector,
    "iris_colour": IrisColourDetector,
}
#: Each detector on the artifact its class declares it targets (pupil needs 512 px: tested apart).
TARGETS = [(name, artifact) for name, cls in DETECTORS.items() if name != "pupil" for artifact in cls.targets]
ARTIFACTS = "eyes_fixed,highlight_mismatch,iris_mismatch,earring_single,none"
RESOLUTION = 256
SEEDS = 60
TRAIN_SEEDS = 30


class Corpora:
    """One parametric batch with every fake kind, split by kind and by seed (pair)."""

    def __init__(self, resolution: int, artifacts: str, seeds: int):
        batch = ParametricGenerator(resolution=resolution, artifacts=artifacts).generate(range(seeds))
        self.images = batch.images
        self.kind = np.array([r.id.split("-", 2)[2] for r in batch.records])
        self.labels = np.array([r.label for r in batch.records])
        self.train = np.array([r.seed for r in batch.records]) < seeds // 2

    def __call__(self, artifact: str):
        keep = (self.kind == "real") | (self.kind == artifact)
        train, test = keep & self.train, keep & ~self.train
        return self.images[train], self.labels[train], self.images[test], self.labels[test]


@pytest.fixture(scope="module")
def corpora():
    return Corpora(RESOLUTION, ARTIFACTS, SEEDS)


@pytest.fixture(scope="module")
def small(corpora):
    return few_of(corpora("highlight_mismatch"))


def auc_of(name: str, split) -> float:
    return fitted_auc(DETECTORS[name](), split)


@pytest.mark.parametrize(("name", "artifact"), TARGETS)
def test_catches_its_target_artifact(name, artifact, corpora):
    assert auc_of(name, corpora(artifact)) >= 0.9


def test_pupil_catches_irregular_pupils_at_512px():
    # At 256 px the camera hides the pupils' outline (see the module docstring); at 512 px it does not.
    split = Corpora(512, "irregular_pupils", 40)("irregular_pupils")
    assert auc_of("pupil", split) >= 0.85


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_chance_on_the_control(name, corpora):
    # "none" fakes are pixel copies of their reals, so the scores tie pair by pair: AUC is exactly 0.5.
    assert abs(auc_of(name, corpora("none")) - 0.5) <= 0.15


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_near_chance_off_target(name, corpora):
    assert auc_of(name, corpora("earring_single")) <= 0.65


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_registry_builds_a_detector(name):
    detector = registry.create("detector", name)
    assert isinstance(detector, DETECTORS[name]) and isinstance(detector, Detector)
    assert detector.name == name and detector.inputs == ("pixels", "eye localiser")
    assert detector.requires_fit == (name != "eye_position")
    assert detector.device == "cpu" and detector.batch_size >= 1 and detector.localiser == "auto"


@pytest.mark.parametrize(
    ("cls", "params", "match"),
    [
        (EyePositionDetector, {"scale": 0}, "scale must"),
        (EyePositionDetector, {"scale": float("nan")}, "scale must"),
        (EyePositionDetector, {"localiser": "mediapipe"}, "localiser must"),
        (PupilDetector, {"c": 0}, "c must"),
        (PupilDetector, {"batch_size": 0}, "batch_size"),
        (CornealDetector, {"c": -1.0}, "c must"),
        (CornealDetector, {"localiser": None}, "localiser must"),
        (IrisColourDetector, {"batch_size": 2.5}, "batch_size"),
    ],
)
def test_constructor_rejects_bad_params(cls, params, match):
    with pytest.raises(ValueError, match=match):
        cls(**params)


def test_a_localiser_that_is_not_installed_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(localise, "_installed", lambda name: name == "builtin")
    monkeypatch.setattr(localise, "_instances", {})
    with pytest.raises(ValueError, match="pip install dlib-bin face_recognition_models"):
        CornealDetector(localiser="dlib")


@pytest.mark.parametrize("name", ["pupil", "corneal", "iris_colour"])
def test_score_before_fit_and_bad_fits_are_errors(name, small):
    detector = DETECTORS[name]()
    check_fit_contract(detector, small)
    flat = np.full((4, 64, 64, 3), 120, np.uint8)
    with pytest.raises(ValueError, match="too few images"):
        detector.fit(flat, np.array([0, 1, 0, 1]))


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_scores_are_probabilities_and_deterministic(name, small):
    check_score_contract(DETECTORS[name], small, atol=1e-9)


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_images_without_eyes_score_neutral_and_count_as_misses(name, small):
    train_x, train_y, test_x = small
    detector = DETECTORS[name]()
    detector.fit(train_x, train_y)
    assert detector.misses == 0
    flat = np.full((3, 128, 128, 3), 90, np.uint8)
    scores = detector.score(flat)
    np.testing.assert_array_equal(scores, 0.5)
    assert detector.misses == 3 and detector.last_misses.tolist() == [True] * 3
    detector.score(test_x[:2])
    assert detector.misses >= 3 and detector.last_misses.shape == (2,)


def test_eye_position_needs_no_fit(corpora):
    _, _, test_x, test_y = corpora("eyes_fixed")
    scores = EyePositionDetector().score(test_x)
    assert roc_auc_score(test_y, scores) >= 0.9


def test_boundary_iou_of_a_circle_is_one_and_of_a_wobble_less():
    angles = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    assert boundary_iou(angles, np.full(64, 0.4)) == pytest.approx(1.0)
    ellipse = 0.4 / np.sqrt((np.cos(angles) / 1.3) ** 2 + np.sin(angles) ** 2)
    assert boundary_iou(angles, ellipse) == pytest.approx(1.0, abs=1e-6)
    wobble = 0.4 * (1 + 0.08 * np.cos(3 * angles) + 0.06 * np.cos(5 * angles + 1))
    assert boundary_iou(angles, wobble) < 0.7


def test_lab_of_known_colours():
    np.testing.assert_allclose(srgb_to_lab([255, 255, 255]), [100, 0, 0], atol=0.01)
    np.testing.assert_allclose(srgb_to_lab([0, 0, 0]), [0, 0, 0], atol=0.01)
    np.testing.assert_allclose(srgb_to_lab([255, 0, 0]), [53.24, 80.09, 67.20], atol=0.05)
