"""Face landmarks and region masks recorded by the dataset and StyleGAN sources (as by ``folder``),
so eyes_fixed, background_blur and hair_bleed work on their images (generators/face_records.py).

The wiring tests stand a fixed :class:`~facebench.generators.faces.FaceAnalysis` in for dlib, so
they run without the ``faces`` extra; the last test analyses a real photograph with it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from facebench.generators import face_records, faces
from facebench.generators.artifacts import FFHQ_EYE_LEFT, FFHQ_EYE_RIGHT, ArtifactError, parse_fake_specs
from facebench.generators.dataset import DatasetError
from facebench.generators.dataset.generator import DatasetGenerator
from facebench.generators.stylegan2.loading import save_network
from facebench.harness.cli import app
from facebench.harness.contracts import registry
from facebench.harness.contracts.types import FAKE, REAL
from facebench.harness.data.corpus import Corpus

from test_stylegan2_loading import fixture_generator as stylegan2_fixture
from test_stylegan3_loading import small_generator as stylegan3_small

REGIONS = {"face", "hair", "background"}


def fixed_analysis(image: np.ndarray) -> faces.FaceAnalysis:
    """A face placed by the image's size: eyes at 35% and 65% across, 45% down; a face ellipse,
    hair above it, the background everywhere else."""
    height, width = image.shape[:2]
    y, x = np.mgrid[0:height, 0:width] + 0.5
    face = ((x - 0.5 * width) / (0.3 * width)) ** 2 + ((y - 0.55 * height) / (0.35 * height)) ** 2 <= 1.0
    hair = (y < 0.25 * height) & (np.abs(x - 0.5 * width) < 0.3 * width) & ~face
    landmarks = {"eye_left": (0.35 * width, 0.45 * height), "eye_right": (0.65 * width, 0.45 * height),
                 "mouth_left": (0.4 * width, 0.75 * height), "mouth_right": (0.6 * width, 0.75 * height)}
    return faces.FaceAnalysis(box=(0.2 * width, 0.2 * height, 0.8 * width, 0.9 * height), points=np.zeros((68, 2)),
                              landmarks=landmarks, masks={"face": face, "hair": hair, "background": ~(face | hair)},
                              score=1.23456)


@pytest.fixture
def analysed(monkeypatch):
    """Face analysis stood in by :func:`fixed_analysis`; the images it was asked about, in order."""
    seen: list[np.ndarray] = []

    def analyse(image):
        seen.append(image.copy())
        return fixed_analysis(image)

    monkeypatch.setattr(faces, "require", lambda: None)
    monkeypatch.setattr(faces, "analyse_face", analyse)
    return seen


@pytest.fixture
def no_face(monkeypatch):
    """Face analysis that finds no face in any image."""
    monkeypatch.setattr(faces, "require", lambda: None)
    monkeypatch.setattr(faces, "analyse_face", lambda image: None)


@pytest.fixture
def without_the_extra(monkeypatch):
    """A machine without the ``faces`` extra (no landmark model file)."""
    monkeypatch.setattr(faces, "model_path", lambda: None)

    def refuse(image):
        raise AssertionError("face analysis ran without the extra")

    monkeypatch.setattr(faces, "analyse_face", refuse)


@pytest.fixture(scope="module")
def stylegan2_file(tmp_path_factory):
    return str(save_network(stylegan2_fixture(), tmp_path_factory.mktemp("sg2") / "tiny32.safetensors"))


@pytest.fixture(scope="module")
def stylegan3_file(tmp_path_factory):
    return str(save_network(stylegan3_small(), tmp_path_factory.mktemp("sg3") / "small16.safetensors"))


def stylegan(family: str, network: str, **params):
    return registry.create("generator", family, network=network, **params)


def assert_face_recorded(record, image: np.ndarray) -> None:
    expected = fixed_analysis(image)
    assert record.landmarks == expected.landmarks
    assert set(record.masks) >= REGIONS
    for name in REGIONS:
        assert np.array_equal(record.masks[name], expected.masks[name]), name
    assert record.meta["face"] == {"analysis": faces.ANALYSIS, "box": [round(v, 2) for v in expected.box],
                                   "score": 1.2346}


# ---- the shared functions ------------------------------------------------------------------------


def test_which_artifacts_need_faces_and_when_a_source_analyses_them():
    specs = parse_fake_specs("upsampling,eyes_fixed+hair_bleed,background_blur,blob+eyes_fixed")
    assert face_records.artifacts_needing_faces(specs) == ["eyes_fixed", "hair_bleed", "background_blur"]
    assert face_records.analyses_faces("auto", specs)
    assert not face_records.analyses_faces("off", specs)
    plain = parse_fake_specs("upsampling,blob")
    assert face_records.artifacts_needing_faces(plain) == []
    assert not face_records.analyses_faces("auto", plain)
    assert face_records.analyses_faces("on", plain)
    assert face_records.faces_config("auto") == {} and face_records.faces_config("on") == {"faces": "on"}
    assert face_records.faces_config("off", default="off") == {}
    with pytest.raises(DatasetError, match="faces must be one of off, on, got 'auto'"):
        face_records.check_faces_mode("auto", ("off", "on"), DatasetError)


# ---- StyleGAN ------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["stylegan2", "stylegan3"])
def test_stylegan_records_carry_the_face_when_asked(family, stylegan2_file, stylegan3_file, analysed):
    network = stylegan2_file if family == "stylegan2" else stylegan3_file
    batch = stylegan(family, network, faces="on").generate([0, 1])
    assert len(analysed) == 2
    for image, record, seen in zip(batch.images, batch.records, analysed):
        assert np.array_equal(image, seen)  # the image the record describes was the one analysed
        assert_face_recorded(record, image)
        assert record.meta["network_sha256"]  # the source's own meta is kept


@pytest.mark.parametrize("family", ["stylegan2", "stylegan3"])
def test_eyes_fixed_on_stylegan_images_moves_the_eyes_to_ffhq(family, stylegan2_file, stylegan3_file, analysed):
    network = stylegan2_file if family == "stylegan2" else stylegan3_file
    batch = stylegan(family, network, artifacts="eyes_fixed").generate([0, 1])  # faces="auto"
    assert len(analysed) == 2 and len(batch) == 4
    side = batch.images.shape[1]
    drawn = {r.pair: (image, r) for image, r in zip(batch.images, batch.records) if "eyes_fixed" not in r.artifacts}
    edited = [(image, r) for image, r in zip(batch.images, batch.records) if "eyes_fixed" in r.artifacts]
    assert len(drawn) == 2 and len(edited) == 2
    for image, record in edited:
        assert record.label == FAKE and record.artifacts["eyes_fixed"]["strength"] == 1.0
        assert np.allclose(record.landmarks["eye_left"], np.multiply(FFHQ_EYE_LEFT, side), atol=1e-6)
        assert np.allclose(record.landmarks["eye_right"], np.multiply(FFHQ_EYE_RIGHT, side), atol=1e-6)
        original, _ = drawn[record.pair]
        assert not np.array_equal(image, original)
        assert set(record.masks) >= REGIONS  # the warped masks travel with the face


def test_region_artifacts_on_stylegan_images_stay_in_their_regions(stylegan2_file, analysed):
    batch = stylegan("stylegan2", stylegan2_file, artifacts="background_blur").generate([3])
    (image, record), (fake, fake_record) = zip(batch.images, batch.records)
    mask = fake_record.masks["background_blur"]
    assert mask.any() and (mask <= record.masks["background"]).all()
    assert np.array_equal(fake[~mask], image[~mask])


def test_eyes_fixed_on_a_stylegan_corpus_written_by_the_cli(stylegan2_file, analysed, tmp_path):
    out = tmp_path / "corpus"
    result = CliRunner().invoke(app, ["generate", "stylegan2", "-p", f"network={stylegan2_file}", "--n", "2",
                                      "--artifacts", "eyes_fixed", "--out", str(out)])
    assert result.exit_code == 0, result.output
    corpus = Corpus.open(out)
    assert corpus.meta["counts"] == {"images": 4, "real": 0, "fake": 4}
    edited = [r for r in corpus.records() if "eyes_fixed" in r.artifacts]
    assert len(edited) == 2
    for record in edited:
        assert np.allclose(record.landmarks["eye_left"], np.multiply(FFHQ_EYE_LEFT, 32), atol=1e-4)
        assert record.meta["face"]["analysis"] == faces.ANALYSIS


@pytest.mark.parametrize("family", ["stylegan2", "stylegan3"])
def test_stylegan_defaults_keep_the_config_and_the_records(family, stylegan2_file, stylegan3_file, monkeypatch):
    network = stylegan2_file if family == "stylegan2" else stylegan3_file

    def refuse(image):
        raise AssertionError("face analysis ran although nothing needs it")

    monkeypatch.setattr(faces, "analyse_face", refuse)
    default = stylegan(family, network, artifacts="blob")
    keys = {"network", "network_sha256", "truncation_psi", "truncation_cutoff", "class_idx", "resolution", "artifacts"}
    keys |= {"noise_mode"} if family == "stylegan2" else {"translate", "rotate", "batched"}
    assert set(default.config()) == keys  # the cache keys of existing corpora
    assert stylegan(family, network, faces="on").config()["faces"] == "on"
    assert stylegan(family, network, faces="off").config()["faces"] == "off"
    batch = default.generate([0, 1])
    off = stylegan(family, network, artifacts="blob", faces="off").generate([0, 1])
    assert np.array_equal(batch.images, off.images)
    for record, other in zip(batch.records, off.records, strict=True):
        assert record.with_changes(masks={}) == other.with_changes(masks={})
        assert set(record.masks) == set(other.masks) == ({"blob"} if record.artifacts else set())
        assert all(np.array_equal(record.masks[k], other.masks[k]) for k in record.masks)
    assert all(r.landmarks is None and "face" not in r.meta and not REGIONS & set(r.masks) for r in batch.records)


def test_stylegan_with_face_artifacts_keeps_the_generator_contract(stylegan2_file, analysed):
    from facebench.generators.stylegan2.generator import StyleGAN2Generator
    from facebench.testing import check_generator

    check_generator(StyleGAN2Generator, seeds=[0, 1], network=stylegan2_file, artifacts="eyes_fixed,background_blur")
    assert analysed  # the contract was checked with the faces analysed


def test_stylegan_checks_the_faces_option(stylegan2_file):
    with pytest.raises(registry.PluginError, match="faces must be one of auto, on, off, got 'yes'"):
        stylegan("stylegan2", stylegan2_file, faces="yes")


def test_stylegan_without_the_extra_names_it_in_one_line(stylegan2_file, without_the_extra):
    gen = stylegan("stylegan2", stylegan2_file, artifacts="eyes_fixed")
    with pytest.raises(ArtifactError, match=r"^artifact 'eyes_fixed' on stylegan2 images needs face landmarks and "
                                            r"region masks: pip install 'facebench\[faces\]'$") as caught:
        gen.generate([0])
    assert "\n" not in str(caught.value)
    with pytest.raises(ArtifactError, match=r"^faces='on' needs .*pip install 'facebench\[faces\]'$"):
        stylegan("stylegan2", stylegan2_file, faces="on").generate([0])
    assert stylegan("stylegan2", stylegan2_file).generate([0]).records[0].landmarks is None


def test_a_stylegan_image_without_a_face_is_named(stylegan2_file, stylegan3_file, no_face):
    with pytest.raises(ArtifactError, match=r"^artifact 'hair_bleed' needs face landmarks, and no face was found in "
                                            r"image 'stylegan3 seed 7'; draw other seeds, or drop the artifact$"):
        stylegan("stylegan3", stylegan3_file, artifacts="hair_bleed").generate([7])
    batch = stylegan("stylegan2", stylegan2_file, faces="on").generate([7])  # nothing needs it: no face, no error
    assert batch.records[0].landmarks is None and "face" not in batch.records[0].meta


# ---- the dataset source --------------------------------------------------------------------------


def small_dataset(root: Path) -> Path:
    """A CNNDetection-style tree of one generator: two reals, two fakes, mixed sizes."""
    rng = np.random.default_rng(0)
    for folder, sizes in (("0_real", [(40, 48), (64, 64)]), ("1_fake", [(56, 40), (48, 48)])):
        (root / "gen" / folder).mkdir(parents=True)
        for i, (width, height) in enumerate(sizes):
            pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / "gen" / folder / f"{i}.png")
    return root


@pytest.mark.parametrize("resolution", [32, "native"])
def test_dataset_with_faces_on_records_every_image_s_face(tmp_path, analysed, resolution):
    source = DatasetGenerator(str(small_dataset(tmp_path / "data")), resolution=resolution, faces="on")
    batch = source.generate(range(source.count()))
    assert [r.label for r in batch.records] == [REAL, FAKE, REAL, FAKE]
    assert len(analysed) == 4
    for image, record, seen in zip(batch.images, batch.records, analysed):
        assert np.array_equal(image, seen)
        assert_face_recorded(record, image)
        assert record.meta["layout"] == "cnndetection" and "file" in record.meta


def test_dataset_defaults_keep_the_config_and_the_records(tmp_path, monkeypatch):
    def refuse(image):
        raise AssertionError("face analysis ran although faces is off")

    monkeypatch.setattr(faces, "analyse_face", refuse)
    root = small_dataset(tmp_path / "data")
    default = DatasetGenerator(str(root), resolution=32)
    assert set(default.config()) == {"path", "subset", "resolution", "harmonise", "layout", "split", "reals",
                                     "image_column", "label_column", "content_digest"}
    assert DatasetGenerator(str(root), resolution=32, faces="on").config()["faces"] == "on"
    batch = default.generate([0, 1, 2, 3])
    assert all(r.landmarks is None and not r.masks and "face" not in r.meta for r in batch.records)
    with pytest.raises(DatasetError, match="faces must be one of off, on, got 'auto'"):
        DatasetGenerator(str(root), faces="auto")


def test_dataset_without_the_extra_names_it_in_one_line(tmp_path, without_the_extra):
    source = DatasetGenerator(str(small_dataset(tmp_path / "data")), resolution=32, faces="on")
    with pytest.raises(ArtifactError, match=r"^faces='on' needs face landmarks and region masks: "
                                            r"pip install 'facebench\[faces\]'$"):
        source.generate([0])


def test_a_dataset_image_without_a_face_gets_none(tmp_path, no_face):
    source = DatasetGenerator(str(small_dataset(tmp_path / "data")), resolution=32, faces="on")
    record = source.generate([1]).records[0]
    assert record.landmarks is None and not record.masks and "face" not in record.meta


# ---- with the real extra -------------------------------------------------------------------------


@pytest.mark.skipif(not faces.available(), reason=f"face analysis not installed: {faces.FACES_EXTRA}")
def test_the_dataset_source_finds_the_astronaut_s_face(tmp_path):
    data = pytest.importorskip("skimage.data", reason="scikit-image ships the astronaut photograph")
    astronaut = Image.fromarray(data.astronaut())
    root = tmp_path / "astronauts"
    for folder, photo in (("0_real", astronaut), ("1_fake", astronaut.transpose(Image.Transpose.FLIP_LEFT_RIGHT))):
        (root / "gen" / folder).mkdir(parents=True)
        photo.save(root / "gen" / folder / "astronaut.png")
    batch = DatasetGenerator(str(root), resolution=256, faces="on").generate([0, 1])
    real, fake = batch.records
    assert (real.label, fake.label) == (REAL, FAKE)
    for record in batch.records:
        assert {"eye_left", "eye_right", "mouth_left", "mouth_right"} <= set(record.landmarks)
        assert set(record.masks) == REGIONS
        assert record.meta["face"]["analysis"] == faces.ANALYSIS
        for eye in ("eye_left", "eye_right"):
            x, y = (int(v) for v in record.landmarks[eye])
            assert record.masks["face"][y, x] and not record.masks["background"][y, x]
        assert record.landmarks["eye_left"][0] < record.landmarks["eye_right"][0]
    # the fake is the real mirrored: its image-left eye is the real's image-right eye, mirrored
    mirrored = 256 - fake.landmarks["eye_left"][0]
    assert abs(mirrored - real.landmarks["eye_right"][0]) < 3.0
    assert abs(fake.landmarks["eye_left"][1] - real.landmarks["eye_right"][1]) < 3.0
