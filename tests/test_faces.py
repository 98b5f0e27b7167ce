"""Face analysis of photographs (generators/faces.py): landmarks and face/hair/background masks."""

from __future__ import annotations

import os

import numpy as np
import pytest

from facebench.generators import faces, irises

needs_faces = pytest.mark.skipif(not faces.available(), reason=f"face analysis not installed: {faces.FACES_EXTRA}")


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def grace_hopper() -> np.ndarray:
    import matplotlib
    from PIL import Image

    path = os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")
    return np.asarray(Image.open(path).convert("RGB").resize((256, 256)))


def test_require_names_the_extra_when_a_package_is_missing(monkeypatch):
    monkeypatch.setattr(faces, "model_path", lambda: None)
    assert "face_recognition_models" in faces.missing_packages()
    assert not faces.available()
    with pytest.raises(faces.FacesUnavailable, match=r"pip install 'facebench\[faces\]'") as caught:
        faces.require()
    assert "\n" not in str(caught.value)


@needs_faces
def test_landmarks_and_masks_match_the_parametric_ground_truth():
    from facebench.generators.parametric.generator import ParametricGenerator

    batch = ParametricGenerator(resolution=256, artifacts="none", camera=False).render(range(6))
    found, face_iou, background_iou = 0, [], []
    for image, record in zip(batch.images, batch.records):
        analysis = faces.analyse_face(image)
        if analysis is None:
            continue
        found += 1
        for name in ("eye_left", "eye_right", "mouth_left", "mouth_right"):
            assert np.hypot(*np.subtract(analysis.landmarks[name], record.landmarks[name])) < 6.0, name
        face_iou.append(iou(analysis.masks["face"], record.masks["face"]))
        background_iou.append(iou(analysis.masks["background"], record.masks["background"]))
    assert found >= 4
    assert np.mean(face_iou) > 0.85 and min(face_iou) > 0.6
    assert np.mean(background_iou) > 0.9 and min(background_iou) > 0.75


@needs_faces
def test_a_photograph_gets_named_landmarks_and_disjoint_region_masks():
    image = grace_hopper()
    analysis = faces.analyse_face(image)
    assert analysis is not None
    assert analysis.points.shape == (68, 2)
    names = {"eye_left", "eye_right", "mouth_left", "mouth_right", *faces.CONTOUR_NAMES, *faces.JAW_NAMES,
             *irises.IRIS_NAMES}
    assert set(analysis.landmarks) == names
    (lx, ly), (rx, ry) = analysis.landmarks["eye_left"], analysis.landmarks["eye_right"]
    left, top, right, bottom = analysis.box
    assert left < lx < rx < right and top < ly < bottom and abs(ly - ry) < 0.2 * (rx - lx)
    masks = analysis.masks
    for name in ("face", "hair", "background"):
        assert masks[name].shape == image.shape[:2] and masks[name].dtype == bool and masks[name].any(), name
    assert not (masks["face"] & masks["hair"]).any()
    assert not ((masks["face"] | masks["hair"]) & masks["background"]).any()
    x, y = (int(v) for v in analysis.landmarks["eye_left"])
    assert masks["face"][y, x] and masks["background"][5, 5]


@needs_faces
def test_analysis_is_deterministic_and_finds_nothing_in_a_flat_image():
    image = grace_hopper()
    a, b = faces.analyse_face(image), faces.analyse_face(image.copy())
    assert a.landmarks == b.landmarks
    assert all(np.array_equal(a.masks[k], b.masks[k]) for k in a.masks)
    assert faces.analyse_face(np.full((128, 128, 3), 120, np.uint8)) is None


def test_a_wrong_image_is_refused_in_one_line():
    with pytest.raises(ValueError, match="uint8"):
        faces.analyse_face(np.zeros((8, 8), np.float32))
