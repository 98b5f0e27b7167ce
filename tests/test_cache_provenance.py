"""The task and corpus caches never serve a stale result: their keys cover the code and the
files that produce it, and --fresh / --fresh-detectors measure again on request."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from facebench.harness.contracts import registry
from facebench.harness.cli import app
from facebench.harness.run.corpora import corpus_key
from facebench.harness.run.runner import run_suite
from facebench.harness.run.tasks import task_key
from facebench.harness.data.suite import DetectorSpec, GeneratorSpec, SuiteError, load_suite

#: A plug-in detector: the spectrum detector's score, times SIGN.
PROBE = """
import numpy as np
from facebench.detectors.spectrum import SpectrumDetector


class ProbeDetector:
    name = "probe"
    version = "1"
    requires_fit = True
    inputs = ("pixels",)
    batch_size = 16

    def __init__(self, weights=None):
        self.inner = SpectrumDetector()

    def fit(self, images, labels):
        self.inner.fit(images, labels)

    def score(self, images):
        return {expression}
"""
AS_IS = "np.asarray(self.inner.score(images))"
INVERTED = "1.0 - np.asarray(self.inner.score(images))"

SUITE = """
name = "cache"
[split]
test_fraction = 0.5
seed = 1
[bootstrap]
resamples = 0

[[generators]]
name = "parametric"
label = "up"
count = 24
batch_size = 24
[generators.params]
resolution = 64
artifacts = "upsampling"

[[detectors]]
name = "probe"
label = "my_probe"
"""

TWO_DETECTORS = SUITE + """
[[detectors]]
name = "spectrum"
label = "spec"
"""


@pytest.fixture
def probe(tmp_path, monkeypatch):
    """Writes the probe plug-in (as-is or inverted) into a folder on sys.path and registers it."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    module = f"probe_{tmp_path.name.replace('-', '_')}"
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.setitem(registry.BUILTINS, "detector", (*registry.BUILTINS["detector"], f"{module}:ProbeDetector"))

    def write(expression: str) -> Path:
        path = folder / f"{module}.py"
        path.write_text(PROBE.format(expression=expression))
        sys.modules.pop(module, None)  # the next registry.load imports the file as it is now
        importlib.invalidate_caches()
        return path

    write(AS_IS)
    yield write
    sys.modules.pop(module, None)


def suite_file(tmp_path: Path, text: str = SUITE) -> Path:
    path = tmp_path / "suite.toml"
    path.write_text(text)
    return path


def auc(result, detector: str = "my_probe") -> float:
    (value,) = [m["value"] for m in result.metrics
                if m["detector"] == detector and m["artifact"] == "all" and m["metric"] == "auc"]
    return value


def test_changed_detector_code_with_the_same_name_and_version_is_measured_again(tmp_path, probe):
    suite = load_suite(suite_file(tmp_path))
    results = tmp_path / "results"
    first = run_suite(suite, results, show_progress=False)
    assert first.errors == [] and auc(first) > 0.7
    again = run_suite(suite, results, show_progress=False)
    assert again.cached_tasks == 1 and auc(again) == auc(first)  # unchanged code: reused

    probe(INVERTED)  # same name, same version, new code
    changed = run_suite(suite, results, show_progress=False)
    assert changed.errors == []
    assert changed.cached_tasks == 0
    assert auc(changed) < 0.3
    assert auc(changed) == pytest.approx(1 - auc(first))


def _task_key_of(spec: DetectorSpec, tmp_path: Path) -> str:
    suite = load_suite(suite_file(tmp_path))
    corpus = SimpleNamespace(digest="c0ffee")
    return task_key(spec, registry.load("detector", spec.name), corpus, corpus, "none", suite, ("up", "up"))


def test_a_changed_weight_file_changes_the_task_key(tmp_path, probe):
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"\x00" * 4096)
    spec = DetectorSpec(name="probe", label="probe", params={"weights": str(weights)})
    before = _task_key_of(spec, tmp_path)
    assert _task_key_of(spec, tmp_path) == before  # the same file: the same key
    weights.write_bytes(b"\x00" * 4095 + b"\x01")  # same size, same name, other bytes
    assert _task_key_of(spec, tmp_path) != before


def test_a_changed_command_program_changes_the_task_key(tmp_path):
    script = tmp_path / "detector.py"
    script.write_text("print('v1')\n")
    spec = DetectorSpec(name="command", label="cmd", params={"command": f"python {script}"})
    before = _task_key_of(spec, tmp_path)
    script.write_text("print('v2')\n")
    assert _task_key_of(spec, tmp_path) != before


def test_a_changed_generator_changes_the_corpus_key(tmp_path, monkeypatch):
    folder = tmp_path / "plugins"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    module = "probe_generator_for_key"
    source = ("from facebench.generators.parametric import ParametricGenerator\n\n"
              "class ProbeGenerator(ParametricGenerator):\n    name = 'probe_gen'\n    {body}\n")
    spec = GeneratorSpec(name="probe_gen", label="g", count=4, params={"resolution": 64})

    def key_with(body: str) -> str:
        (folder / f"{module}.py").write_text(source.format(body=body))
        sys.modules.pop(module, None)
        importlib.invalidate_caches()
        generator = importlib.import_module(module).ProbeGenerator(resolution=64)
        return corpus_key(spec, generator)[1]

    try:
        before = key_with("pass")
        assert key_with("pass") == before
        assert key_with("def generate(self, seeds):\n        return super().generate(seeds[::-1])") != before
    finally:
        sys.modules.pop(module, None)


def test_fresh_measures_every_task_and_corpus_again(tmp_path, probe):
    suite = load_suite(suite_file(tmp_path))
    results = tmp_path / "results"
    run_suite(suite, results, show_progress=False)
    (corpus,) = (results / "corpora").iterdir()
    stamp = (corpus / "corpus.json").stat().st_mtime_ns
    fresh = run_suite(suite, results, show_progress=False, fresh=True)
    assert fresh.errors == [] and fresh.cached_tasks == 0 and fresh.task_count == 1
    assert (corpus / "corpus.json").stat().st_mtime_ns != stamp  # generated again


def test_fresh_detectors_measures_only_the_named_ones(tmp_path, probe):
    suite = load_suite(suite_file(tmp_path, TWO_DETECTORS))
    results = tmp_path / "results"
    run_suite(suite, results, show_progress=False)
    by_name = run_suite(suite, results, show_progress=False, fresh_detectors=["probe"])  # a name
    assert by_name.cached_tasks == 1 and by_name.task_count == 2
    by_label = run_suite(suite, results, show_progress=False, fresh_detectors=["spec"])  # a label
    assert by_label.cached_tasks == 1
    both = run_suite(suite, results, show_progress=False, fresh_detectors=["spec", "my_probe"])
    assert both.cached_tasks == 0
    with pytest.raises(SuiteError, match="unknown detector 'nope'.*my_probe.*spec"):
        run_suite(suite, results, show_progress=False, fresh_detectors=["nope"])


def test_the_cli_says_in_one_line_how_many_tasks_were_reused(tmp_path, probe):
    path = suite_file(tmp_path, TWO_DETECTORS)
    args = ["run", str(path), "--results", str(tmp_path / "results"), "--no-progress", "--no-report"]
    runner = CliRunner()
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert not [line for line in first.output.splitlines() if line.startswith("reused ")]
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    lines = [line for line in again.output.splitlines() if line.startswith("reused ")]
    assert lines == ["reused 2 of 2 tasks; their code, weights and inputs are unchanged"]
    partly = runner.invoke(app, [*args, "--fresh-detectors", "spectrum"])
    assert partly.exit_code == 0, partly.output
    assert "reused 1 of 2 tasks; their code, weights and inputs are unchanged" in partly.output
    fresh = runner.invoke(app, [*args, "--fresh"])
    assert fresh.exit_code == 0, fresh.output
    assert not [line for line in fresh.output.splitlines() if line.startswith("reused ")]


def test_fresh_detectors_with_an_unknown_name_is_a_usage_error(tmp_path, probe):
    path = suite_file(tmp_path, TWO_DETECTORS)
    result = CliRunner().invoke(app, ["run", str(path), "--results", str(tmp_path / "results"), "--no-progress",
                                      "--no-report", "--fresh-detectors", "spec,nope"])
    assert result.exit_code == 2
    assert "nope" in result.output and "my_probe" in result.output and "spec" in result.output
    assert not (tmp_path / "results" / "tasks").exists()  # refused before any work


def _import_fresh(name: str):
    for module in [m for m in sys.modules if m == name.partition(".")[0] or m.startswith(name.partition(".")[0] + ".")]:
        sys.modules.pop(module)
    importlib.invalidate_caches()
    return importlib.import_module(name)


def test_the_code_digest_follows_a_loose_modules_sibling_imports_and_a_packages_folder(tmp_path, monkeypatch):
    from facebench.harness.run.provenance import code_digest

    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    (tmp_path / "loose_probe_plugin.py").write_text("import loose_probe_helper\n\nclass Det:\n    pass\n")
    (tmp_path / "loose_probe_helper.py").write_text("SIGN = 1\n")
    (tmp_path / "unrelated_probe.py").write_text("X = 1\n")
    package = tmp_path / "pkg_probe"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "det.py").write_text("from pkg_probe import maths\n\nclass Det:\n    pass\n")
    (package / "maths.py").write_text("SIGN = 1\n")
    try:
        loose = code_digest(_import_fresh("loose_probe_plugin").Det)
        packaged = code_digest(_import_fresh("pkg_probe.det").Det)
        (tmp_path / "unrelated_probe.py").write_text("X = 2\n")  # not imported by the plug-in
        assert code_digest(_import_fresh("loose_probe_plugin").Det) == loose
        (tmp_path / "loose_probe_helper.py").write_text("SIGN = -1\n")
        assert code_digest(_import_fresh("loose_probe_plugin").Det) != loose
        (package / "maths.py").write_text("SIGN = -1\n")
        assert code_digest(_import_fresh("pkg_probe.det").Det) != packaged
    finally:
        for name in ("loose_probe_plugin", "loose_probe_helper", "pkg_probe", "pkg_probe.det", "pkg_probe.maths"):
            sys.modules.pop(name, None)


def test_a_plugin_installed_in_site_packages_brings_its_distributions_recorded_files():
    import typer.main

    from facebench.harness.run.provenance import plugin_files

    files = plugin_files(typer.main)
    recorded = [name for name in files if name.startswith("typer:")]  # "distribution:recorded path"
    assert any(name.endswith("typer/main.py") for name in recorded)
    assert all(path.is_file() for path in files.values())
