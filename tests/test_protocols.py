"""The runner's protocols: calibration split, perturbations, cross-generator matrix,
counterfactual sensitivity, the task cache and the throughput sweep."""

import math

import numpy as np
import pyarrow.parquet as pq
import pytest

from facebench.harness.run.runner import run_suite
from facebench.harness.run.sensitivity import counterfactual_pairs, sensitivity
from facebench.harness.data.suite import SuiteError, load_suite

SUITE = """
name = "protocols"
[split]
test_fraction = 0.5
calibration_fraction = 0.3
seed = 0
[protocols]
cross_generator = true
perturbations = ["jpeg:50"]
[bootstrap]
resamples = 200
[throughput]
batch_sizes = [1, 4]
rounds = 1
warmup = 0
images = 8

[[generators]]
name = "parametric"
label = "up"
count = 40
batch_size = 20
[generators.params]
resolution = 64
artifacts = "upsampling:0.4"

[[generators]]
name = "parametric"
label = "control"
count = 24
seed_start = 5000
batch_size = 24
[generators.params]
resolution = 64
artifacts = "none"

[[detectors]]
name = "spectrum"
batch_size = 16

[[detectors]]
name = "shifted"
"""


class ShiftedSpectrum:
    """The spectrum detector with every score pushed above 0.5: useless at a fixed 0.5 threshold."""

    name = "shifted"
    version = "1"
    requires_fit = True
    inputs = "pixels"
    batch_size = 32

    def __init__(self):
        from facebench.detectors.spectrum import SpectrumDetector

        self.inner = SpectrumDetector()

    def fit(self, images, labels):
        self.inner.fit(images, labels)

    def score(self, images):
        return 0.5 + 0.5 * np.asarray(self.inner.score(images))


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    from facebench.harness.contracts import registry

    patch = pytest.MonkeyPatch()
    patch.setitem(registry.BUILTINS, "detector", (*registry.BUILTINS["detector"], f"{__name__}:ShiftedSpectrum"))
    root = tmp_path_factory.mktemp("protocols")
    path = root / "suite.toml"
    path.write_text(SUITE)
    suite = load_suite(path)
    yield suite, root, run_suite(suite, root / "results", show_progress=False)
    patch.undo()


def _rows(result, detector="spectrum", **match):
    return [m for m in result.metrics if m["detector"] == detector and all(m[k] == v for k, v in match.items())]


def test_every_train_test_pair_and_perturbation_is_scored(first_run):
    _, _, result = first_run
    assert result.errors == []
    cells = {(m["train_corpus"], m["corpus"], m["perturbation"]) for m in result.metrics}
    assert cells == {(a, b, p) for a in ("up", "control") for b in ("up", "control") for p in ("none", "jpeg:50")}


def test_auc_carries_a_bootstrap_interval_around_it(first_run):
    _, _, result = first_run
    (auc,) = _rows(result, train_corpus="up", corpus="up", perturbation="none", artifact="all", metric="auc")
    assert auc["ci_low"] <= auc["value"] <= auc["ci_high"]
    assert auc["value"] > 0.8  # spectrum sees upsampling even at 64 px
    (acc,) = _rows(result, train_corpus="up", corpus="up", perturbation="none", artifact="all", metric="balanced_accuracy")
    assert acc["ci_low"] < acc["value"] < acc["ci_high"]  # an imperfect figure has an interval of some width


def test_calibrated_accuracy_uses_the_held_out_split(first_run):
    _, _, result = first_run
    names = {m["metric"] for m in _rows(result, train_corpus="up", corpus="up", artifact="all")}
    assert {"accuracy_calibrated", "balanced_accuracy_calibrated"} <= names
    (cal,) = _rows(result, "shifted", train_corpus="up", corpus="up", perturbation="none", artifact="all",
                   metric="balanced_accuracy_calibrated")
    (fixed,) = _rows(result, "shifted", train_corpus="up", corpus="up", perturbation="none", artifact="all",
                     metric="balanced_accuracy")
    # every score is above 0.5, so 0.5 calls everything fake; a threshold from held-out pairs does not
    assert fixed["value"] == 0.5
    assert cal["value"] > 0.75


def test_perturbed_scores_differ_from_clean_ones(first_run):
    _, _, result = first_run
    scores = pq.read_table(result.run_dir / "scores.parquet").to_pylist()
    clean = {s["id"]: s["score"] for s in scores if s["perturbation"] == "none" and s["corpus"] == s["train_corpus"] == "up"}
    jpeg = {s["id"]: s["score"] for s in scores if s["perturbation"] == "jpeg:50" and s["corpus"] == s["train_corpus"] == "up"}
    assert clean.keys() == jpeg.keys() and len(clean) > 10
    assert any(abs(clean[k] - jpeg[k]) > 1e-6 for k in clean)


def test_sensitivity_rows_per_artifact(first_run):
    _, _, result = first_run
    (shift,) = _rows(result, train_corpus="up", corpus="up", perturbation="none", artifact="upsampling",
                     metric="score_shift")
    assert shift["value"] > 0 and shift["ci_low"] > 0  # upsampling raises the spectrum score of every fake
    # the none control's fakes are marked "none": byte copies, so every clean score shift is exactly 0
    control = _rows(result, corpus="control", metric="score_shift", perturbation="none")
    assert {r["train_corpus"] for r in control} == {"up", "control"} and {r["artifact"] for r in control} == {"none"}
    assert all(r["value"] == r["ci_low"] == r["ci_high"] == 0.0 for r in control)


def test_one_speed_figure_per_detector_and_corpus_and_a_sweep(first_run):
    _, _, result = first_run
    detector_rows = [t for t in result.throughput if t["kind"] == "detector" and t["name"].startswith("spectrum")]
    assert sorted(t["name"] for t in detector_rows) == ["spectrum @ control", "spectrum @ up"]
    assert all(t["images_per_s"] > 0 and t["decode_images_per_s"] > 0 and t["batch_size"] == 16 for t in detector_rows)
    sweep = [t for t in result.throughput if t["kind"] == "sweep" and t["name"].startswith("spectrum")]
    assert [t["batch_size"] for t in sweep] == [1, 4]
    assert all(t["error"] is None and t["images_per_s"] > 0 for t in sweep)


def test_a_second_run_reuses_every_task_and_a_lost_one_is_measured_again(first_run):
    suite, root, result = first_run
    tasks = sorted((root / "results" / "tasks").glob("*.json"))
    assert len(tasks) == 16  # 2 detectors x 2 train x 2 test x 2 perturbations
    again = run_suite(suite, root / "results", show_progress=False)
    assert again.cached_tasks == 16
    key = lambda m: (m["train_corpus"], m["corpus"], m["perturbation"], m["artifact"], m["metric"])  # noqa: E731
    assert sorted((key(m), m["value"]) for m in again.metrics) == sorted((key(m), m["value"]) for m in result.metrics)
    tasks[0].unlink()  # as if the run had been killed before this task ended
    resumed = run_suite(suite, root / "results", show_progress=False)
    assert resumed.cached_tasks == 15
    assert len(resumed.metrics) == len(result.metrics)


def test_unknown_protocol_key_names_the_key_and_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(SUITE.replace("cross_generator = true", "cross_generators = true"))
    with pytest.raises(SuiteError, match=r"bad\.toml \[protocols\]: unknown key 'cross_generators'"):
        load_suite(path)
    path.write_text(SUITE.replace('"jpeg:50"', '"jpeg:500"'))
    with pytest.raises(SuiteError, match=r"bad\.toml \[protocols\].*jpeg"):
        load_suite(path)
    path.write_text(SUITE.replace("calibration_fraction = 0.3", "calibration_fraction = 1.5"))
    with pytest.raises(SuiteError, match="calibration_fraction"):
        load_suite(path)


ROWS = [
    {"pair": "p0", "label": 0, "artifact_names": []},
    {"pair": "p0", "label": 1, "artifact_names": ["a"]},
    {"pair": "p0", "label": 1, "artifact_names": ["b"]},
    {"pair": "p1", "label": 0, "artifact_names": []},
    {"pair": "p1", "label": 1, "artifact_names": ["a"]},
    {"pair": "p2", "label": 1, "artifact_names": ["a"]},  # its real is not in the split: no counterfactual
]


def test_counterfactual_pairs_match_each_fake_to_its_own_real():
    scores = np.array([0.1, 0.7, 0.2, 0.4, 0.5, 0.9])
    real, fake = counterfactual_pairs(ROWS, scores, "a")
    assert real.tolist() == [0.1, 0.4] and fake.tolist() == [0.7, 0.5]


def test_sensitivity_by_hand():
    real, fake = np.array([0.1, 0.4, 0.3]), np.array([0.7, 0.5, 0.2])
    out = sensitivity(real, fake, threshold=0.45, resamples=500, seed=1)
    # shifts 0.6, 0.1, -0.1 -> mean 0.2; flips at 0.45: (0.1<0.45, 0.7>=0.45) yes, (0.4, 0.5) yes, (0.3, 0.2) no
    assert out["score_shift"]["value"] == pytest.approx(0.2)
    assert out["flip_rate"]["value"] == pytest.approx(2 / 3)
    assert out["score_shift"]["ci_low"] <= 0.2 <= out["score_shift"]["ci_high"]
    assert math.isnan(sensitivity(real, fake, threshold=None)["flip_rate"]["value"])
