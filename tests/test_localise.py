"""The offline eye localiser: hit rates on parametric faces, output contract, errors, backends.

Ground truth is the renderer's landmarks (iris centres); they are read here only, to
measure, and never by the localiser. A hit is an eye pair whose both centres lie within
0.1 eye distances of the truth. Measured on 100 faces at 256 px (seeds 0..99): builtin 96%,
dlib 92% (7 faces not found), opencv 66% (29 not found), auto 98%; on the 40 below, auto
and builtin 100%.
"""

from __future__ import annotations

import numpy as np
import pytest

from facebench.generators.parametric import ParametricGenerator
from facebench.detectors import localise
from facebench.detectors.localise import BACKENDS, EyeResult, LocaliserError, available_backends, locate_eyes

RESOLUTION = 256
SEEDS = 40


@pytest.fixture(scope="module")
def faces():
    """40 real parametric faces at 256 px and their eye landmarks [N, 2 (left, right), 2 (x, y)]."""
    batch = ParametricGenerator(resolution=RESOLUTION, artifacts="none").generate(range(SEEDS))
    reals = [i for i, r in enumerate(batch.records) if r.label == 0]
    truth = np.array([[batch.records[i].landmarks["eye_left"], batch.records[i].landmarks["eye_right"]] for i in reals])
    return batch.images[reals], truth


def hit_rate(results, truth) -> float:
    hits = 0
    for result, eyes in zip(results, truth):
        if result is None:
            continue
        distance = np.linalg.norm(eyes[1] - eyes[0])
        hits += bool(np.all(np.linalg.norm(result.centres() - eyes, axis=1) < 0.1 * distance))
    return hits / len(truth)


@pytest.fixture
def only(monkeypatch):
    """Pretend that only the given backends are installed (fresh backend instances)."""

    def pretend(*names):
        real = localise._installed
        monkeypatch.setattr(localise, "_installed", lambda name: name in names and real(name))
        monkeypatch.setattr(localise, "_instances", {})

    return pretend


def test_auto_finds_the_eyes_of_parametric_faces(faces):
    images, truth = faces
    assert hit_rate(locate_eyes(images), truth) >= 0.9


def test_builtin_finds_the_eyes_of_parametric_faces(faces):
    # The fallback every installation has: the eye detectors' tests rely on it when nothing else is installed.
    images, truth = faces
    results = locate_eyes(images, "builtin")
    assert hit_rate(results, truth) >= 0.9
    assert {r.backend for r in results if r is not None} == {"builtin"}


def test_results_follow_the_contract(faces):
    images, _ = faces
    results = locate_eyes(images[:6])
    assert len(results) == 6
    for result in results:
        assert isinstance(result, EyeResult)
        assert result.left[0] < result.right[0]  # the left eye is the image's left
        assert all(isinstance(v, float) for v in (*result.left, *result.right, *result.radius, result.confidence))
        assert 0.0 <= result.confidence <= 1.0 and result.backend in BACKENDS
        assert all(0.03 * result.eye_distance < r < 0.3 * result.eye_distance for r in result.radius)
        assert result.centres().shape == (2, 2) and abs(result.tilt) < 45


def test_small_images_are_searched_enlarged_and_answered_in_their_own_pixels():
    batch = ParametricGenerator(resolution=128, artifacts="none").generate(range(12))
    reals = [i for i, r in enumerate(batch.records) if r.label == 0]
    truth = np.array([[batch.records[i].landmarks["eye_left"], batch.records[i].landmarks["eye_right"]] for i in reals])
    results = locate_eyes(batch.images[reals], "builtin")
    assert hit_rate(results, truth) >= 0.5  # 128 px is small for the built-in search (~75% measured)
    for result, eyes in zip(results, truth):
        if result is not None and hit_rate([result], eyes[None]) == 1.0:
            assert all(1.5 < r < 7.0 for r in result.radius)  # the irises have radii of 2..4 px at 128 px


def test_no_face_gives_none():
    flat = np.full((2, 96, 128, 3), 128, np.uint8)
    assert locate_eyes(flat, "builtin") == [None, None]


def test_a_mirrored_face_gives_mirrored_eyes(faces):
    images, _ = faces
    image = images[3]
    found, mirrored = locate_eyes(np.stack([image, image[:, ::-1].copy()]), "builtin")
    width = image.shape[1]
    np.testing.assert_allclose(mirrored.left, (width - found.right[0], found.right[1]), atol=0.75)
    np.testing.assert_allclose(mirrored.right, (width - found.left[0], found.left[1]), atol=0.75)


def test_the_cache_changes_nothing(faces):
    images, _ = faces
    localise.clear_cache()
    fresh = locate_eyes(images[:4], cache=False)
    assert locate_eyes(images[:4]) == fresh
    assert locate_eyes(images[:4]) == fresh  # from the cache


def test_builtin_is_always_available_and_last():
    names = available_backends()
    assert names[-1] == "builtin" and set(names) <= set(BACKENDS)
    assert names == [b for b in BACKENDS if b in names]  # best first


@pytest.mark.parametrize(("backend", "hint"), [("dlib", "pip install dlib-bin face_recognition_models"),
                                               ("opencv", "opencv-python-headless<5")])
def test_a_backend_that_is_not_installed_says_what_to_install(backend, hint, only, faces):
    only("builtin")
    with pytest.raises(LocaliserError, match="not installed") as info:
        locate_eyes(faces[0][:1], backend)
    assert hint in str(info.value)
    assert localise.resolve_backends("auto") == ["builtin"]


class BrokenDlib:
    """A dlib backend whose model file will not load."""

    name = "dlib"

    def __init__(self):
        raise RuntimeError("corrupt model file")


def test_auto_skips_a_broken_backend_with_a_warning(monkeypatch, faces):
    from facebench.harness.contracts import registry

    monkeypatch.setattr(localise, "_installed", lambda name: name in ("dlib", "builtin"))
    monkeypatch.setitem(registry.BUILTINS, "localiser", tuple(
        f"{__name__}:BrokenDlib" if target.endswith(":DlibLocaliser") else target
        for target in registry.BUILTINS["localiser"]))
    monkeypatch.setattr(localise, "_instances", {})
    monkeypatch.setattr(localise, "_warned", set())
    with pytest.warns(RuntimeWarning, match="skipping backend 'dlib'.*corrupt model file"):
        assert localise.resolve_backends("auto") == ["builtin"]
    with pytest.raises(LocaliserError, match="failed to load.*pip install dlib-bin"):
        locate_eyes(faces[0][:1], "dlib")


def test_unknown_backend_and_bad_images_are_errors(faces):
    with pytest.raises(LocaliserError, match="unknown eye localiser backend 'mediapipe'"):
        locate_eyes(faces[0][:1], "mediapipe")
    with pytest.raises(ValueError, match="uint8"):
        locate_eyes(faces[0][:1].astype(np.float32))


def test_auto_uses_the_next_backend_where_one_finds_nothing(monkeypatch, faces):
    images, truth = faces
    first = localise.resolve_backends("auto")
    if len(first) < 2:
        pytest.skip("only the builtin backend is installed")
    monkeypatch.setattr(localise._backend(first[0]), "locate", lambda image, plane: None)
    results = locate_eyes(images[:5], cache=False)
    assert all(r is not None and r.backend != first[0] for r in results)


# --- optional backends on a real photograph (skimage's astronaut, Eileen Collins) ------------------

ASTRONAUT_EYES = np.array([[203.5, 101.0], [247.0, 102.5]])  # iris centres, read off the image by hand


@pytest.mark.parametrize("backend", ["dlib", "opencv"])
def test_optional_backends_find_the_astronauts_eyes(backend):
    pytest.importorskip({"dlib": "dlib", "opencv": "cv2"}[backend])
    if backend not in available_backends():
        pytest.skip(f"the {backend} backend is not usable here (for dlib: face_recognition_models' landmark model)")
    data = pytest.importorskip("skimage.data")
    astronaut = data.astronaut()
    result = locate_eyes(astronaut[None], backend, cache=False)[0]
    assert result is not None and result.backend == backend
    assert hit_rate([result], ASTRONAUT_EYES[None]) == 1.0


def test_dlib_finds_most_parametric_faces(faces):
    pytest.importorskip("dlib")
    if "dlib" not in available_backends():
        pytest.skip("the dlib landmark model (face_recognition_models) is not installed")
    images, truth = faces
    assert hit_rate(locate_eyes(images, "dlib"), truth) >= 0.85
