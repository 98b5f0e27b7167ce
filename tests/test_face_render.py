"""Tests for the procedural face renderer (generators/parametric/face.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from facebench.generators.parametric.face import (
    FaceParams,
    Render,
    face_landmarks,
    render_faces,
    sample_face_params,
)

LANDMARKS = ("eye_left", "eye_right", "mouth_left", "mouth_right")
SEEDS = list(range(32))


@pytest.fixture(scope="module")
def params32() -> list[FaceParams]:
    return [sample_face_params(s) for s in SEEDS]


@pytest.fixture(scope="module")
def render32(params32) -> Render:
    return render_faces(params32, 256)


def _luma(pixels: np.ndarray) -> np.ndarray:
    return pixels.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


@pytest.mark.parametrize("res", [64, 256])
def test_output_types_and_shapes(res):
    r = render_faces([sample_face_params(s) for s in (0, 1, 2)], res)
    assert r.images.dtype == np.uint8 and r.images.shape == (3, res, res, 3)
    assert set(r.landmarks) == set(LANDMARKS)
    for xy in r.landmarks.values():
        assert xy.dtype == np.float32 and xy.shape == (3, 2)
        assert np.all((xy >= 0) & (xy < res))
    assert set(r.masks) == {"face", "hair", "background"}
    for m in r.masks.values():
        assert m.dtype == bool and m.shape == (3, res, res)


def test_empty_batch():
    r = render_faces([], 64)
    assert r.images.shape == (0, 64, 64, 3)
    assert r.landmarks["eye_left"].shape == (0, 2)


def test_sampling_is_deterministic_and_varies():
    assert sample_face_params(7) == sample_face_params(7)
    assert sample_face_params(7) != sample_face_params(8)
    assert sample_face_params(7).seed == 7


def test_same_seed_gives_identical_bytes():
    a = render_faces([sample_face_params(5)], 128)
    b = render_faces([sample_face_params(5)], 128)
    assert a.images.tobytes() == b.images.tobytes()
    for name in LANDMARKS:
        assert np.array_equal(a.landmarks[name], b.landmarks[name])
    for name in a.masks:
        assert np.array_equal(a.masks[name], b.masks[name])


def test_batching_does_not_change_output():
    params = [sample_face_params(s) for s in (3, 11, 4, 3)]
    batched = render_faces(params, 96)
    for i, p in enumerate(params):
        single = render_faces([p], 96)
        assert batched.images[i].tobytes() == single.images[0].tobytes()
        for name in LANDMARKS:
            assert np.array_equal(batched.landmarks[name][i], single.landmarks[name][0])
    assert batched.images[0].tobytes() == batched.images[3].tobytes()


def test_distinct_images_across_seeds(render32):
    assert len({img.tobytes() for img in render32.images}) == len(SEEDS)
    # not merely distinct: the pictures differ visibly from one another
    flat = render32.images.reshape(len(SEEDS), -1).astype(np.float32)
    diffs = np.abs(flat[:, None, :] - flat[None, :, :]).mean(-1)
    assert diffs[~np.eye(len(SEEDS), dtype=bool)].min() > 5.0


def test_eye_landmarks_lie_on_dark_iris_or_pupil(render32):
    res = render32.images.shape[1]
    for i in range(len(SEEDS)):
        img, face = render32.images[i], render32.masks["face"][i]
        skin = np.median(_luma(img[face]))
        for name in ("eye_left", "eye_right"):
            x, y = render32.landmarks[name][i]
            pixel = _luma(img[int(np.floor(y)), int(np.floor(x))])
            assert pixel < skin - 10, (i, name, pixel, skin)
            assert face[int(y), int(x)], (i, name)  # the eyes are part of the face mask
        lm = {k: render32.landmarks[k][i] for k in LANDMARKS}
        assert lm["eye_left"][0] < lm["eye_right"][0]
        assert lm["mouth_left"][0] < lm["mouth_right"][0]
        assert max(lm["eye_left"][1], lm["eye_right"][1]) < min(lm["mouth_left"][1], lm["mouth_right"][1])
        eye_dist = np.hypot(*(lm["eye_right"] - lm["eye_left"]))
        assert 0.08 * res < eye_dist < 0.3 * res


def test_eye_landmark_is_the_darkest_spot_nearby(render32):
    """The pupil is centred on the landmark: the darkest pixel within a few pixels is close to it."""
    for i in range(len(SEEDS)):
        lum = _luma(render32.images[i])
        for name in ("eye_left", "eye_right"):
            x, y = render32.landmarks[name][i]
            cx, cy = int(x), int(y)
            window = lum[cy - 4: cy + 5, cx - 4: cx + 5]
            dy, dx = np.unravel_index(np.argmin(window), window.shape)
            assert abs(dx - 4) <= 2 and abs(dy - 4) <= 2, (i, name, dx - 4, dy - 4)


def test_landmarks_follow_framing():
    p = sample_face_params(9)
    moved = dataclasses.replace(p, tx=p.tx + 0.05, ty=p.ty - 0.03)
    a, b = face_landmarks(p, 200), face_landmarks(moved, 200)
    for name in LANDMARKS:
        assert b[name][0] - a[name][0] == pytest.approx(10.0, abs=1e-6)
        assert b[name][1] - a[name][1] == pytest.approx(-6.0, abs=1e-6)
    r = render_faces([moved], 200)
    x, y = r.landmarks["eye_right"][0]
    face = r.masks["face"][0]
    assert _luma(r.images[0][int(y), int(x)]) < np.median(_luma(r.images[0][face])) - 10


def test_masks_are_non_empty_and_disjoint(render32):
    face, hair, bg = (render32.masks[k] for k in ("face", "hair", "background"))
    for m in (face, hair, bg):
        assert m.reshape(len(SEEDS), -1).any(axis=1).all()
    assert not (face & bg).any()
    assert not (face & hair).any()
    assert not (hair & bg).any()
    frac = face.mean(axis=(1, 2))
    assert np.all((frac > 0.03) & (frac < 0.4))


def test_face_stays_inside_the_frame(render32):
    face = render32.masks["face"]
    border = face[:, 0, :].any(1) | face[:, -1, :].any(1) | face[:, :, 0].any(1) | face[:, :, -1].any(1)
    assert not border.any()


def test_eye_positions_spread_across_seeds(render32):
    res = render32.images.shape[1]
    spread = render32.landmarks["eye_left"].std(axis=0)
    assert np.all(spread > 0.01 * res), spread


def test_iris_colour_of_one_eye_changes_only_that_eye():
    p = sample_face_params(12)
    odd = dataclasses.replace(p, iris_right=(0.1, 0.8, 0.2))
    a, b = render_faces([p, odd], 256).images
    changed = np.abs(a.astype(int) - b.astype(int)).sum(-1) > 0
    assert changed.any()
    ys, xs = np.nonzero(changed)
    lm = face_landmarks(p, 256)
    right, left = np.array(lm["eye_right"]), np.array(lm["eye_left"])
    dist_right = np.hypot(xs + 0.5 - right[0], ys + 0.5 - right[1])
    dist_left = np.hypot(xs + 0.5 - left[0], ys + 0.5 - left[1])
    assert np.all(dist_right < dist_left)
    assert dist_right.max() < 0.05 * 256


def test_resolution_independent_picture():
    p = [sample_face_params(s) for s in (1, 2)]
    small = render_faces(p, 64).images.astype(np.float32)
    large = render_faces(p, 256).images.astype(np.float32)
    pooled = large.reshape(2, 64, 4, 64, 4, 3).mean(axis=(2, 4))
    assert np.abs(pooled - small).mean() < 6.0


def test_large_resolution_renders():
    r = render_faces([sample_face_params(3)], 1024)
    assert r.images.shape == (1, 1024, 1024, 3)
    x, y = r.landmarks["eye_left"][0]
    face = r.masks["face"][0]
    assert _luma(r.images[0][int(y), int(x)]) < np.median(_luma(r.images[0][face])) - 10


def test_default_params_render():
    r = render_faces([FaceParams(seed=0)], 128)
    assert r.masks["face"][0].sum() > 0.03 * 128 * 128
