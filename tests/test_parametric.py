"""Known answers of the parametric generator."""

import numpy as np
import pytest

from facebench.generators.artifacts import FFHQ_EYE_LEFT, FFHQ_EYE_RIGHT
from facebench.generators.parametric import ParametricGenerator

RES = 64


@pytest.fixture(scope="module")
def batch():
    return ParametricGenerator(resolution=RES, artifacts="eyes_fixed,upsampling,none").generate(range(12))


def by_kind(batch, suffix):
    return [(img, r) for img, r in zip(batch.images, batch.records) if r.id.endswith(suffix)]


def test_one_real_and_one_fake_per_spec_sharing_the_pair(batch):
    assert len(batch) == 12 * 4
    reals = by_kind(batch, "-real")
    assert len(reals) == 12 and all(r.label == 0 and r.artifacts == {} for _, r in reals)
    for suffix in ("-eyes_fixed", "-upsampling", "-none"):
        fakes = by_kind(batch, suffix)
        assert [r.pair for _, r in fakes] == [r.pair for _, r in reals]
        assert all(r.label == 1 for _, r in fakes)


def test_eyes_fixed_fakes_sit_on_the_ffhq_positions_while_reals_spread(batch):
    for _, record in by_kind(batch, "-eyes_fixed"):
        assert record.landmarks["eye_left"] == pytest.approx((FFHQ_EYE_LEFT[0] * RES, FFHQ_EYE_LEFT[1] * RES), abs=1.0)
        assert record.landmarks["eye_right"] == pytest.approx((FFHQ_EYE_RIGHT[0] * RES, FFHQ_EYE_RIGHT[1] * RES), abs=1.0)
    real_left = np.array([r.landmarks["eye_left"] for _, r in by_kind(batch, "-real")])
    assert real_left.std(axis=0).max() > 1.0


def test_control_fakes_equal_their_reals(batch):
    for (real, _), (fake, _) in zip(by_kind(batch, "-real"), by_kind(batch, "-none")):
        np.testing.assert_array_equal(real, fake)


def test_same_seed_same_bytes_and_batching_does_not_matter(batch):
    again = ParametricGenerator(resolution=RES, artifacts="eyes_fixed,upsampling,none").generate([3])
    index = [r.id for r in batch.records].index(again.records[0].id)
    np.testing.assert_array_equal(again.images[0], batch.images[index])


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="resolution"):
        ParametricGenerator(resolution=32)
    with pytest.raises(ValueError, match="unknown artifact"):
        ParametricGenerator(artifacts="blob2")
