"""The null control (issue 15, part 3): a control that can fail.

Seen: the ``none`` control makes every fake a byte copy of its real, so any detector ties each
pair and prints ``0.500 [0.50, 0.50]``: it cannot catch a leak. The ``null`` control's fakes are
other real images of the same generator and camera, from seeds outside the corpus. A sound
pipeline's AUC interval on it covers 0.5 with real width; a leaky one (pairs across the split,
a file-format shortcut) lands away from 0.5. The reports keep controls out of the ranking.

Corpora are parametric, 128 px, 60 seeds, written to disk and split by pair with the
harness's own split (seed 0), so each figure below is one fixed, repeatable draw.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from rich.console import Console

from facebench.detectors.spectrum import SpectrumDetector
from facebench.generators.artifacts import (
    NULL_SEED_OFFSET,
    ArtifactError,
    make_fakes,
    null_fakes,
    null_source_seed,
    parse_fake_specs,
    refuse_null,
)
from facebench.generators.folder import FolderError, FolderGenerator
from facebench.generators.parametric import ParametricGenerator
from facebench.harness.data.corpus import write_corpus
from facebench.harness.run.metrics import metrics_with_ci
from facebench.harness.report.text import (
    board_dict,
    build_leaderboard,
    control_verdict,
    is_control,
    print_leaderboard,
    tables,
    to_markdown,
)
from facebench.harness.data.suite import load_suite
from facebench.harness.contracts.types import FAKE, REAL, Batch

RES = 128
SEEDS = 60


# --------------------------------------------------------------------------- making the control


@pytest.fixture(scope="module")
def generator():
    return ParametricGenerator(resolution=RES, artifacts="null")


@pytest.fixture(scope="module")
def null_batch(generator):
    return generator.generate(range(SEEDS))


def reals_of(batch: Batch) -> Batch:
    keep = [i for i, r in enumerate(batch.records) if r.label == REAL]
    return Batch(batch.images[keep], [batch.records[i] for i in keep])


def test_null_fake_is_the_real_of_a_seed_outside_the_corpus(generator, null_batch):
    reals = reals_of(null_batch)
    fakes = [(image, r) for image, r in zip(null_batch.images, null_batch.records) if r.label == FAKE]
    assert len(fakes) == len(reals) == SEEDS
    plain = ParametricGenerator(resolution=RES, artifacts="none")  # the reals any parametric corpus holds
    sources = reals_of(plain.generate([null_source_seed(s) for s in (0, 7)]))
    by_seed = {r.seed: (image, r) for image, r in fakes}
    for source_image, source in zip(sources.images, sources.records):
        image, fake = by_seed[source.seed - NULL_SEED_OFFSET]
        np.testing.assert_array_equal(image, source_image)  # the other seed's photograph, byte for byte
        assert fake.pair == f"parametric-{fake.seed:08d}" and fake.id == f"{fake.pair}-null"
        assert fake.artifacts["null"]["source_seed"] == source.seed == fake.seed + NULL_SEED_OFFSET
        assert fake.landmarks == source.landmarks
    # no image appears twice, so none can sit on both sides of a split by pair
    digests = {image.tobytes() for image in null_batch.images}
    assert len(digests) == len(null_batch)


def test_null_refuses_seeds_that_reach_its_sources():
    with pytest.raises(ArtifactError, match="seeds must be in"):
        ParametricGenerator(resolution=64, artifacts="null").generate([NULL_SEED_OFFSET])


def test_controls_stand_alone_and_stay_out_of_all():
    for text in ("null+upsampling", "upsampling+none"):
        with pytest.raises(ArtifactError, match="is a control and cannot be joined"):
            parse_fake_specs(text)
    assert {"none", "null"}.isdisjoint(spec.slug for spec in parse_fake_specs("all"))
    assert [s.slug for s in parse_fake_specs("null,none,upsampling")] == ["null", "none", "upsampling"]


def test_null_needs_a_generator_that_makes_reals(null_batch):
    reals = reals_of(null_batch)
    with pytest.raises(ArtifactError, match="makes no real images"):
        make_fakes(reals, parse_fake_specs("null")[0])
    with pytest.raises(ArtifactError, match="stylegan2"):
        refuse_null(parse_fake_specs("blob,null"), "stylegan2")
    refuse_null(parse_fake_specs("blob,none"), "stylegan2")  # none is a copy: fine anywhere
    with pytest.raises(ArtifactError, match="another seed"):
        null_fakes(reals, reals)  # a fake that is its own real


def test_folder_null_fakes_come_from_the_second_half(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(7):  # 7 photos: seeds 0..2, null sources 3..5, the last one unused
        Image.fromarray(np.full((20, 20, 3), 30 * i, np.uint8)).save(folder / f"{i}.png")
    gen = FolderGenerator(str(folder), resolution=16, artifacts="null")
    assert gen.count() == 3
    batch = gen.generate(range(3))
    fakes = [(image, r) for image, r in zip(batch.images, batch.records) if r.label == FAKE]
    for image, fake in fakes:
        np.testing.assert_array_equal(image, gen.load(gen.files[fake.seed + 3]))
        assert fake.artifacts["null"]["source_seed"] == fake.seed + 3 and fake.id == f"folder-{fake.seed:08d}-null"
    with pytest.raises(FolderError, match="null control.*seeds are 0..2"):
        gen.generate([3])
    assert FolderGenerator(str(folder), resolution=16).count() == 7  # without null every photo is a seed
    lone = tmp_path / "lone"
    lone.mkdir()
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(lone / "a.png")
    with pytest.raises(FolderError, match="at least 2 images"):
        FolderGenerator(str(lone), resolution=16, artifacts="null")


def test_default_suite_uses_the_null_control():
    (control,) = [g for g in load_suite("default").generators if g.label == "control"]
    assert control.params["artifacts"] == "null"


# --------------------------------------------------------------------------- a control that can fail


class Memoriser:
    """A 1-nearest-neighbour detector: remembers every training image and its label.

    Honest on unseen images; on an image it saw in training it answers that image's label.
    """

    def fit(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.x = images.reshape(len(images), -1).astype(np.float64)
        self.y = np.asarray(labels)

    def score(self, images: np.ndarray) -> np.ndarray:
        x = images.reshape(len(images), -1).astype(np.float64)
        d = (x**2).sum(1)[:, None] + (self.x**2).sum(1)[None] - 2 * x @ self.x.T
        d = np.maximum(d, 0.0)
        to_real, to_fake = d[:, self.y == 0].min(1), d[:, self.y == 1].min(1)
        return to_real / (to_real + to_fake + 1e-9)


class JpegTrace:
    """Keyed to a shortcut: scores an image fake the weaker its 8x8 JPEG block edges are."""

    def fit(self, images: np.ndarray, labels: np.ndarray) -> None:
        pass

    def score(self, images: np.ndarray) -> np.ndarray:
        grey = images.astype(np.float64).mean(-1)
        steps = np.abs(np.diff(grey, axis=2))
        edge = np.arange(steps.shape[2]) % 8 == 7
        return -steps[:, :, edge].mean((1, 2)) / steps[:, :, ~edge].mean((1, 2))


def null_auc(tmp_path, batch: Batch, detector, name: str) -> tuple[float, float, float]:
    """AUC [95% CI] of ``detector`` fitted on the train side of ``batch``'s corpus, on its test side."""
    corpus = write_corpus(tmp_path / name, [batch], [{"name": "test"}])
    train, test = corpus.split(0.5, seed=0)
    detector.fit(train.load_images(), train.labels)
    scores = detector.score(test.load_images())
    pairs = np.array(test.manifest.column("pair").to_pylist())
    auc = metrics_with_ci(test.labels, scores, pairs, metric_names=["auc"], n_resamples=1000, seed=0)["auc"]
    return auc["value"], auc["ci_low"], auc["ci_high"]


def covers_half(auc: tuple[float, float, float]) -> bool:
    return auc[1] <= 0.5 <= auc[2] and auc[2] - auc[1] >= 0.1


def test_none_control_cannot_fail(tmp_path, null_batch):
    # the seen defect: byte copies tie every pair, whatever the detector, so the AUC is 0.5 with no width
    reals = reals_of(null_batch)
    copies = Batch.concat([reals, make_fakes(reals, parse_fake_specs("none")[0])])
    assert null_auc(tmp_path, copies, Memoriser(), "none") == (0.5, 0.5, 0.5)


def test_honest_detector_covers_half_with_real_width(tmp_path, null_batch):
    auc = null_auc(tmp_path, null_batch, SpectrumDetector(), "honest")
    assert covers_half(auc), auc


def test_split_leakage_is_flagged(tmp_path, null_batch):
    # a naive null control drawn from the corpus's own reals: pair i's fake is pair i+1's real, so
    # an image can be a fake in training and a real in testing; a memorising detector reads that
    reals = reals_of(null_batch)
    others = Batch(np.roll(reals.images, -1, axis=0), reals.records[1:] + reals.records[:1])
    leaky = Batch.concat([reals, null_fakes(reals, others)])
    flagged = null_auc(tmp_path, leaky, Memoriser(), "leaky")
    assert flagged[2] < 0.5, flagged
    assert covers_half(null_auc(tmp_path, null_batch, Memoriser(), "sound")), "the sound null control is flagged"


def test_format_shortcut_is_flagged(tmp_path, generator, null_batch):
    # a null control whose fakes skipped the camera's JPEG (e.g. kept as PNG while the reals are JPEG)
    reals = reals_of(null_batch)
    sources = generator.render([null_source_seed(r.seed) for r in reals.records])
    shortcut = Batch.concat([reals, null_fakes(reals, generator.photograph(sources, {"lossless": 1.0}))])
    flagged = null_auc(tmp_path, shortcut, JpegTrace(), "shortcut")
    assert flagged[1] > 0.5, flagged
    assert covers_half(null_auc(tmp_path, null_batch, JpegTrace(), "sound")), "the sound null control is flagged"


# --------------------------------------------------------------------------- reports


def metric(corpus, detector, artifact, name, value, low=None, high=None, perturbation="none"):
    return {"corpus": corpus, "detector": detector, "artifact": artifact, "metric": name, "value": value,
            "ci_low": low, "ci_high": high, "perturbation": perturbation, "n_real": 40, "n_fake": 40}


@pytest.fixture
def board():
    rows = []
    for detector, auc in (("alpha", 0.7), ("beta", 0.8)):
        for artifact in ("all", "upsampling"):
            rows.append(metric("parametric", detector, artifact, "auc", auc, auc - 0.1, auc + 0.1))
        rows.append(metric("parametric", detector, "all", "auc", auc - 0.2, perturbation="jpeg:75"))
        rows.append(metric("parametric", detector, "upsampling", "score_shift", 0.3, 0.2, 0.4))
    # a leak: alpha's null row beats every real row, and must not top the leaderboard
    for detector, (auc, low, high) in (("alpha", (0.99, 0.97, 1.0)), ("beta", (0.52, 0.40, 0.64))):
        for artifact in ("all", "null"):
            rows.append(metric("control", detector, artifact, "auc", auc, low, high))
        rows.append(metric("control", detector, "all", "auc", 0.5, 0.4, 0.6, perturbation="jpeg:75"))
    for detector, shift in (("alpha", 0.0), ("beta", 0.002)):
        for artifact in ("all", "none"):
            rows.append(metric("copies", detector, artifact, "auc", 0.5, 0.5, 0.5))
        rows.append(metric("copies", detector, "none", "score_shift", shift, shift, shift))
    return build_leaderboard({"run_id": "r1", "suite": "s"}, rows)


def test_is_control():
    assert is_control("null") and is_control("none")
    assert is_control("all", {"all", "null"}) and is_control("all", {"all", "none", "null"})
    assert not is_control("all", {"all", "null", "upsampling"})  # a mixed corpus's "all" row is ranked
    assert not is_control("all", {"all"})  # e.g. a folder of fakes with no artifact recorded
    assert not is_control("upsampling", {"all", "upsampling"})


def test_controls_have_their_own_section_and_never_rank(board):
    specs = {spec.key: spec for spec in tables(board)}
    ranked = [row for key in ("detection", "robustness", "sensitivity") for row in specs[key].rows]
    assert ranked and all(row[0] == "parametric" for row in ranked)
    assert specs["detection"].rows[0][:3] == ("parametric", "all", "beta")
    controls = {(row[0], row[1], row[2]): row[-1] for row in specs["controls"].rows}
    assert controls == {
        ("control", "null", "alpha"): "FLAG: AUC above 0.5, CI excludes it: a leak or shortcut?",
        ("control", "null", "beta"): "ok: CI covers 0.5",
        ("copies", "none", "alpha"): "ok: exact copies, shift 0",
        ("copies", "none", "beta"): "FLAG: identical images scored +0.002 apart",
    }
    markdown = to_markdown(board)
    detection, rest = markdown.split("## Detection", 1)[1].split("## Controls", 1)
    assert "control" not in detection and "copies" not in detection and "FLAG: AUC above 0.5" in rest
    console = Console(record=True, width=200)
    print_leaderboard(board, console)
    text = console.export_text()
    assert "controls, corpus control" in text and "FLAG: AUC above 0.5" in text
    flags = {(c["corpus"], c["artifact"]): c["control"] for c in board_dict(board)["cells"]}
    assert flags[("control", "all")] and flags[("copies", "all")] and flags[("control", "null")]
    assert not flags[("parametric", "all")] and not flags[("parametric", "upsampling")]


def test_control_verdict_without_width_or_interval(board):
    cell = next(c for c in board.cells if c.corpus == "control" and c.artifact == "null" and c.detector == "beta")
    cell.values["auc"] = (0.5, 0.5, 0.5)
    assert control_verdict(cell) == "no width: every image scored alike"
    cell.values["auc"] = (0.5, None, None)
    assert control_verdict(cell) == "no interval"
    cell.values["auc"] = (0.3, 0.2, 0.4)
    assert control_verdict(cell).startswith("FLAG: AUC below 0.5")


SUITE = """
name = "null-e2e"
[split]
test_fraction = 0.5
calibration_fraction = 0
[bootstrap]
resamples = 200
[throughput]
batch_sizes = []

[[generators]]
name = "parametric"
label = "up"
count = 40
[generators.params]
resolution = 64
artifacts = "upsampling"

[[generators]]
name = "parametric"
label = "control"
count = 40
seed_start = 5000
[generators.params]
resolution = 64
artifacts = "null"

[[detectors]]
name = "spectrum"
"""


def test_a_run_reports_the_null_control_apart(tmp_path):
    from facebench.harness.run.runner import run_suite
    from facebench.harness.data.store import Store

    (tmp_path / "suite.toml").write_text(SUITE)
    result = run_suite(load_suite(tmp_path / "suite.toml"), tmp_path / "results", show_progress=False)
    assert result.errors == []
    store = Store(tmp_path / "results" / "facebench.sqlite")
    board = build_leaderboard(result.run, store.metrics(result.run["run_id"]))
    specs = {spec.key: spec for spec in tables(board)}
    assert {row[0] for row in specs["detection"].rows} == {"up"}
    ((corpus, control, detector, auc, *_, verdict),) = specs["controls"].rows
    assert (corpus, control, detector) == ("control", "null", "spectrum")
    assert verdict == "ok: CI covers 0.5", auc
