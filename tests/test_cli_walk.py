"""A newcomer's walk through the CLI (issue 17): commands that work from anywhere, errors in the
user's words, the exit-code rule, runs you can find, file modes that respect the umask."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import textwrap

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from facebench.harness.contracts import registry
from facebench.harness.cli import app
from facebench.harness.contracts.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE
from facebench.harness.contracts.registry import PluginError
from facebench.harness.data.suite import load_suite, shipped_suites

runner = CliRunner()

TINY_SUITE = """
name = "tiny"
[bootstrap]
resamples = 0
[protocols]
sensitivity = false
[[generators]]
name = "parametric"
label = "upsampled"
count = 8
batch_size = 8
[generators.params]
resolution = 64
artifacts = "upsampling"
camera = false
[[detectors]]
name = "spectrum"
"""


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def stored_run(tmp_path_factory):
    """A results folder holding one finished run of a tiny suite."""
    root = tmp_path_factory.mktemp("walk")
    suite = root / "tiny.toml"
    suite.write_text(TINY_SUITE)
    results = root / "results"
    done = invoke("run", suite, "--results", results, "--no-progress", "--no-report")
    assert done.exit_code == 0, done.output
    return results


# --------------------------------------------------------------------------- commands


def test_a_folder_named_like_a_shipped_suite_does_not_hide_it(tmp_path, monkeypatch):
    (tmp_path / "detectors").mkdir()  # as in the repository root
    monkeypatch.chdir(tmp_path)
    suite = load_suite("detectors")
    assert suite.source == "detectors.toml (shipped)"


def test_an_unknown_suite_names_the_shipped_ones(tmp_path, monkeypatch):
    (tmp_path / "nope").mkdir()
    monkeypatch.chdir(tmp_path)
    result = invoke("run", "nope", "--results", tmp_path / "r")
    assert result.exit_code == EXIT_USAGE
    assert "a folder, not a suite file" in result.stderr
    for name in ("default", "detectors"):
        assert name in result.stderr
    assert not (tmp_path / "r").exists()


def test_run_help_names_the_shipped_suites():
    names = shipped_suites()
    assert {"default", "detectors"} <= set(names)
    text = " ".join(invoke("run", "--help").output.split())
    assert ", ".join(names) in text


def _commands(command, path=()):
    """(argv path, click command) of every command and group, depth first."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def _words(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("path", [p for p, _ in _commands(get_command(app))], ids=lambda p: " ".join(p) or "facebench")
def test_every_help_line_reads_as_written(path):
    """Each option's and argument's help, and the command's own text, appear whole in the rendered
    help: no bracketed words eaten by markup, no metavars like <bool> or <list[str]>."""
    command = dict(_commands(get_command(app)))[path]
    result = runner.invoke(app, [*path, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    shown = _words(result.output)
    for param in command.params:
        if getattr(param, "help", None):
            assert _words(param.help) in shown, (param.name, param.help)
    if command.help:
        first_paragraph = command.help.split("\n\n")[0]
        assert _words(first_paragraph) in shown
    assert not re.search(r"<(bool|str|int|float|path|list\[[a-z]+\]|int range|float range)>", result.output), result.output
    assert not re.search(r"\w [.,;](\s|$)", shown), shown  # text vanished before the punctuation


def test_help_keeps_brackets():
    text = _words(invoke("run", "--help").output)
    assert "needs facebench[ray]" in text
    assert "[default: RESULTS/facebench.sqlite]" in text


def test_runs_lists_stored_runs(stored_run):
    from facebench.harness.data.store import Store

    run = Store(stored_run / "facebench.sqlite").run()
    result = runner.invoke(app, ["runs", "--results", str(stored_run)], terminal_width=200)
    assert result.exit_code == 0, result.output
    for column in ("id", "suite", "date", "status", "duration", "commit"):
        assert column in result.stdout
    assert run["run_id"] in result.stdout and "tiny" in result.stdout and "ok" in result.stdout


def test_runs_without_a_store_is_a_usage_error(tmp_path):
    result = invoke("runs", "--results", tmp_path)
    assert result.exit_code == EXIT_USAGE and "no results store" in result.stderr


@pytest.mark.parametrize("command", [
    ["leaderboard", "--run", "nope"], ["report", "nope", "-o", "x.html"], ["export", "nope", "-o", "x.json"],
    ["compare", "nope", "latest"],
])
def test_unknown_run_ids_list_the_recent_ones(stored_run, command, tmp_path, monkeypatch):
    from facebench.harness.data.store import Store

    monkeypatch.chdir(tmp_path)
    run_id = Store(stored_run / "facebench.sqlite").run()["run_id"]
    result = invoke(*command, "--results", stored_run)
    assert result.exit_code == EXIT_USAGE, result.output
    assert "no run 'nope'" in result.stderr and run_id in result.stderr and "facebench runs" in result.stderr


def test_info_shows_parameters_types_defaults_and_docs():
    result = runner.invoke(app, ["info", "spectrum"], terminal_width=200)
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if "n_bins" in line)
    assert "int" in row and "64" in row and "number of frequency rings" in row
    assert "inputs: pixels" in result.stdout
    folder = runner.invoke(app, ["info", "folder"], terminal_width=200).stdout
    assert "required" in next(line for line in folder.splitlines() if line.strip().startswith("path"))
    artifact = runner.invoke(app, ["info", "eyes_fixed"], terminal_width=200).stdout
    assert "needs: landmarks" in artifact
    assert "quality, integer 1..100" in invoke("info", "jpeg").stdout


def test_info_of_an_unknown_name_suggests_one():
    result = invoke("info", "spectrun")
    assert result.exit_code == EXIT_USAGE and "did you mean 'spectrum'" in result.stderr


def test_list_imports_nothing_heavy():
    code = textwrap.dedent("""
        import sys
        from typer.testing import CliRunner
        from facebench.harness.cli import app
        result = CliRunner().invoke(app, ["list"])
        assert result.exit_code == 0, result.output
        assert "spectrum" in result.stdout and "0.1.0" in result.stdout and "pixels, eye localiser" in result.stdout
        print(sorted(m for m in ("torch", "sklearn", "matplotlib", "pyarrow", "scipy") if m in sys.modules))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_static_attributes_match_the_imported_classes():
    for kind in registry.VERSIONED_KINDS:
        for name, info in registry.available(kind).items():
            if info.origin != "builtin":
                continue
            read = registry.static_attributes(info.target)
            cls = registry.load(kind, name)
            assert read is not None and read["version"] == cls.version, name
            for key in ("inputs", "requires_fit", "score_range"):
                if hasattr(cls, key):
                    assert read.get(key) == getattr(cls, key), (name, key)


@pytest.fixture
def shadowing_plugin(tmp_path, monkeypatch):
    """An installed distribution whose detector entry point is named like a built-in."""
    dist = tmp_path / "site" / "facebench_shadow-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: facebench-shadow\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[facebench.detectors]\nspectrum = shadow_pkg:Spectrum\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    return dist


def test_an_entry_point_with_a_builtin_name_is_reported(shadowing_plugin):
    assert [i.target for i in registry.shadowed("detector")] == ["shadow_pkg:Spectrum"]
    assert registry.available("detector")["spectrum"].origin == "builtin"
    listed = invoke("list")
    assert listed.exit_code == 0
    assert "'spectrum' = 'shadow_pkg:Spectrum' from entry point (facebench-shadow) is ignored" in _words(listed.stderr)
    used = invoke("info", "spectrum")
    assert used.exit_code == 0 and "is ignored" in used.stderr


def test_ctrl_c_says_what_is_kept_and_how_to_resume(tmp_path, monkeypatch):
    import facebench.harness.run.runner as runner_module

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner_module, "run_suite", interrupted)
    result = invoke("run", "default", "--results", tmp_path / "r")
    assert result.exit_code == EXIT_INTERRUPTED
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("interrupted: finished tasks are kept in") and "resume with:" in lines[0]


def test_progress_shows_rate_and_remaining_time():
    from rich.progress import TimeRemainingColumn

    from facebench.harness.run.progress import RateColumn
    from facebench.harness.run.progress import make_progress

    columns = make_progress().columns
    assert any(isinstance(c, TimeRemainingColumn) for c in columns)
    assert any(isinstance(c, RateColumn) for c in columns)


def test_generate_writes_nothing_to_stderr_on_success(tmp_path):
    result = invoke("generate", "parametric", "--n", 2, "-p", "resolution=64", "--out", tmp_path / "c")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""


# --------------------------------------------------------------------------- errors and exit codes


def test_a_parameter_of_the_wrong_type_names_parameter_value_and_type():
    with pytest.raises(PluginError) as info:
        registry.create("detector", "spectrum", n_bins="abc")
    assert str(info.value) == "detector 'spectrum': parameter 'n_bins' got 'abc'; expected an integer (default 64)"
    with pytest.raises(PluginError, match="parameter 'camera' got 'yes'; expected true or false"):
        registry.create("generator", "parametric", camera="yes")


def test_a_missing_required_parameter_is_named_with_its_doc():
    with pytest.raises(PluginError) as info:
        registry.create("generator", "folder")
    text = str(info.value)
    assert "generator 'folder' needs parameter 'path' (a string: the folder of images" in text
    assert "-p path=VALUE" in text and "__init__" not in text


def test_values_are_converted_to_the_declared_type():
    class Plugin:
        def __init__(self, path: str, sizes: list[int] | None = None, scale: float = 1.0):
            pass

    assert registry.check_params(Plugin, {"path": 2024, "scale": 2}, "p") == {"path": "2024", "scale": 2}
    with pytest.raises(PluginError, match="parameter 'sizes' got \\['a'\\]; expected a list of integers"):
        registry.check_params(Plugin, {"path": "x", "sizes": ["a"]}, "p")


@pytest.mark.parametrize("argv, message", [
    (["detect", "spectrum", "{corpus}", "-p", "n_bins=abc"], "parameter 'n_bins' got 'abc'"),
    (["generate", "folder", "--n", "2", "--out", "{tmp}/f"], "needs parameter 'path'"),
    (["detect", "spectrum", "{tmp}/no-corpus"], "no such corpus folder"),
    (["generate", "folder", "-p", "path={photos}", "--n", "5", "--out", "{tmp}/f"], "holds 2 images"),
    (["generate", "folder", "-p", "path={photos}", "--n", "2", "--artifacts", "null", "--out", "{tmp}/f"],
     "holds 2 images; the null control takes the second half for its fakes, leaving 1 seed)"),
    (["generate", "folder", "-p", "path={photos}", "--n", "2", "--artifacts", "eyes_fixed", "--out", "{tmp}/f"],
     "needs face landmarks"),  # without the faces extra: names it; with it: no face in these flat images
    (["run", "{tmp}/missing.toml"], "no such suite file"),
])
def test_wrong_input_exits_2_in_one_line_and_writes_nothing(argv, message, tmp_path):
    import numpy as np
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        Image.fromarray(np.full((32, 32, 3), 40 * i, np.uint8)).save(photos / f"{i}.png")
    corpus = tmp_path / "corpus"
    made = invoke("generate", "parametric", "--n", 2, "-p", "resolution=64", "--out", corpus)
    assert made.exit_code == 0, made.output
    argv = [a.format(tmp=tmp_path, photos=photos, corpus=corpus) for a in argv]
    result = invoke(*argv, "--results", tmp_path / "results") if argv[0] in ("detect", "run") else invoke(*argv)
    assert result.exit_code == EXIT_USAGE, result.output
    assert message in result.stderr and result.stderr.strip().count("\n") == 0
    assert "Traceback" not in result.output
    assert not (tmp_path / "f").exists() and not (tmp_path / "results").exists()


def test_work_that_ran_and_failed_exits_1(tmp_path):
    corpus = tmp_path / "corpus"
    assert invoke("generate", "parametric", "--n", 2, "-p", "resolution=64", "--out", corpus).exit_code == 0
    next((corpus / "images").rglob("*.png")).write_bytes(b"not a png")
    assert invoke("corpus", "verify", corpus).exit_code == EXIT_FAILED


# --------------------------------------------------------------------------- files


@pytest.fixture
def umask():
    """Set a umask for one test and put the old one back."""
    old = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask", [0o002, 0o022, 0o027])
def test_corpora_and_exports_respect_the_umask(mask, umask, stored_run, tmp_path):
    umask(mask)
    corpus = tmp_path / "corpus"
    assert invoke("generate", "parametric", "--n", 2, "-p", "resolution=64", "--out", corpus).exit_code == 0
    assert _mode(corpus) == 0o777 & ~mask
    exported = tmp_path / "run.json"
    result = invoke("export", "latest", "--results", stored_run, "-o", exported)
    assert result.exit_code == 0, result.output
    assert _mode(exported) == 0o666 & ~mask
    assert json.loads(exported.read_text())["format"] == "facebench-results"


def test_converted_networks_respect_the_umask(umask, tmp_path):
    from facebench.generators.stylegan2.loading import save_network
    from facebench.generators.stylegan2.networks import Generator

    umask(0o022)
    network = Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3,
                        mapping_kwargs={"num_layers": 1}, synthesis_kwargs={"channel_base": 64, "channel_max": 8})
    path = save_network(network, tmp_path / "g.safetensors")
    assert _mode(path) == 0o644
