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
    """The pupil is centred on the landmark: the centroid of pupil-dark pixels nearby is within 1 px."""
    for i in range(len(SEEDS)):
        lum = _luma(render32.images[i])
        for name in ("eye_left", "eye_right"):
            x, y = render32.landmarks[name][i]
            cx, cy = int(x), int(y)
            darkness = np.clip(30.0 - lum[cy - 3: cy + 4, cx - 3: cx + 4], 0.0, None)
            ys, xs = np.mgrid[cy - 3: cy + 4, cx - 3: cx + 4] + 0.5
            centroid = ((xs * darkness).sum() / darkness.sum(), (ys * darkness).sum() / darkness.sum())
            assert np.hypot(centroid[0] - x, centroid[1] - y) < 1.0, (i, name, centroid, (x, y))


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


# --------------------------------------------------------------------------------------------
# issue 3: irregular pupils, earring sizes, glasses, textured out-of-focus backgrounds

from scipy import ndimage  # noqa: E402

from facebench.generators.parametric.face import BACKGROUND_STYLES, GLASSES  # noqa: E402

SEEDS100 = list(range(100))


@pytest.fixture(scope="module")
def params100() -> list[FaceParams]:
    return [sample_face_params(s) for s in SEEDS100]


@pytest.fixture(scope="module")
def render100(params100) -> Render:
    return render_faces(params100, 128)


def _changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(int) - b.astype(int)).sum(-1) > 0


def _pupil_px(p: FaceParams, res: int, side: str) -> float:
    pupil = p.pupil_right if side == "right" else p.pupil_left
    return pupil * p.iris_size * p.eye_width * p.head_width * p.scale * res


def test_empty_wobble_is_the_plain_pupil():
    p = sample_face_params(4)
    assert p.pupil_wobble_left == () and p.pupil_wobble_right == ()
    plain = render_faces([p, FaceParams(seed=0)], 256).images
    explicit = render_faces([dataclasses.replace(p, pupil_wobble_left=(), pupil_wobble_right=()),
                             FaceParams(seed=0, pupil_wobble_left=(), pupil_wobble_right=())], 256).images
    assert plain.tobytes() == explicit.tobytes()
    # zero harmonics take the wobble code path yet trace the same (round or elliptical) outline
    for aspect in (1.0, 1.5):
        q = dataclasses.replace(p, pupil_aspect_right=aspect)
        zero = dataclasses.replace(q, pupil_wobble_right=((0.0, 0.0), (0.0, 1.0)))
        a, b = render_faces([q, zero], 512).images
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


@pytest.mark.parametrize("side", ["left", "right"])
def test_pupil_wobble_changes_only_that_pupil(side):
    p = dataclasses.replace(sample_face_params(6), gaze=(0.0, 0.0))
    res = 512
    wobble = ((0.12, 0.4), (0.08, 2.0), (0.05, -1.0))
    odd = dataclasses.replace(p, **{f"pupil_wobble_{side}": wobble})
    a, b = render_faces([p, odd], res).images
    changed = _changed(a, b)
    assert changed.sum() > 5
    ys, xs = np.nonzero(changed)
    x, y = face_landmarks(p, res)[f"eye_{side}"]
    dist = np.hypot(xs + 0.5 - x, ys + 0.5 - y)
    assert dist.max() <= 1.5 * _pupil_px(p, res, side) + 1.0, (dist.max(), _pupil_px(p, res, side))


def test_pupil_wobble_is_anti_aliased_and_deterministic():
    p = dataclasses.replace(sample_face_params(6), pupil_wobble_left=((0.2, 0.0),),
                            pupil_wobble_right=((0.1, 1.0),))
    a = render_faces([p], 1024).images[0]
    assert a.tobytes() == render_faces([p], 1024).images[0].tobytes()
    x, y = face_landmarks(p, 1024)["eye_left"]
    r = int(2 * _pupil_px(p, 1024, "left"))
    patch = _luma(a[int(y) - r: int(y) + r, int(x) - r: int(x) + r])
    # pixels between the pupil's dark and the iris's colour exist along the edge
    lo, hi = patch.min(), np.percentile(patch, 90)
    assert ((patch > lo + 0.2 * (hi - lo)) & (patch < lo + 0.6 * (hi - lo))).sum() > 4


def _with_earrings(params100) -> FaceParams:
    return next(p for p in params100 if p.earring_left and p.glasses == 0 and p.hair_style != 1)


def test_earring_size_zero_removes_only_that_earring(params100):
    p = _with_earrings(params100)
    assert p.earring_size_left == p.earring_size_right == 1.0
    res = 256
    a, b = render_faces([p, dataclasses.replace(p, earring_size_right=0.0)], res).images
    changed = _changed(a, b)
    assert changed.sum() > 5
    ys, xs = np.nonzero(changed)
    lm = face_landmarks(p, res)
    left, right = np.array(lm["eye_left"]), np.array(lm["eye_right"])
    assert np.all(np.hypot(xs - right[0], ys - right[1]) < np.hypot(xs - left[0], ys - left[1]))
    assert np.all(xs > right[0])  # beyond the right eye: at the ear
    assert changed.sum() < 0.01 * res * res
    # the same as having no earring on that side
    none = render_faces([dataclasses.replace(p, earring_right=0)], res).images[0]
    assert none.tobytes() == b.tobytes()


def test_earring_size_scales_the_earring(params100):
    p = _with_earrings(params100)
    base = render_faces([dataclasses.replace(p, earring_size_left=0.0)], 256).images[0]
    areas = []
    for size in (0.5, 1.0, 1.6):
        img = render_faces([dataclasses.replace(p, earring_size_left=size)], 256).images[0]
        areas.append(_changed(base, img).sum())
    assert 0 < areas[0] < areas[1] < areas[2]


def test_glasses_in_some_sampled_faces(params100):
    kinds = [GLASSES[p.glasses] for p in params100]
    with_glasses = sum(k != "none" for k in kinds)
    assert 5 <= with_glasses <= 40
    assert {"round", "rect"} <= set(kinds)


@pytest.mark.parametrize("kind", [1, 2])
@pytest.mark.parametrize("framing", [{}, {"roll": 15.0}, {"yaw": -10.0, "roll": -6.0}])
def test_glasses_sit_over_the_eyes_and_let_them_show(kind, framing):
    p = dataclasses.replace(sample_face_params(2), glasses=0, **framing)
    res = 256
    plain, worn = render_faces([p], res), render_faces([dataclasses.replace(p, glasses=kind)], res)
    assert plain.images.tobytes() != worn.images.tobytes()
    changed = _changed(plain.images[0], worn.images[0])
    ys, xs = np.nonzero(changed)
    lm = face_landmarks(p, res)
    left, right = np.array(lm["eye_left"]), np.array(lm["eye_right"])
    for eye in (left, right):  # frames around both eyes
        assert (np.hypot(xs - eye[0], ys - eye[1]) < 0.07 * res).sum() > 50
    axis = (right - left) / np.hypot(*(right - left))
    across = np.abs((xs + 0.5 - left[0]) * axis[1] - (ys + 0.5 - left[1]) * axis[0])
    assert across.max() < 0.1 * res  # a band along the eye line: it follows roll
    for name in ("eye_left", "eye_right"):  # the iris and pupil show through the lens
        x, y = lm[name]
        before = _luma(plain.images[0][int(y) - 1: int(y) + 2, int(x) - 1: int(x) + 2]).mean()
        after = _luma(worn.images[0][int(y) - 1: int(y) + 2, int(x) - 1: int(x) + 2]).mean()
        assert abs(after - before) < 20
    assert not (worn.masks["background"][0] & ~plain.masks["background"][0]).any()
    assert worn.masks["face"][0].sum() >= plain.masks["face"][0].sum()


def test_all_background_styles_occur(params100):
    styles = {BACKGROUND_STYLES[p.bg_style] for p in params100}
    assert styles == set(BACKGROUND_STYLES)
    assert {"wall", "outdoor"} <= styles


def test_backgrounds_are_out_of_focus(params100, render100):
    """High frequencies are weak in the (eroded) background compared with face and hair."""
    luma = _luma(render100.images)
    for style in BACKGROUND_STYLES:
        ratios = []
        for i, p in enumerate(params100):
            if BACKGROUND_STYLES[p.bg_style] != style:
                continue
            lap = np.abs(ndimage.laplace(luma[i]))
            bg = ndimage.binary_erosion(render100.masks["background"][i], iterations=3)
            fg = ndimage.binary_erosion(render100.masks["face"][i] | render100.masks["hair"][i], iterations=1)
            assert bg.sum() > 200 and fg.sum() > 200
            ratios.append(lap[bg].mean() / lap[fg].mean())
        assert ratios and max(ratios) < 0.4, (style, max(ratios))


def test_textured_backgrounds_follow_their_seed(params100):
    p = next(q for q in params100 if BACKGROUND_STYLES[q.bg_style] in ("wall", "outdoor"))
    a, b, c = render_faces([p, p, dataclasses.replace(p, bg_seed=p.bg_seed + 1)], 128).images
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()


def test_hundred_seeds_give_hundred_distinct_images(render100):
    assert len({img.tobytes() for img in render100.images}) == len(SEEDS100)


@pytest.mark.parametrize("style", ["wall", "outdoor"])
def test_new_features_render_alike_at_64_and_1024(style, params100):
    p = next(q for q in params100 if BACKGROUND_STYLES[q.bg_style] == style)
    p = dataclasses.replace(p, glasses=1, pupil_wobble_left=((0.1, 0.0),))
    small = render_faces([p], 64).images[0].astype(np.float32)
    large = render_faces([p], 1024).images[0].astype(np.float32)
    pooled = large.reshape(64, 16, 64, 16, 3).mean(axis=(1, 3))
    assert np.abs(pooled - small).mean() < 6.0
