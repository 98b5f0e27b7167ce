"""Issue 9, item 4: a detector that misbehaves inside a run costs only its own task.

Raising on one batch, NaN or infinite scores, the wrong number of scores, or scores outside
the range the detector declares (``score_range``): that task is recorded as failed with the
reason, every other task completes, the run is stored as "partial" and ``facebench run``
exits non-zero. Running out of memory on a batch is not a failure: the batch is scored again
in halves (down to one image) and the back-off is reported as a warning.
"""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from facebench.harness.contracts import registry
from facebench.harness.cli import app
from facebench.harness.run.runner import run_suite
from facebench.harness.run.scoring import DetectorOutputError, check_scores, score_split
from facebench.harness.data.store import Store
from facebench.harness.data.suite import parse_suite


class Misbehaving:
    """Mean brightness as the score, except where a subclass misbehaves (``bad`` decides when)."""

    name = "misbehaving"
    version = "1"
    requires_fit = False
    inputs = ("pixels",)
    device = "cpu"
    batch_size = 4

    def __init__(self):
        self.calls = 0

    def fit(self, images, labels):
        pass

    def good(self, images):
        return images.reshape(len(images), -1).mean(axis=1) / 255.0

    def score(self, images):
        self.calls += 1
        return self.misbehave(images) if self.calls == 2 else self.good(images)  # the second batch of the first task

    def misbehave(self, images):
        return self.good(images)


class Raises(Misbehaving):
    name = "raises"
    def misbehave(self, images):
        raise RuntimeError("the model fell over on this batch")


class ReturnsNaN(Misbehaving):
    name = "nan"
    def misbehave(self, images):
        out = self.good(images)
        out[1] = np.nan
        return out


class ReturnsInf(Misbehaving):
    name = "inf"
    def misbehave(self, images):
        return np.full(len(images), np.inf)


class WrongLength(Misbehaving):
    name = "wrong_length"
    def misbehave(self, images):
        return self.good(images)[:-1]


class NotNumbers(Misbehaving):
    name = "not_numbers"
    def misbehave(self, images):
        return ["high"] * len(images)


class OutOfRange(Misbehaving):
    name = "out_of_range"
    score_range = (0.0, 1.0)

    def misbehave(self, images):
        return self.good(images) + 1.5


class Unbounded(Misbehaving):
    """Declares no score_range: any finite score is fine (logits, distances, ...)."""
    name = "unbounded"

    def score(self, images):
        return 1000.0 * self.good(images) - 300.0


class OutOfMemory(Misbehaving):
    """Runs out of memory on any batch of more than two images, as a GPU model might."""
    name = "oom"

    limit = 2
    error = RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    def __init__(self):
        super().__init__()
        self.sizes = []

    def score(self, images):
        self.sizes.append(len(images))
        if len(images) > self.limit:
            raise self.error
        return self.good(images)


class OutOfMemoryAlways(OutOfMemory):
    name = "oom_always"
    limit = 0
    error = MemoryError()


BAD = {"raises": Raises, "nan": ReturnsNaN, "inf": ReturnsInf, "wrong_length": WrongLength,
       "not_numbers": NotNumbers, "out_of_range": OutOfRange}
REASONS = {"raises": "RuntimeError: the model fell over on this batch", "nan": "returned NaN or infinite scores",
           "inf": "returned NaN or infinite scores", "wrong_length": "returned (3,) scores for 4 images",
           "not_numbers": "not numbers", "out_of_range": "outside its declared score_range [0, 1]"}

SUITE = {
    "name": "faults",
    "bootstrap": {"resamples": 0},
    "protocols": {"perturbations": ["jpeg:50"]},
    "generators": [{"name": "parametric", "count": 10, "batch_size": 10,
                    "params": {"resolution": 64, "artifacts": "upsampling:0.5", "camera": False}}],
}


@pytest.fixture(autouse=True)
def test_detectors(monkeypatch):
    for name, cls in {**BAD, "unbounded": Unbounded, "oom": OutOfMemory, "oom_always": OutOfMemoryAlways}.items():
        assert cls.name == name
        monkeypatch.setitem(registry.BUILTINS, "detector", (*registry.BUILTINS["detector"], f"{__name__}:{cls.__name__}"))


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """One results folder: the corpus is generated once and reused from its cache by every run."""
    return tmp_path_factory.mktemp("detector-faults")


def suite_with(*detectors: str, **extra):
    return parse_suite({**SUITE, **extra, "detectors": [{"name": "spectrum"}, *({"name": d} for d in detectors)]}, "faults.toml")


@pytest.mark.parametrize("bad", list(BAD))
def test_a_misbehaving_detector_fails_only_its_own_task(results, bad):
    result = run_suite(suite_with(bad), results, results / f"{bad}.sqlite", show_progress=False, use_cache=False)
    (error,) = result.errors  # one task: the clean one, whose second batch misbehaved
    assert error["task"] == f"detect {bad} on parametric"
    assert REASONS[bad] in error["message"] and "\n" not in error["message"]
    assert result.run["status"] == "partial"
    done = {(m["detector"], m["perturbation"]) for m in result.metrics}
    assert done == {("spectrum", "none"), ("spectrum", "jpeg:50"), (bad, "jpeg:50")}  # every other task completed
    stored = Store(results / f"{bad}.sqlite")
    run = stored.run()
    assert run["status"] == "partial" and stored.errors(run["run_id"])[0]["message"] == error["message"]


def test_facebench_run_exits_non_zero_when_a_task_failed(results, tmp_path):
    path = tmp_path / "faults.toml"
    path.write_text('name = "faults"\n[bootstrap]\nresamples = 0\n[[generators]]\nname = "parametric"\ncount = 10\n'
                    'batch_size = 10\n[generators.params]\nresolution = 64\nartifacts = "upsampling:0.5"\ncamera = false\n'
                    '[[detectors]]\nname = "spectrum"\n[[detectors]]\nname = "nan"\n')
    result = CliRunner().invoke(app, ["run", str(path), "--results", str(results), "--store", str(tmp_path / "s.sqlite"),
                                      "--no-progress", "--no-report"])
    assert result.exit_code == 1
    assert "1 task(s) failed" in result.stderr
    assert Store(tmp_path / "s.sqlite").run()["status"] == "partial"


def test_scores_without_a_declared_range_may_be_any_finite_number(results):
    result = run_suite(suite_with("unbounded"), results, results / "unbounded.sqlite", show_progress=False, use_cache=False)
    assert result.errors == [] and result.run["status"] == "ok"


def test_check_scores_contract():
    assert check_scores([0.0, 1.0], 2, "d", (0, 1)).dtype == np.float64
    assert check_scores([-5.0, 7.0], 2, "d").tolist() == [-5.0, 7.0]
    for scores, score_range, message in (([0.5, 1.0 + 1e-9], (0, 1), "outside"), ([0.5], (0, 1), r"\(1,\) scores for 2"),
                                         ([0.5, 0.5], "0..1", "declares score_range")):
        with pytest.raises(DetectorOutputError, match=message):
            check_scores(scores, 2, "d", score_range)


def test_out_of_memory_backs_off_the_batch_size_and_is_a_warning_not_a_failure(results):
    result = run_suite(suite_with("oom"), results, results / "oom.sqlite", show_progress=False, use_cache=False)
    assert result.errors == [] and result.run["status"] == "ok"
    oom_rows = [m for m in result.metrics if m["detector"] == "oom"]
    spectrum_rows = [m for m in result.metrics if m["detector"] == "spectrum"]
    assert len(oom_rows) == len(spectrum_rows)  # every task of the detector completed
    warnings = {w["task"]: w["message"] for w in result.warnings}
    assert warnings["detect oom on parametric"] == (
        "out of memory at batch size 4 (RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB); backed off to batch size 2")
    (speed,) = [t for t in result.throughput if t["kind"] == "detector" and t["name"].startswith("oom")]
    assert speed["batch_size"] == 2 and speed.get("error") is None
    assert Store(results / "oom.sqlite").run()["info"].count("backed off to batch size 2") == 2  # both tasks


def test_out_of_memory_scores_match_an_unconstrained_run(results):
    from facebench.harness.data.corpus import Corpus

    corpus = Corpus.open(next((results / "corpora").iterdir()))
    detector = OutOfMemory()
    rows, scores, throughput = score_split(detector, corpus, 8, "oom")
    assert detector.sizes[:4] == [8, 4, 2, 2]  # halved twice, then later chunks keep size 2
    assert set(detector.sizes[4:]) == {2}
    np.testing.assert_array_equal(scores, Misbehaving().good(corpus.load_images()))
    assert throughput["batch_size"] == 2 and "backed off to batch size 2" in throughput["warnings"][0]


def test_out_of_memory_with_a_single_image_fails_the_task(results):
    result = run_suite(suite_with("oom_always"), results, results / "oom1.sqlite", show_progress=False, use_cache=False)
    assert {e["task"] for e in result.errors} == {"detect oom_always on parametric",
                                                  "detect oom_always on parametric under jpeg:50"}
    assert all(e["message"] == "MemoryError" for e in result.errors)
    assert result.run["status"] == "partial"
