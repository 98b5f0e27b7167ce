import numpy as np
import pytest

from facebench.generators.artifacts import (
    FFHQ_EYE_LEFT,
    FFHQ_EYE_RIGHT,
    ArtifactError,
    EyesFixedArtifact,
    UpsamplingArtifact,
    make_fakes,
    parse_fake_specs,
)
from facebench.harness.contracts.types import Batch, Record


def noise_batch(n=3, size=64, landmarks=None):
    rng = np.random.default_rng(0)
    images = rng.integers(40, 216, size=(n, size, size, 3), dtype=np.uint8)
    records = [
        Record(id=f"i{i}-real", label=0, source="t", source_version="1", seed=i, pair=f"p{i}", landmarks=landmarks)
        for i in range(n)
    ]
    return Batch(images, records)


def nyquist_power(image):
    gray = image.astype(float).mean(axis=-1)
    spectrum = np.abs(np.fft.fft2(gray - gray.mean())) ** 2
    n = gray.shape[0]
    return spectrum[n // 2, :].mean() + spectrum[:, n // 2].mean()


@pytest.mark.parametrize("kind", ["transposed", "nearest", "bilinear"])
def test_upsampling_records_itself_and_changes_pixels(kind):
    batch = noise_batch()
    fake = UpsamplingArtifact(kind=kind).apply(batch, 0.5)
    assert all(r.label == 1 for r in fake.records)
    assert fake.records[0].artifacts == {"upsampling": {"strength": 0.5, "kind": kind, "factor": 2}}
    assert fake.images.shape == batch.images.shape and fake.images.dtype == np.uint8
    assert not np.array_equal(fake.images, batch.images)
    # the mean brightness is kept (within rounding)
    assert abs(fake.images.astype(float).mean() - batch.images.astype(float).mean()) < 1.0


def test_transposed_upsampling_puts_energy_at_the_nyquist_frequency():
    # a smooth image has almost no energy at 0.5 cycles/pixel; the checkerboard puts it there
    y, x = np.mgrid[0:64, 0:64]
    smooth = (128 + 60 * np.sin(x / 9.0) * np.cos(y / 7.0)).astype(np.uint8)
    image = np.repeat(smooth[None, :, :, None], 3, axis=-1)
    batch = Batch(image, [Record(id="a-real", label=0, source="t", source_version="1", seed=0, pair="p")])
    fake = UpsamplingArtifact("transposed").apply(batch, 1.0)
    assert nyquist_power(fake.images[0]) > 100 * max(nyquist_power(image[0]), 1.0)


def test_strength_zero_is_absent():
    batch = noise_batch()
    assert UpsamplingArtifact().apply(batch, 0.0) is batch


def test_bad_parameters_are_refused():
    with pytest.raises(ArtifactError, match="kind"):
        UpsamplingArtifact(kind="bicubic")
    with pytest.raises(ArtifactError, match="factor"):
        UpsamplingArtifact(kind="transposed", factor=4)
    with pytest.raises(ArtifactError, match="strength"):
        UpsamplingArtifact().apply(noise_batch(), 1.5)


def dots_batch(size=128):
    """Light images with two dark dots at the recorded eye positions, which vary per image."""
    positions = [((40.0, 50.0), (80.0, 56.0)), ((30.0, 60.0), (70.0, 58.0)), ((50.0, 40.0), (86.0, 44.0))]
    images, records = [], []
    y, x = np.mgrid[0:size, 0:size] + 0.5
    for i, (left, right) in enumerate(positions):
        image = np.full((size, size, 3), 220, np.uint8)
        for cx, cy in (left, right):
            image[(x - cx) ** 2 + (y - cy) ** 2 <= 9] = 20
        images.append(image)
        records.append(
            Record(id=f"d{i}-real", label=0, source="t", source_version="1", seed=i, pair=f"p{i}",
                   landmarks={"eye_left": left, "eye_right": right, "mouth_left": (50.0, 90.0), "mouth_right": (70.0, 90.0)})
        )
    return Batch(np.stack(images), records)


def dark_centroid(image, around, radius=12):
    y, x = np.mgrid[0 : image.shape[0], 0 : image.shape[1]] + 0.5
    near = ((x - around[0]) ** 2 + (y - around[1]) ** 2 <= radius**2) & (image[..., 0] < 100)
    return x[near].mean(), y[near].mean()


def test_eyes_fixed_moves_eyes_onto_the_ffhq_positions():
    batch = dots_batch()
    fake = EyesFixedArtifact().apply(batch, 1.0)
    size = batch.images.shape[1]
    for image, record in zip(fake.images, fake.records):
        for key, canonical in (("eye_left", FFHQ_EYE_LEFT), ("eye_right", FFHQ_EYE_RIGHT)):
            expected = (canonical[0] * size, canonical[1] * size)
            assert record.landmarks[key] == pytest.approx(expected, abs=1e-6)
            # the pixels moved with the landmarks: the dark dot sits at the canonical position
            assert dark_centroid(image, expected) == pytest.approx(expected, abs=1.0)
        assert record.artifacts["eyes_fixed"]["strength"] == 1.0
    # the warp mirrors the border instead of leaving black corners
    corners = fake.images[:, [0, -1]][:, :, [0, -1]]
    assert corners.min() > 100


def test_eyes_fixed_jitter_shrinks_with_strength():
    batch = dots_batch()
    size = batch.images.shape[1]
    weak = EyesFixedArtifact(jitter=0.05).apply(batch, 0.2)
    offsets = [abs(r.landmarks["eye_left"][0] - FFHQ_EYE_LEFT[0] * size) for r in weak.records]
    assert max(offsets) > 0.5


def test_eyes_fixed_without_landmarks_says_what_is_missing():
    with pytest.raises(ArtifactError, match="needs eye landmarks"):
        EyesFixedArtifact().apply(noise_batch(landmarks=None), 1.0)


def test_parse_fake_specs():
    specs = parse_fake_specs("upsampling:0.5, eyes_fixed ,eyes_fixed+upsampling,none")
    assert [s.slug for s in specs] == ["upsampling-0.5", "eyes_fixed", "eyes_fixed+upsampling", "none"]
    assert specs[0].artifacts == (("upsampling", 0.5),)


@pytest.mark.parametrize(
    "text, message",
    [
        ("upsamplin", "did you mean 'upsampling'"),
        ("upsampling:x", "not a number"),
        ("upsampling:0", "strength must be in"),
        ("upsampling,,eyes_fixed", "empty entry"),
        ("upsampling,upsampling", "same fake twice"),
    ],
)
def test_parse_fake_specs_errors(text, message):
    with pytest.raises(ArtifactError, match=message):
        parse_fake_specs(text)


def test_make_fakes_keeps_pair_and_seed_and_renames():
    reals = dots_batch()
    fakes = make_fakes(reals, parse_fake_specs("eyes_fixed+upsampling:0.3")[0])
    for real, fake in zip(reals.records, fakes.records):
        assert fake.pair == real.pair and fake.seed == real.seed and fake.label == 1
        assert fake.id == real.id.replace("-real", "-eyes_fixed+upsampling-0.3")
        assert set(fake.artifacts) == {"eyes_fixed", "upsampling"}
    control = make_fakes(reals, parse_fake_specs("none")[0])
    np.testing.assert_array_equal(control.images, reals.images)
    # the control is marked "none" (so reports know it as a control), nothing else
    assert all(r.label == 1 and list(r.artifacts) == ["none"] for r in control.records)
    assert [r.id for r in control.records] == [r.id.replace("-real", "-none") for r in reals.records]


def test_spec_options_build_the_artifact_with_them_and_name_the_fake():
    (spec,) = parse_fake_specs("upsampling[kind=nearest;factor=4]:0.5")
    ((artifact, strength),) = spec.build()
    assert isinstance(artifact, UpsamplingArtifact) and (artifact.kind, artifact.factor, strength) == ("nearest", 4, 0.5)
    assert spec.slug == "upsampling-0.5~factor=4~kind=nearest"
    fakes = make_fakes(noise_batch(n=2, size=16), spec)
    assert fakes.records[0].artifacts["upsampling"] == {"strength": 0.5, "kind": "nearest", "factor": 4}
    assert fakes.records[0].id.endswith("-upsampling-0.5~factor=4~kind=nearest")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("upsampling[knd=nearest]", "has no option 'knd'; it takes kind, factor"),
        ("upsampling[kind=sideways]", "kind must be one of"),
        ("upsampling[kind]", "is not KEY=VALUE"),
        ("upsampling[kind=nearest", "cannot read artifact"),
    ],
)
def test_bad_spec_options_are_named(text, message):
    with pytest.raises(ArtifactError, match=message.replace("[", r"\[")):
        parse_fake_specs(text)


def test_same_artifact_with_different_options_makes_two_fakes():
    specs = parse_fake_specs("upsampling[kind=nearest],upsampling[kind=bilinear]")
    assert [s.slug for s in specs] == ["upsampling~kind=nearest", "upsampling~kind=bilinear"]


@pytest.mark.parametrize("text", ["irregular_pupils[max_amplitude=-1]", "highlight_mismatch[shift=0]", "iris_mismatch[max_turn=3]"])
def test_scene_artifact_options_are_checked(text):
    with pytest.raises(ArtifactError, match="must be in|needs max_turn"):
        parse_fake_specs(text)


def test_scene_and_camera_artifacts_refuse_plain_pixels_with_a_reason():
    batch = noise_batch(n=1, size=16)
    for name, reason in (("earring_single", "changes the rendered scene"), ("format", "changes the camera pipeline")):
        (spec,) = parse_fake_specs(name)
        with pytest.raises(ArtifactError, match=reason):
            make_fakes(batch, spec)
