"""The eye artifacts on photographs (generators/artifacts/eyes.py) and iris localisation (generators/irises.py)."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest
from scipy import ndimage

from facebench.generators import faces, irises
from facebench.generators.artifacts import ARTIFACTS, ArtifactError
from facebench.harness.contracts.types import REAL, Batch, Record

EYE_ARTIFACTS = ("iris_mismatch", "irregular_pupils", "highlight_mismatch")
SIZE = 128
#: Iris centres, iris and pupil radii of the drawn eyes (pixels).
CENTRES = {"left": (40.0, 60.0), "right": (88.0, 60.0)}
IRIS, PUPIL = 10.0, 4.0
HIGHLIGHT = (-3.0, -3.5)  # offset of the drawn highlight from the iris centre

needs_faces = pytest.mark.skipif(not faces.available(), reason=f"face analysis not installed: {faces.FACES_EXTRA}")


def contour(side: str) -> np.ndarray:
    """Six dlib-like eye points: corners, two upper and two lower lid points."""
    cx, cy = CENTRES[side]
    return np.array([(cx - 18, cy), (cx - 7, cy - 9), (cx + 7, cy - 9), (cx + 18, cy), (cx + 7, cy + 8), (cx - 7, cy + 8)])


def drawn_eyes(seed: int = 3) -> tuple[np.ndarray, Record]:
    """Skin with two open eyes (sclera, textured green-brown iris, round pupil, a highlight at the same
    spot in both) and a record carrying their contours and irises as the face analysis does."""
    y, x = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    image = np.empty((SIZE, SIZE, 3), np.float32)
    image[:] = (205, 160, 135)
    landmarks = {"eye_left": CENTRES["left"], "eye_right": CENTRES["right"]}
    for side, (cx, cy) in CENTRES.items():
        points = contour(side)
        inside = irises.inside_polygon(points, x, y)
        r = np.hypot(x - cx, y - cy)
        texture = 1.0 + 0.15 * np.sin(9 * np.arctan2(y - cy, x - cx))
        image[inside] = (235, 232, 228)
        iris = inside & (r < IRIS)
        image[iris] = (np.array([95.0, 120.0, 55.0]) * texture[iris, None])
        image[inside & (r < PUPIL)] = (14, 12, 12)
        image[inside & (np.hypot(x - cx - HIGHLIGHT[0], y - cy - HIGHLIGHT[1]) < 1.8)] = (252, 252, 250)
        landmarks.update({f"eye_{side}_{i}": (float(px), float(py)) for i, (px, py) in enumerate(points)})
        landmarks.update(irises.iris_landmarks({side: irises.Iris((cx, cy), IRIS, PUPIL)}))
    record = Record(id=f"drawn-{seed}-real", label=REAL, source="test", source_version="0", seed=seed,
                    pair=f"drawn-{seed}", landmarks=landmarks)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), record


def applied(name: str, seed: int = 3, strength: float = 1.0) -> tuple[np.ndarray, np.ndarray, Record]:
    image, record = drawn_eyes(seed)
    out = ARTIFACTS[name]().apply(Batch(image[None], [record]), strength)
    return image, out.images[0], out.records[0]


def disc(side: str, radius: float = IRIS) -> np.ndarray:
    y, x = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    return np.hypot(x - CENTRES[side][0], y - CENTRES[side][1]) < radius


@pytest.mark.parametrize("name", EYE_ARTIFACTS)
def test_an_eye_artifact_changes_only_the_pixels_of_its_non_empty_mask_on_the_irises(name):
    before, after, record = applied(name)
    mask = record.masks[name]
    changed = np.any(before != after, axis=-1)
    assert mask.dtype == bool and mask.shape == (SIZE, SIZE) and mask.any()
    assert np.array_equal(changed, mask)
    assert not (mask & ~(disc("left", IRIS + 1) | disc("right", IRIS + 1))).any()
    assert record.label == 1 and record.artifacts[name]["strength"] == 1.0


def hue(pixels: np.ndarray) -> float:
    r, g, b = pixels.astype(float).mean(axis=0) / 255.0
    return colorsys.rgb_to_hsv(r, g, b)[0]


def test_iris_mismatch_turns_one_iris_hue_and_leaves_the_other_eye_alone():
    before, after, record = applied("iris_mismatch")
    ring = {side: disc(side) & ~disc(side, PUPIL + 1.5) for side in CENTRES}
    changed = {side: bool(np.any(before[disc(side, IRIS + 1)] != after[disc(side, IRIS + 1)])) for side in CENTRES}
    assert sorted(changed.values()) == [False, True]
    side = "left" if changed["left"] else "right"
    turn = (hue(after[ring[side]]) - hue(before[ring[side]])) % 1.0
    max_turn = ARTIFACTS["iris_mismatch"]().max_turn
    assert abs(turn - max_turn) < 0.08, turn


def pupil_profile(image: np.ndarray, side: str) -> np.ndarray:
    """The dark pupil's radius along 64 directions from the iris centre, in pupil radii (the directions
    towards the highlight, which the artifact keeps, left out)."""
    cx, cy = CENTRES[side]
    radii = np.linspace(0.5, IRIS, 200)
    angles = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    towards = np.arctan2(HIGHLIGHT[1], HIGHLIGHT[0])
    angles = angles[np.abs(np.angle(np.exp(1j * (angles - towards)))) > np.pi / 4]
    grey = image.min(axis=-1).astype(float)
    profile = []
    for a in angles:
        values = ndimage.map_coordinates(grey, [cy - 0.5 + radii * np.sin(a), cx - 0.5 + radii * np.cos(a)], order=1)
        profile.append(radii[np.argmax(values > 40.0)])
    return np.array(profile) / PUPIL


def test_irregular_pupils_gives_each_eye_a_different_non_round_pupil():
    before, after, _ = applied("irregular_pupils")
    for side in CENTRES:
        assert pupil_profile(before, side).std() < 0.05  # drawn round
    left, right = pupil_profile(after, "left"), pupil_profile(after, "right")
    assert left.std() > 0.04 and right.std() > 0.04
    assert np.abs(left - right).mean() > 0.04


def highlight_offset(image: np.ndarray, side: str) -> np.ndarray:
    """Centroid of the bright pixels on the iris, from its centre, in iris radii."""
    y, x = np.mgrid[0:SIZE, 0:SIZE] + 0.5
    bright = disc(side) & (image.min(axis=-1) > 200)
    assert bright.any()
    return np.array([x[bright].mean() - CENTRES[side][0], y[bright].mean() - CENTRES[side][1]]) / IRIS


def test_highlight_mismatch_puts_the_highlights_at_different_spots():
    before, after, _ = applied("highlight_mismatch")
    assert np.abs(highlight_offset(before, "left") - highlight_offset(before, "right")).max() < 0.05
    apart = np.hypot(*(highlight_offset(after, "left") - highlight_offset(after, "right")))
    assert apart > 0.4, apart


@pytest.mark.parametrize("name", EYE_ARTIFACTS)
def test_eye_artifacts_are_deterministic_per_seed(name):
    _, first, _ = applied(name, seed=5)
    _, again, _ = applied(name, seed=5)
    assert np.array_equal(first, again)
    outputs = {applied(name, seed=s)[1].tobytes() for s in range(4)}
    assert len(outputs) > 1


@pytest.mark.parametrize("name", EYE_ARTIFACTS)
def test_without_located_irises_the_error_is_one_line_naming_the_extra(name):
    image, record = drawn_eyes()
    bare = record.with_changes(landmarks={k: v for k, v in record.landmarks.items() if "iris" not in k and "pupil" not in k})
    with pytest.raises(ArtifactError, match=r"pip install 'facebench\[faces\]'") as caught:
        ARTIFACTS[name]().apply(Batch(image[None], [bare]), 1.0)
    assert "\n" not in str(caught.value) and record.id in str(caught.value)


def test_the_folder_without_the_faces_extra_names_it(tmp_path, monkeypatch):
    from PIL import Image

    from facebench.generators import faces, folder

    image, _ = drawn_eyes()
    Image.fromarray(image).save(tmp_path / "eyes.png")
    monkeypatch.setattr(faces, "missing_packages", lambda: ["dlib-bin"])
    generator = folder.FolderGenerator(str(tmp_path), resolution=64, artifacts="irregular_pupils")
    with pytest.raises(ArtifactError, match=r"'irregular_pupils' on photographs .*pip install 'facebench\[faces\]'") as caught:
        generator.generate([0])
    assert "\n" not in str(caught.value)


def test_iris_landmarks_round_trip_through_a_record():
    located = {"left": irises.Iris((10.5, 20.5), 6.0, 2.5), "right": irises.Iris((40.5, 21.0), 5.5, 2.0)}
    back = irises.irises_of(irises.iris_landmarks(located))
    for side, iris in located.items():
        assert back[side].centre == pytest.approx(iris.centre)
        assert back[side].radius == pytest.approx(iris.radius)
        assert back[side].pupil_radius == pytest.approx(iris.pupil_radius)


def test_locate_iris_finds_the_drawn_iris():
    image, _ = drawn_eyes()
    for side, centre in CENTRES.items():
        found = irises.locate_iris(image, contour(side))
        assert found is not None
        assert np.hypot(*np.subtract(found.centre, centre)) < 1.0
        assert abs(found.radius - IRIS) < 1.5
        assert abs(found.pupil_radius - PUPIL) < 1.5


def test_a_closed_eye_has_no_iris():
    image, _ = drawn_eyes()
    closed = contour("left").copy()
    closed[[1, 2, 4, 5], 1] = CENTRES["left"][1] + np.array([-1.0, -1.0, 1.0, 1.0])
    assert irises.locate_iris(image, closed) is None


@needs_faces
@pytest.mark.parametrize("resolution", [256, 512])
def test_irises_of_parametric_faces_are_found_within_the_measured_error(resolution):
    from facebench.generators.parametric.generator import ParametricGenerator

    batch = ParametricGenerator(resolution=resolution, artifacts="none", camera=False).render(range(8))
    errors, eyes = [], 0
    for image, record in zip(batch.images, batch.records):
        analysis = faces.analyse_face(image)
        if analysis is None:
            continue
        for side in ("left", "right"):
            eyes += 1
            if f"iris_{side}" in analysis.landmarks:
                errors.append(np.hypot(*np.subtract(analysis.landmarks[f"iris_{side}"], record.landmarks[f"eye_{side}"])))
    assert eyes >= 12 and len(errors) >= 0.9 * eyes
    scale = resolution / 256
    assert np.median(errors) < 1.5 * scale, errors
    assert np.percentile(errors, 75) < 3.0 * scale, errors


@needs_faces
def test_eye_artifacts_work_on_a_photograph_through_the_folder(tmp_path):
    import matplotlib
    from PIL import Image

    from facebench.generators.folder import FolderGenerator

    path = f"{matplotlib.get_data_path()}/sample_data/grace_hopper.jpg"
    Image.open(path).convert("RGB").save(tmp_path / "grace_hopper.png")
    generator = FolderGenerator(str(tmp_path), resolution=256, artifacts=",".join(EYE_ARTIFACTS))
    batch = generator.generate([0])
    real = batch.images[0]
    assert {"iris_left", "iris_right", "iris_left_edge", "pupil_right_edge"} <= set(batch.records[0].landmarks)
    for image, record in zip(batch.images[1:], batch.records[1:]):
        (name,) = record.artifacts
        mask = record.masks[name]
        assert mask.any(), name
        assert np.array_equal(np.any(image != real, axis=-1), mask), name
