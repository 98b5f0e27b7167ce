"""Native image sizes: input policies, the folder generator's native mode, and a corpus of mixed
sizes scored end to end by a crop-224 detector and an any-size detector (no global resize)."""

from __future__ import annotations

import re

from collections import defaultdict

import numpy as np
import pytest
from PIL import Image

from facebench.generators.folder import FolderError, FolderGenerator
from facebench.harness.contracts import registry
from facebench.harness.contracts.detector import FeatureDetector
from facebench.harness.contracts.input_policy import InputPolicy, InputPolicyError, policy_of
from facebench.harness.contracts.types import Batch
from facebench.harness.data.corpus import Corpus, CorpusError
from facebench.harness.data.suite import parse_suite
from facebench.harness.run.inputs import detector_inputs, size_batches
from facebench.harness.run.runner import run_suite

#: (width, height) of the images of each folder, cycled: four sizes, none square but two.
SIZES = [(230, 240), (256, 256), (300, 260), (224, 224)]
#: shape of every batch each recording detector received, by detector name
SEEN: dict[str, list[tuple[int, ...]]] = defaultdict(list)


class _Recording:
    """Needs no fit; scores the mean pixel (so a score can be checked against the file); records shapes."""

    version = "0.1.0"
    requires_fit = False
    inputs = ("pixels",)
    score_range = (0.0, 1.0)
    device = "cpu"
    batch_size = 5
    name: str

    def fit(self, images, labels):
        raise AssertionError("a detector that needs no fit is never fitted")

    def score(self, images):
        assert images.dtype == np.uint8 and images.ndim == 4
        SEEN[self.name].append(images.shape)
        return images.reshape(len(images), -1).mean(axis=1) / 255.0


class SeenAny(_Recording):
    name = "seen_any"
    input_policy = "any"


class SeenCrop(_Recording):
    name = "seen_crop"
    input_policy = "centre_crop:224"


@pytest.fixture(autouse=True)
def recording_detectors(monkeypatch):
    targets = tuple(f"{__name__}:{cls.__name__}" for cls in (SeenAny, SeenCrop))
    monkeypatch.setitem(registry.BUILTINS, "detector", (*registry.BUILTINS["detector"], *targets))
    SEEN.clear()


def write_folder(root, n, offset):
    rng = np.random.default_rng(offset)
    for i in range(n):
        width, height = SIZES[(i + offset) % len(SIZES)]
        root.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / f"{i:03d}.png")


# --------------------------------------------------------------------------- policies


def test_policy_specs_parse_print_and_describe():
    for spec in ("any", "even", "centre_crop:224", "crop_or_pad:224", "resize:256:bicubic"):
        assert str(InputPolicy.parse(spec)) == spec
    assert str(InputPolicy.parse("resize:64")) == "resize:64:bilinear"
    assert "padded with black" in InputPolicy.parse("crop_or_pad:224").describe()
    for bad in ("crop:224", "centre_crop", "centre_crop:x", "resize:64:sharp", "any:3"):
        with pytest.raises(InputPolicyError):
            InputPolicy.parse(bad)
    assert policy_of(object()) == InputPolicy("any")


def test_policies_give_the_sizes_they_promise():
    image = np.arange(7 * 9 * 3, dtype=np.uint8).reshape(7, 9, 3)
    assert InputPolicy.parse("any").apply(image) is image
    np.testing.assert_array_equal(InputPolicy.parse("even").apply(image), image[:6, :8])
    np.testing.assert_array_equal(InputPolicy.parse("centre_crop:5").apply(image), image[1:6, 2:7])
    with pytest.raises(InputPolicyError, match="smaller than the 8x8 centre crop"):
        InputPolicy.parse("centre_crop:8").apply(image, "image x")
    padded = InputPolicy.parse("crop_or_pad:8").apply(image)  # 7 rows padded to 8 (extra at the bottom), 9 columns cropped
    assert padded.shape == (8, 8, 3)
    np.testing.assert_array_equal(padded[:7], image[:, 0:8])  # round((9 - 8) / 2) = 0 (Python rounds to even)
    assert not padded[7].any()
    assert InputPolicy.parse("resize:4:nearest").apply(image).shape == (4, 4, 3)


def test_crop_or_pad_matches_clips_own_centre_crop():
    torch = pytest.importorskip("torch")
    from facebench.detectors.clip_vision import clip_preprocess

    rng = np.random.default_rng(0)
    for height, width in ((20, 30), (9, 31), (40, 17), (24, 24)):
        images = rng.integers(0, 256, (2, height, width, 3), dtype=np.uint8)
        policy = InputPolicy.parse("crop_or_pad:24")
        seen = np.stack([policy.apply(image) for image in images])
        torch.testing.assert_close(clip_preprocess(seen, 24), clip_preprocess(images, 24))


def test_batches_group_by_size_and_keep_consecutive_rows_for_one_size():
    one = [(8, 8)] * 7
    assert [b.tolist() for b in size_batches(one, 3)] == [[0, 1, 2], [3, 4, 5], [6]]
    mixed = [(8, 8), (9, 9), (8, 8), (9, 9), (8, 8)]
    assert [b.tolist() for b in size_batches(mixed, 2)] == [[0, 2], [4], [1, 3]]
    images = [np.zeros((h, w, 3), np.uint8) for h, w in mixed]
    groups = detector_inputs(images, InputPolicy.parse("crop_or_pad:8"))
    assert [(p.tolist(), a.shape) for p, a in groups] == [([0, 1, 2, 3, 4], (5, 8, 8, 3))]


# --------------------------------------------------------------------------- folder, native


def test_the_folder_generator_keeps_native_sizes_and_refuses_artifacts(tmp_path):
    write_folder(tmp_path / "photos", 4, 0)
    batch = FolderGenerator(str(tmp_path / "photos"), resolution="native").generate(range(4))
    assert batch.mixed_sizes and [image.shape[:2] for image in batch.images] == [(h, w) for w, h in SIZES]
    fixed = FolderGenerator(str(tmp_path / "photos"), resolution=64).generate(range(4))
    assert not fixed.mixed_sizes and fixed.images.shape == (4, 64, 64, 3)
    with pytest.raises(FolderError, match="resolution='native' takes no artifacts"):
        FolderGenerator(str(tmp_path / "photos"), resolution="native", artifacts="upsampling")
    with pytest.raises(FolderError, match="or 'native'"):
        FolderGenerator(str(tmp_path / "photos"), resolution="big")
    both = Batch.concat([batch, fixed])
    assert both.mixed_sizes and len(both) == 8


def test_a_corpus_of_mixed_sizes_refuses_to_stack_but_lists(tmp_path):
    write_folder(tmp_path / "photos", 4, 0)
    from facebench.harness.data.corpus import write_corpus

    batch = FolderGenerator(str(tmp_path / "photos"), resolution="native").generate(range(4))
    corpus = write_corpus(tmp_path / "corpus", [batch], [{"name": "folder"}])
    assert corpus.sizes == [(h, w) for w, h in SIZES]
    assert [image.shape[:2] for image in corpus.load_image_list()] == corpus.sizes
    with pytest.raises(CorpusError, match="4 sizes"):
        corpus.load_images()


# --------------------------------------------------------------------------- end to end


SUITE = {
    "name": "native",
    "split": {"test_fraction": 0.5, "calibration_fraction": 0.25, "seed": 0},
    "bootstrap": {"resamples": 50},
    "protocols": {"perturbations": ["jpeg:75"]},
    "throughput": {"measure": True, "warmup": 0, "rounds": 1, "min_seconds": 0.0, "batch_sizes": [2], "images": 8},
}


def test_a_mixed_size_corpus_is_scored_by_a_crop_224_and_an_any_size_detector(tmp_path):
    write_folder(tmp_path / "fakes", 24, 1)
    write_folder(tmp_path / "reals", 24, 0)
    generator = {"name": "folder", "label": "mixed", "count": 24, "batch_size": 10,
                 "params": {"path": str(tmp_path / "fakes"), "label": "fake", "resolution": "native"},
                 "reals": {"name": "folder", "count": 24,
                           "params": {"path": str(tmp_path / "reals"), "label": "real", "resolution": "native"}}}
    suite = parse_suite({**SUITE, "generators": [generator],
                         "detectors": [{"name": "seen_any"}, {"name": "seen_crop"}, {"name": "spectrum"}]}, "native.toml")
    result = run_suite(suite, tmp_path / "results", show_progress=False)
    assert not result.errors, result.errors
    corpus = Corpus.open(result.corpora[0].path)
    native = {(h, w) for h, w in corpus.sizes}
    assert len(native) == 4  # the corpus kept every size: nothing resized it
    # the crop detector saw 224 x 224 only; the any-size detector each native size, one size per batch
    assert {shape[1:] for shape in SEEN["seen_crop"]} == {(224, 224, 3)}
    assert {shape[1:3] for shape in SEEN["seen_any"]} == native
    assert max(shape[0] for shape in SEEN["seen_any"] + SEEN["seen_crop"]) <= 5  # the detector's batch size
    # every score is that image's own (rows and scores stay in order), on the clean test split
    images = {row["id"]: image for row, image in zip(corpus.rows(), corpus.load_image_list())}
    crop = InputPolicy.parse("centre_crop:224")
    clean = [s for s in result.scores if s["perturbation"] == "none" and s["detector"] in ("seen_any", "seen_crop")]
    assert len(clean) == 2 * len([s for s in result.scores if s["perturbation"] == "none" and s["detector"] == "spectrum"])
    for s in clean:
        pixels = images[s["id"]] if s["detector"] == "seen_any" else crop.apply(images[s["id"]])
        assert s["score"] == pytest.approx(pixels.mean() / 255.0, abs=1e-12)
    # the any-size detector that learns was fitted on every size, and timed on one
    assert any(m["detector"] == "spectrum" and m["metric"] == "auc" for m in result.metrics)
    # the crop detector sees one size; an any-size detector's row says which of the sizes it was timed at
    names = {t["name"] for t in result.throughput if t["kind"] in ("detector", "sweep")}
    assert "seen_crop @ mixed" in names
    timed = [name for name in names if name.startswith("spectrum @ mixed ")]
    assert timed and all(re.fullmatch(r"spectrum @ mixed \[timed at \d+x\d+: \d+ of \d+ images, [34] sizes\]", n)
                         for n in timed), names


def test_a_detector_that_fits_on_one_size_is_told_in_one_line(tmp_path):
    write_folder(tmp_path / "fakes", 8, 1)
    write_folder(tmp_path / "reals", 8, 0)
    generator = {"name": "folder", "label": "mixed", "count": 8, "batch_size": 8,
                 "params": {"path": str(tmp_path / "fakes"), "label": "fake", "resolution": "native"},
                 "reals": {"name": "folder", "count": 8,
                           "params": {"path": str(tmp_path / "reals"), "label": "real", "resolution": "native"}}}
    suite = parse_suite({**SUITE, "throughput": {"measure": False}, "generators": [generator],
                         "detectors": [{"name": "cnn", "params": {"epochs": 1}}]}, "native.toml")
    result = run_suite(suite, tmp_path / "results", show_progress=False)
    (error,) = result.errors
    assert "fits on images of one size" in error["message"] and "\n" not in error["message"]


def test_feature_detectors_fit_on_several_sizes_as_on_one():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (12, 32, 32, 3), dtype=np.uint8)
    labels = np.array([0, 1] * 6)
    one = registry.create("detector", "spectrum")
    one.fit(images, labels)
    two = registry.create("detector", "spectrum")
    assert isinstance(two, FeatureDetector)
    two.fit_sizes([images[:5], images[5:]], labels)
    np.testing.assert_allclose(one.score(images), two.score(images))


def test_list_and_info_show_each_detectors_input_policy_in_words():
    from typer.testing import CliRunner

    from facebench.harness.cli import app

    listed = CliRunner().invoke(app, ["list"], terminal_width=200)
    assert listed.exit_code == 0
    rows = {line.split("│")[2].strip(): line for line in listed.output.splitlines() if line.count("│") > 5}
    assert "crop or pad 224" in rows["univfd"] and "any size, even" in rows["npr"] and "any size" in rows["spectrum"]
    info = CliRunner().invoke(app, ["info", "npr"], terminal_width=200)
    assert info.exit_code == 0 and "input size: any size, cut to even (an odd height or width loses its last row" in info.output
