import dataclasses
import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage

from facebench.harness.contracts.errors import FacebenchError
from facebench.harness.run.perturb import (
    DEFAULT_GRID,
    Perturbation,
    PerturbationError,
    Step,
    apply,
    parse,
    parse_grid,
)


def textured(n=4, h=48, w=64, seed=0):
    """Smooth blobs plus fine grain: something JPEG and blur both have to work on."""
    rng = np.random.default_rng(seed)
    smooth = ndimage.gaussian_filter(rng.normal(128, 80, (n, h, w, 3)), (0, 3, 3, 0))
    return np.clip(smooth + rng.normal(0, 20, smooth.shape), 0, 255).astype(np.uint8)


def grey(n=1, size=128, level=128):
    return np.full((n, size, size, 3), level, np.uint8)


def mse(a, b):
    return float(np.mean((a.astype(float) - b.astype(float)) ** 2))


def high_freq_energy(images):
    lap = ndimage.laplace(images.astype(float).mean(axis=-1), mode="reflect")
    return float(np.mean(lap[:, 2:-2, 2:-2] ** 2))


@pytest.mark.parametrize("spec", DEFAULT_GRID + ("resize:1", "resize:2", "resize:0.01", "noise:255", "crop:99"))
def test_every_step_keeps_shape_and_dtype(spec):
    images = textured(n=3, h=24, w=40)  # not square, so a swapped H and W would show
    out = apply(spec, images, keys=[1, 2, 3])
    assert out.shape == images.shape and out.dtype == np.uint8


def test_none_is_an_identity_that_returns_a_copy():
    images = textured()
    out = apply("none", images)
    assert np.array_equal(out, images) and out is not images


def test_jpeg_changes_the_image_more_at_lower_quality():
    images = textured()
    errors = [mse(apply(f"jpeg:{q}", images), images) for q in (95, 75, 50, 30, 10)]
    assert errors[0] > 0
    assert errors == sorted(errors) and len(set(errors)) == len(errors)


def test_blur_removes_high_frequencies_monotonically_with_sigma():
    images = textured()
    energies = [high_freq_energy(images)] + [high_freq_energy(apply(f"blur:{s}", images)) for s in (0.5, 1, 2, 3)]
    assert all(a > b for a, b in zip(energies, energies[1:]))
    assert energies[-1] < 0.1 * energies[0]


def test_blur_reflects_at_the_border_so_a_flat_image_stays_flat():
    # zero padding would darken the edges
    assert np.array_equal(apply("blur:3", grey(size=32, level=200)), grey(size=32, level=200))


def test_resize_loses_detail_but_keeps_the_mean():
    checker = ((np.indices((64, 64)).sum(axis=0) % 2) * 255).astype(np.uint8)
    images = np.repeat(checker[None, :, :, None], 3, axis=-1)
    out = apply("resize:0.5", images)
    assert abs(out.mean() - images.mean()) < 2
    assert out.std() < 0.1 * images.std()  # a one-pixel checkerboard does not survive half resolution

    noise = textured(seed=1)
    out = apply("resize:0.5", noise)
    assert abs(out.mean() - noise.mean()) < 1
    assert high_freq_energy(out) < 0.5 * high_freq_energy(noise)
    assert mse(apply("resize:0.75", noise), noise) < mse(out, noise)


def test_resize_by_one_is_the_identity():
    images = textured()
    assert np.array_equal(apply("resize:1", images), images)


@pytest.mark.parametrize("std", [2, 5, 10])
def test_noise_has_the_requested_std_on_mid_grey(std):
    out = apply(f"noise:{std}", grey(n=2), keys=["a", "b"]).astype(float)
    assert out.std() == pytest.approx(std, rel=0.03)
    assert out.mean() == pytest.approx(128, abs=0.1)


def test_noise_is_clipped_to_the_pixel_range():
    out = apply("noise:100", grey(level=250), keys=[0])
    assert out.max() == 255 and out.min() < 250


@pytest.mark.parametrize("percent, side", [(20, 25), (50, 40)])
def test_crop_magnifies_a_centred_square(percent, side):
    images = np.zeros((1, 100, 100, 3), np.uint8)
    images[:, 40:60, 40:60] = 255  # a 20 px square, centred
    out = apply(f"crop:{percent}", images)[0, :, :, 0]
    bright = out > 127
    assert abs(int(bright[50].sum()) - side) <= 1 and abs(int(bright[:, 50].sum()) - side) <= 1
    rows, cols = np.nonzero(bright)
    assert rows.mean() == pytest.approx(49.5, abs=0.5) and cols.mean() == pytest.approx(49.5, abs=0.5)


def test_same_keys_give_identical_output():
    images = textured()
    keys = ["img-0", "img-1", "img-2", "img-3"]
    assert np.array_equal(apply("noise:5", images, keys), apply("noise:5", images, keys))


def test_noise_does_not_depend_on_batch_order_or_composition():
    images, keys = textured(), np.array([10, 11, 12, 13])
    full = apply("jpeg:75+noise:5", images, keys)
    order = [3, 1]
    part = apply("jpeg:75+noise:5", images[order], keys[order])
    assert np.array_equal(part, full[order])


def test_different_keys_or_params_give_different_noise():
    images = grey(n=2)
    out = apply("noise:5", images, keys=[1, 2])
    assert not np.array_equal(out[0], out[1])
    other = apply("noise:5", images, keys=[3, 4])
    assert not np.array_equal(out, other)
    residual5 = out.astype(float) - 128
    residual10 = apply("noise:10", images, keys=[1, 2]).astype(float) - 128
    assert abs(np.corrcoef(residual5.ravel(), residual10.ravel())[0, 1]) < 0.05


def test_noise_is_stable_across_processes():
    # string keys must not go through Python's salted hash()
    code = (
        "import hashlib, numpy as np; from facebench.harness.run.perturb import apply; "
        "out = apply('noise:5', np.full((2, 16, 16, 3), 128, np.uint8), ['abc', 'def']); "
        "print(hashlib.sha256(out.tobytes()).hexdigest())"
    )
    here = hashlib.sha256(apply("noise:5", grey(n=2, size=16), ["abc", "def"]).tobytes()).hexdigest()
    for hashseed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hashseed}
        there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
        assert there.stdout.strip() == here


def test_a_chain_equals_its_steps_in_order():
    images, keys = textured(), [5, 6, 7, 8]
    assert np.array_equal(apply("jpeg:50+blur:2", images), apply("blur:2", apply("jpeg:50", images)))
    assert not np.array_equal(apply("jpeg:50+blur:2", images), apply("jpeg:50", apply("blur:2", images)))
    stepwise = apply("noise:5", apply("crop:10", images), keys)
    assert np.array_equal(apply("crop:10+noise:5", images, keys), stepwise)


def test_a_repeated_noise_step_draws_fresh_noise():
    out = apply("noise:5+noise:5", grey(), keys=[0]).astype(float)
    assert out.std() == pytest.approx(5 * np.sqrt(2), rel=0.05)  # the same draw twice would give 10


@pytest.mark.parametrize(
    "spec, words",
    [
        ("jpeg:0", ["'jpeg:0'", "1..100"]),
        ("jpeg:101", ["1..100"]),
        ("jpeg:75.5", ["integer"]),
        ("jpeg:abc", ["'abc'", "not a number"]),
        ("blur:-1", ["'blur:-1'", "> 0"]),
        ("blur:nan", ["not a number"]),
        ("foo:1", ["'foo:1'", "jpeg:<", "crop:<", "none"]),
        ("jpeg", ["needs a value"]),
        ("jpeg:", ["needs a value"]),
        ("crop:100", ["0 < P < 100"]),
        ("crop:0", ["0 < P < 100"]),
        ("resize:0", ["0 < F <= 4"]),
        ("resize:4.5", ["0 < F <= 4"]),
        ("noise:0", ["0 < S <= 255"]),
        ("noise:256", ["0 < S <= 255"]),
        ("jpeg:75:1", ["not a number"]),
        ("", ["empty step 1"]),
        ("jpeg:50+", ["empty step 2"]),
        ("+blur:2", ["empty step 1"]),
        ("jpeg:50++blur:2", ["empty step 2"]),
        ("none+jpeg:50", ["'none'"]),
    ],
)
def test_bad_specs_say_what_is_wrong(spec, words):
    with pytest.raises(PerturbationError) as info:
        parse(spec)
    assert isinstance(info.value, FacebenchError) and isinstance(info.value, ValueError)
    for word in words:
        assert word in str(info.value)


@pytest.mark.parametrize(
    "spec, name",
    [
        ("jpeg:75.0", "jpeg:75"),
        ("jpeg:1e2", "jpeg:100"),
        (" JPEG:75 + Blur:2.0 ", "jpeg:75+blur:2"),
        ("resize:.5", "resize:0.5"),
        ("noise:2.50", "noise:2.5"),
        ("NONE", "none"),
    ],
)
def test_canonical_names(spec, name):
    assert parse(spec).name == name
    assert parse(name).name == name


def test_parsed_structure_is_frozen():
    p = parse("jpeg:50+blur:2")
    assert p == Perturbation("jpeg:50+blur:2", (Step("jpeg", 50.0), Step("blur", 2.0)))
    assert parse("none").steps == ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.name = "x"


def test_parse_grid_expands_default_and_rejects_duplicates():
    assert [p.name for p in parse_grid("default")] == list(DEFAULT_GRID)
    assert [p.name for p in parse_grid(["none", "default", "jpeg:10"])] == ["none", *DEFAULT_GRID, "jpeg:10"]
    assert len(DEFAULT_GRID) == 15 and "jpeg:50+blur:2" in DEFAULT_GRID
    with pytest.raises(PerturbationError, match="'jpeg:75' is listed twice"):
        parse_grid(["jpeg:75", "jpeg:75.0"])
    with pytest.raises(PerturbationError, match="listed twice"):
        parse_grid(["default", "blur:1"])


def test_bad_batches_and_keys_are_rejected():
    with pytest.raises(ValueError, match="uint8"):
        apply("jpeg:50", textured().astype(np.float32))
    with pytest.raises(ValueError, match="uint8"):
        apply("jpeg:50", textured()[..., :2])
    with pytest.raises(ValueError, match="keys"):
        apply("jpeg:50", textured(n=2), keys=[1])
    with pytest.raises(ValueError, match="random"):
        apply("noise:5", textured())
