"""Pixel artifacts of the frequency, surroundings and shortcuts modules: contracts and known answers."""

import json

import numpy as np
import pytest
from scipy import ndimage

from facebench.generators.artifacts import ARTIFACTS, ArtifactError, make_fakes, parse_fake_specs
from facebench.generators.artifacts.frequency import HFExcessArtifact, HFSmoothArtifact, PeriodicArtifact
from facebench.generators.artifacts.shortcuts import SizeArtifact
from facebench.generators.artifacts.surroundings import BackgroundBlurArtifact, BlobArtifact, HairBleedArtifact
from facebench.generators.parametric import ParametricGenerator
from facebench.harness.contracts.types import Batch, Record

SIZE = 128
NAMES = ["hf_smooth", "hf_excess", "periodic", "background_blur", "hair_bleed", "blob", "size"]
LOCAL = ["background_blur", "hair_bleed", "blob"]


@pytest.fixture(scope="module")
def reals():
    """Clean parametric renders (no camera) with landmarks and face/hair/background masks."""
    return ParametricGenerator(resolution=SIZE, artifacts="none", camera=False).render([0, 1, 2, 3])


def gray(image):
    return image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def band_power(image, low, high):
    """Power of the grey image's spectrum between ``low`` and ``high`` cycles per pixel."""
    g = gray(image)
    power = np.abs(np.fft.fft2(g - g.mean())) ** 2
    f = np.hypot(np.fft.fftfreq(g.shape[0])[:, None], np.fft.fftfreq(g.shape[1])[None, :])
    return power[(f >= low) & (f < high)].sum()


def change(a, b):
    return np.abs(a.astype(float) - b.astype(float)).mean()


def test_all_are_registered_and_parse():
    for name in NAMES:
        assert name in ARTIFACTS and ARTIFACTS[name].summary
    assert ARTIFACTS["hf_smooth"] is HFSmoothArtifact and ARTIFACTS["size"] is SizeArtifact
    specs = parse_fake_specs("hf_smooth:0.5,blob+size")
    assert [s.slug for s in specs] == ["hf_smooth-0.5", "blob+size"]
    assert {name for name in LOCAL if ARTIFACTS[name].local} == set(LOCAL)


@pytest.mark.parametrize("name", NAMES)
def test_strength_zero_is_absent(name, reals):
    assert ARTIFACTS[name]().apply(reals, 0.0) is reals


@pytest.mark.parametrize("name", NAMES)
def test_records_are_fake_with_name_strength_params(name, reals):
    artifact = ARTIFACTS[name]()
    fake = artifact.apply(reals, 0.6)
    assert fake.images.shape == reals.images.shape and fake.images.dtype == np.uint8
    assert not np.array_equal(fake.images, reals.images)
    for real, record in zip(reals.records, fake.records):
        assert record.label == 1 and record.id == real.id and record.seed == real.seed
        entry = record.artifacts[name]
        assert entry["strength"] == 0.6
        assert {k: entry[k] for k in artifact.params()} == artifact.params()
        json.dumps(record.artifacts)  # the corpus stores them as JSON
        assert (name in record.masks) == artifact.local
        # the region masks travel on
        for region in ("face", "hair", "background"):
            np.testing.assert_array_equal(record.masks[region], real.masks[region])


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_and_independent_of_the_batch(name, reals):
    artifact = ARTIFACTS[name]()
    first = artifact.apply(reals, 0.7)
    again = ARTIFACTS[name]().apply(reals, 0.7)
    assert first.images.tobytes() == again.images.tobytes()
    alone = artifact.apply(Batch(reals.images[2:3].copy(), reals.records[2:3]), 0.7)
    assert alone.images[0].tobytes() == first.images[2].tobytes()
    for record, other in zip(first.records, again.records):
        for key, mask in record.masks.items():
            np.testing.assert_array_equal(mask, other.masks[key])


@pytest.mark.parametrize("name", NAMES)
def test_larger_strength_changes_more(name, reals):
    artifact = ARTIFACTS[name]()
    weak, strong = artifact.apply(reals, 0.25), artifact.apply(reals, 1.0)
    for real, a, b in zip(reals.images, weak.images, strong.images):
        assert change(real, b) > 1.2 * change(real, a) > 0


@pytest.mark.parametrize("name", LOCAL)
def test_local_masks_cover_every_change(name, reals):
    fake = ARTIFACTS[name]().apply(reals, 1.0)
    for real, image, record in zip(reals.images, fake.images, fake.records):
        mask = record.masks[name]
        assert mask.dtype == bool and mask.shape == real.shape[:2] and mask.any()
        np.testing.assert_array_equal(image[~mask], real[~mask])
        # the mask is mostly where something changed, not a loose box
        changed = (image != real).any(axis=-1)
        assert changed[mask].mean() > 0.05


# --- frequency -----------------------------------------------------------------------------------


def test_hf_smooth_and_excess_move_the_high_end_only(reals):
    smooth = HFSmoothArtifact().apply(reals, 1.0)
    excess = HFExcessArtifact().apply(reals, 1.0)
    for real, s, e in zip(reals.images, smooth.images, excess.images):
        high = band_power(real, 0.35, 1.0)
        assert band_power(s, 0.35, 1.0) < 0.7 * high
        assert band_power(e, 0.35, 1.0) > 2.0 * high
        low = band_power(real, 0.0, 0.1)
        for fake in (s, e):
            assert band_power(fake, 0.0, 0.1) == pytest.approx(low, rel=0.03)
        # and the mean brightness stays
        assert abs(s.astype(float).mean() - real.astype(float).mean()) < 0.5


def test_hf_gain_curve_and_parameters():
    f = np.array([0.0, 0.25, 0.375, 0.5, 0.7])
    np.testing.assert_allclose(HFSmoothArtifact().radial_gain(f, 1.0), [1, 1, 0.75, 0, 0])
    np.testing.assert_allclose(HFExcessArtifact().radial_gain(f, 0.5), [1, 1, 1.25, 2, 2])
    assert HFExcessArtifact().params() == {"f0": 0.25, "power": 2.0, "gain": 2.0}
    assert HFSmoothArtifact(f0=0.3, power=1).params() == {"f0": 0.3, "power": 1.0, "gain": 1.0}
    with pytest.raises(ArtifactError, match="f0"):
        HFSmoothArtifact(f0=0.5)
    with pytest.raises(ArtifactError, match="gain"):
        HFSmoothArtifact(gain=2.0)  # would invert the high end


def residual_spectrum(image):
    """Power spectrum of the grey image's noise residual (image minus a 3x3 mean), as Corvi et al. look at it."""
    g = gray(image)
    return np.abs(np.fft.fft2(g - ndimage.uniform_filter(g, 3, mode="reflect"))) ** 2


def harmonics(power, period):
    """The bins at (ky, kx) / period cycles per pixel, DC excluded (set to 0)."""
    grid = power[:: power.shape[0] // period, :: power.shape[1] // period].copy()
    grid[0, 0] = 0.0
    return grid


@pytest.mark.parametrize("period, size", [(4, 128), (3, 96), (5, 80), (6, 96)])
def test_periodic_puts_peaks_at_multiples_of_one_over_the_period(period, size):
    reals = ParametricGenerator(resolution=size, artifacts="none", camera=False).render([5, 6])
    fake = PeriodicArtifact(period=period).apply(reals, 0.5)
    k = size // period
    for real, image in zip(reals.images, fake.images):
        fake_power, real_power = residual_spectrum(image), residual_spectrum(real)
        # a peak appears on the k/period grid where the real had none
        assert (harmonics(fake_power, period) / (harmonics(real_power, period) + 1e-9)).max() > 100
        if period <= 4:
            # peak-to-median ratio at k/period; for longer periods the harmonics fall among the
            # face's own low frequencies, where a 3x3 residual is a poor detector
            peak_to_median = [harmonics(p, period).max() / np.median(p) for p in (fake_power, real_power)]
            assert peak_to_median[0] > 10 * peak_to_median[1]
        # fake - real: a good share of its power sits on the (period x period) harmonic bins, which are
        # fewer than 0.5% of all bins (the rest is spread by the local-std modulation and rounding),
        # and the fundamental 1/period stands out on both axes
        diff = gray(image) - gray(real)
        power = np.abs(np.fft.fft2(diff - diff.mean())) ** 2
        assert power[::k, ::k].sum() > 0.25 * power.sum()
        assert min(power[0, k], power[k, 0]) > 50 * np.median(power)


def test_periodic_fingerprint_is_the_same_on_every_image(reals):
    fake = PeriodicArtifact().apply(reals, 1.0)
    phases = []
    for real, image in zip(reals.images, fake.images):
        diff = gray(image) - gray(real)
        phases.append(diff.reshape(SIZE // 4, 4, SIZE // 4, 4).mean(axis=(0, 2)).ravel())
    for other in phases[1:]:
        assert np.corrcoef(phases[0], other)[0, 1] > 0.9
    pattern = PeriodicArtifact().pattern()
    assert pattern.shape == (4, 4) and abs(pattern.mean()) < 1e-9 and pattern.std() == pytest.approx(1.0)
    np.testing.assert_array_equal(pattern, PeriodicArtifact(amplitude=0.1).pattern())


def test_periodic_flat_areas_still_carry_it():
    flat = np.full((1, 64, 64, 3), 128, np.uint8)
    batch = Batch(flat, [Record(id="f-real", label=0, source="t", source_version="1", seed=0, pair="p")])
    fake = PeriodicArtifact().apply(batch, 1.0)
    assert (fake.images != 128).mean() > 0.2


@pytest.mark.parametrize("period", [8, 16, 24, 1, 2.5])
def test_periodic_refuses_jpeg_periods_and_nonsense(period):
    with pytest.raises(ArtifactError, match="period"):
        PeriodicArtifact(period=period)


# --- surroundings --------------------------------------------------------------------------------


def test_background_blur_stays_off_the_face(reals):
    artifact = BackgroundBlurArtifact()
    fake = artifact.apply(reals, 1.0)
    margin = artifact.margin * SIZE
    for real, image, record in zip(reals.images, fake.images, fake.records):
        mask = record.masks["background_blur"]
        head = record.masks["face"] | record.masks["hair"]
        assert not (mask & head).any()
        assert not (mask & ~record.masks["background"]).any()
        assert ndimage.distance_transform_edt(~head)[mask].min() > margin
        # the blurred background lost detail
        assert np.abs(np.diff(gray(image), axis=1))[mask[:, 1:]].mean() < np.abs(np.diff(gray(real), axis=1))[mask[:, 1:]].mean()


def test_background_blur_fades_in_without_a_seam(reals):
    fake = BackgroundBlurArtifact().apply(reals, 1.0)
    record = fake.records[1]
    mask = record.masks["background_blur"]
    head = record.masks["face"] | record.masks["hair"]
    to_head = ndimage.distance_transform_edt(~head)
    to_other = ndimage.distance_transform_edt(record.masks["background"] | head)  # clothes, neck, ears
    # the mask's edge next to the protected margin, away from the clothes
    rim = mask & (to_head <= BackgroundBlurArtifact().margin * SIZE + 1.0) & (to_other > 3)
    assert rim.sum() > 20
    jump = np.abs(fake.images[1].astype(int) - reals.images[1].astype(int)).max(axis=-1)
    assert jump[rim].max() <= 3
    far = mask & (to_head > 15)
    assert jump[far].max() > 10  # while farther out the blur is at full strength


def test_hair_bleed_band_lies_along_the_hair_edge(reals):
    artifact = HairBleedArtifact()
    fake = artifact.apply(reals, 1.0)
    width = artifact.max_width * SIZE / 256
    for record in fake.records:
        mask = record.masks["hair_bleed"]
        hair, background = record.masks["hair"], record.masks["background"]
        assert not (mask & ~(hair | background)).any()  # face and clothes untouched
        assert (mask & hair).any() and (mask & background).any()  # both sides melt
        to_background = ndimage.distance_transform_edt(~background)
        to_hair = ndimage.distance_transform_edt(~hair)
        assert to_background[mask & hair].max() <= width + 1e-6
        assert to_hair[mask & background].max() <= width + 1e-6
    # a weaker bleed is a narrower band
    weak = artifact.apply(reals, 0.3)
    for a, b in zip(weak.records, fake.records):
        assert a.masks["hair_bleed"].sum() < b.masks["hair_bleed"].sum()


def test_hair_bleed_falls_back_to_the_head_outline_without_hair(reals):
    record = reals.records[0]
    bald = record.with_changes(masks={**record.masks, "hair": np.zeros_like(record.masks["hair"]),
                                      "face": record.masks["face"] | record.masks["hair"]})
    fake = HairBleedArtifact().apply(Batch(reals.images[:1].copy(), [bald]), 1.0)
    mask = fake.records[0].masks["hair_bleed"]
    assert mask.any() and (mask & bald.masks["face"]).any()
    no_background = bald.with_changes(masks={**bald.masks, "background": np.zeros_like(record.masks["hair"])})
    with pytest.raises(ArtifactError, match=record.id):
        HairBleedArtifact().apply(Batch(reals.images[:1].copy(), [no_background]), 1.0)


def test_blob_is_a_compact_smudge_on_the_head(reals):
    artifact = BlobArtifact()
    fake = artifact.apply(reals, 1.0)
    radius = artifact.radius * SIZE
    for real, image, record in zip(reals.images, fake.images, fake.records):
        mask = record.masks["blob"]
        ys, xs = np.nonzero(mask)
        assert np.ptp(ys) <= 2 * radius + 1 and np.ptp(xs) <= 2 * radius + 1
        centre = (int(round(ys.mean())), int(round(xs.mean())))
        assert (record.masks["face"] | record.masks["hair"])[centre]
        assert np.abs(image[centre].astype(int) - real[centre]).max() > 0.5 * artifact.amplitude


def test_blob_needs_no_regions(make_batch):
    batch = make_batch([1, 2], size=64)
    fake = BlobArtifact().apply(batch, 0.8)
    for real, image, record in zip(batch.images, fake.images, fake.records):
        mask = record.masks["blob"]
        assert mask.any()
        np.testing.assert_array_equal(image[~mask], real[~mask])
        ys, xs = np.nonzero(mask)
        assert ys.min() > 0 and xs.min() > 0 and ys.max() < 63 and xs.max() < 63


@pytest.mark.parametrize("name", ["background_blur", "hair_bleed"])
def test_region_artifacts_need_the_region_masks(name, make_batch):
    with pytest.raises(ArtifactError, match="face/hair/background masks"):
        ARTIFACTS[name]().apply(make_batch([1], size=32, with_mask=True), 1.0)


# --- shortcuts -----------------------------------------------------------------------------------


def test_size_shrinks_then_grows_back(reals):
    fake = SizeArtifact().apply(reals, 1.0)
    entry = fake.records[0].artifacts["size"]
    assert entry == {"strength": 1.0, "down": "box", "up": "bicubic", "factor": 0.5, "intermediate_size": [64, 64]}
    for real, image in zip(reals.images, fake.images):
        assert band_power(image, 0.35, 1.0) < 0.5 * band_power(real, 0.35, 1.0)
    assert SizeArtifact.intermediate_size(128, 96, 0.5) == (96, 72)
    assert SizeArtifact.intermediate_size(128, 128, 0.001) == (127, 127)  # present means resized


def test_make_fakes_chains_the_new_artifacts(reals):
    for spec in parse_fake_specs("hf_smooth:0.5,blob+size,background_blur+hair_bleed+periodic"):
        fakes = make_fakes(reals, spec)
        assert all(r.label == 1 and set(r.artifacts) == {n for n, _ in spec.artifacts} for r in fakes.records)
        assert not np.array_equal(fakes.images, reals.images)
