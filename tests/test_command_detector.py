"""The command detector: external programs speaking JSON lines (docs/command-protocol.md)."""

from __future__ import annotations

import gc
import json
import shlex
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from facebench.detectors.command import CommandDetector, CommandDetectorError
from facebench.harness.contracts import registry

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the command detector needs POSIX")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "brightness_detector.py"
PYTHON = sys.executable

PRELUDE = """\
import json, math, os, subprocess, sys, time

def send(message):
    print(json.dumps(message), flush=True)

def messages():
    for line in sys.stdin:
        yield json.loads(line)

"""

READY = 'send({"type": "ready", "name": "test", "version": "0"})\n'


def child(tmp_path: Path, body: str, name: str = "child.py") -> list[str]:
    """The argv of a Python child whose script is PRELUDE + ``body``."""
    script = tmp_path / name
    script.write_text(PRELUDE + textwrap.dedent(body))
    return [PYTHON, str(script)]


def images(n: int = 5, size: int = 24, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)


def alive(pid: int) -> bool:
    """Running and not a zombie (containers may have no init to reap orphans)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


def raises_quickly(detector: CommandDetector, action, match: str, limit: float = 3.0) -> CommandDetectorError:
    start = time.monotonic()
    with pytest.raises(CommandDetectorError, match=match) as info:
        action(detector)
    assert time.monotonic() - start < limit
    assert "\n" not in str(info.value)
    assert not detector.running
    return info.value


# -- the example, end to end --------------------------------------------------------------


@pytest.mark.parametrize("image_format", ["png", "bmp", "ppm"])
def test_example_scores_mean_brightness(image_format):
    batch = images(6)
    expected = batch.reshape(len(batch), -1).mean(axis=1) / 255
    with CommandDetector([PYTHON, str(EXAMPLE)], image_format=image_format) as detector:
        scores = detector.score(batch)
        np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-9)
        assert (detector.child_name, detector.child_version) == ("brightness", "1.0")
        child = detector._child
        np.testing.assert_allclose(detector.score(batch[:2]), expected[:2], atol=1e-9)  # same process, new ids
        assert detector._child is child
        assert not any((child.tmpdir / "score").glob("*"))
    assert child.closed and child.proc.returncode == 0  # it left on bye
    assert not child.tmpdir.exists()


def test_command_string_is_split_and_empty_batches_start_nothing():
    detector = CommandDetector(shlex.join([PYTHON, str(EXAMPLE)]))
    assert detector.argv == [PYTHON, str(EXAMPLE)]
    assert detector.score(images(0)).shape == (0,)
    assert not detector.running
    assert detector.score(images(1)).shape == (1,)
    detector.close()
    assert detector.score(images(1)).shape == (1,)  # restarts lazily after close
    detector.close()


def test_replies_in_any_order_are_matched_by_id(tmp_path):
    command = child(tmp_path, """
        pending = []
        for m in messages():
            if m["type"] == "hello":
                """ + READY + """
            elif m["type"] == "score":
                pending.append(m)
                if len(pending) == 4:
                    for p in reversed(pending):
                        send({"id": p["id"], "score": int(p["id"]) % 4 / 4})
                    pending = []
            elif m["type"] == "bye":
                break
        """)
    with CommandDetector(command) as detector:
        np.testing.assert_allclose(detector.score(images(4)), [0, 0.25, 0.5, 0.75])


def test_fit_sends_paths_and_labels(tmp_path):
    command = child(tmp_path, """
        for m in messages():
            if m["type"] == "hello":
                """ + READY + """
            elif m["type"] == "fit":
                assert all(os.path.exists(item["path"]) for item in m["items"])
                labels = [item["label"] for item in m["items"]]
                send({"type": "fitted"})
            elif m["type"] == "score":
                send({"id": m["id"], "score": sum(labels) / len(labels)})
        """)
    detector = CommandDetector(command, requires_fit=True)
    with pytest.raises(RuntimeError, match="not fitted"):
        detector.score(images(2))
    assert not detector.running
    detector.fit(images(4), np.array([0, 1, 1, 1]))
    np.testing.assert_allclose(detector.score(images(3)), [0.75] * 3)
    assert not any(detector._child.tmpdir.glob("fit/*"))
    detector.close()
    with pytest.raises(RuntimeError, match="not fitted"):  # the fit lived in the closed process
        detector.score(images(1))


def test_the_process_ends_when_the_detector_is_collected():
    detector = CommandDetector([PYTHON, str(EXAMPLE)]).start()
    child = detector._child
    del detector
    gc.collect()
    assert child.closed and child.proc.returncode is not None
    assert not child.tmpdir.exists()


# -- broken children: one clear line each, quickly ----------------------------------------


def test_a_command_that_exits_names_the_code_and_stderr(tmp_path):
    command = child(tmp_path, 'print("model weights missing", file=sys.stderr)\nsys.exit(3)\n')
    error = raises_quickly(CommandDetector(command), lambda d: d.score(images(2)), "exited with code 3")
    assert "model weights missing" in str(error) and "ready line" in str(error)


def test_a_command_that_dies_while_scoring(tmp_path):
    command = child(tmp_path, """
        for m in messages():
            if m["type"] == "hello":
                """ + READY + """
            elif m["type"] == "score":
                raise ValueError("cannot read " + m["path"])
        """)
    error = raises_quickly(CommandDetector(command), lambda d: d.score(images(2)), "exited with code 1 .* score of image")
    assert "ValueError: cannot read" in str(error)


def test_a_hanging_command_is_killed_with_its_process_group(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    command = child(tmp_path, f"""
        grandchild = subprocess.Popen(["sleep", "60"])
        open({str(pid_file)!r}, "w").write(str(grandchild.pid))
        time.sleep(60)
        """)
    raises_quickly(CommandDetector(command, timeout=1), lambda d: d.score(images(2)), r"no answer within 1 s .*ready line; killed it")
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 2
    while alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not alive(grandchild)


def test_a_command_that_hangs_while_scoring(tmp_path):
    command = child(tmp_path, """
        for m in messages():
            if m["type"] == "hello":
                """ + READY + """
            elif m["type"] == "score":
                time.sleep(60)
        """)
    raises_quickly(CommandDetector(command, timeout=1), lambda d: d.score(images(3)),
                   r"no answer within 1 s while facebench waited for the score of image '0' \(and 2 more\)")


def test_a_command_that_stops_reading_cannot_block_the_writer(tmp_path):
    command = child(tmp_path, """
        sys.stdin.readline()
        """ + READY + """
        time.sleep(60)
        """)
    detector = CommandDetector(command, timeout=1, requires_fit=True)
    many = np.zeros((1500, 4, 4, 3), np.uint8)  # the fit message outgrows the pipe buffer
    raises_quickly(detector, lambda d: d.fit(many, np.arange(1500) % 2), "did not read its input within 1 s", limit=5)


def test_garbage_on_stdout(tmp_path):
    command = child(tmp_path, 'print("loading model...", flush=True)\n' + READY)
    error = raises_quickly(CommandDetector(command), lambda d: d.score(images(1)), "not JSON")
    assert "'loading model...'" in str(error) and "stderr" in str(error)


def test_no_ready_line(tmp_path):
    command = child(tmp_path, 'sys.stdin.readline()\nsend({"type": "hi"})\ntime.sleep(60)\n')
    raises_quickly(CommandDetector(command), lambda d: d.score(images(1)), "expected .*ready")


@pytest.mark.parametrize(
    ("reply", "match"),
    [
        ('{"id": m["id"], "score": 1.5}', r"score 1.5, outside \[0, 1\]"),
        ('{"id": m["id"], "score": -0.1}', r"outside \[0, 1\]"),
        ('{"id": m["id"], "score": float("nan")}', "not a finite number"),
        ('{"id": m["id"], "score": "0.5"}', "not a finite number"),
        ('{"id": m["id"], "score": True}', "not a finite number"),
        ('{"id": m["id"]}', "without a score"),
        ('{"id": "nope", "score": 0.5}', "id 'nope', which facebench did not ask for"),
        ('{"score": 0.5}', "without an id"),
        ('[0.5]', "not a JSON object"),
        ('{"type": "error", "message": "CUDA out of memory"}', "reported an error .*CUDA out of memory"),
    ],
)
def test_bad_score_replies_are_refused(tmp_path, reply, match):
    command = child(tmp_path, """
        for m in messages():
            if m["type"] == "hello":
                """ + READY + """
            elif m["type"] == "score":
                send(""" + reply + """)
        """)
    raises_quickly(CommandDetector(command), lambda d: d.score(images(2)), match)


def test_the_same_id_twice_is_refused(tmp_path):
    command = child(tmp_path, """
        for m in messages():
            if m["type"] == "hello":
                """ + READY + """
            elif m["type"] == "score":
                send({"id": "0", "score": 0.5})
        """)
    raises_quickly(CommandDetector(command), lambda d: d.score(images(2)), "id '0' twice")


def test_missing_and_unexecutable_programs(tmp_path):
    with pytest.raises(CommandDetectorError, match="program 'no-such-detector-xyz' not found on PATH"):
        CommandDetector(["no-such-detector-xyz", "--flag"])
    with pytest.raises(CommandDetectorError, match="not found"):
        CommandDetector(str(tmp_path / "missing.py"))
    script = tmp_path / "plain.py"
    script.write_text("print('hi')\n")
    with pytest.raises(CommandDetectorError, match=r"is not executable .*interpreter"):
        CommandDetector([str(script)])


def test_a_program_that_vanishes_before_start(tmp_path):
    script = tmp_path / "det.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    detector = CommandDetector([str(script)])
    script.unlink()
    raises_quickly(detector, lambda d: d.score(images(1)), "not found")


@pytest.mark.parametrize(
    "params",
    [
        {"command": []},
        {"command": 5},
        {"command": "python 'unclosed"},
        {"command": "x", "timeout": 0},
        {"command": "x", "timeout": float("inf")},
        {"command": "x", "batch_size": 0},
        {"command": "x", "image_format": "jpg"},
        {"command": "x", "workdir": "/no/such/folder"},
        {"command": "x", "env": {"A": [1]}},
        {"command": "x", "requires_fit": "yes"},
    ],
)
def test_bad_parameters(params):
    with pytest.raises(ValueError):
        CommandDetector(**params)


def test_workdir_and_env_reach_the_child(tmp_path):
    command = child(tmp_path, """
        for m in messages():
            if m["type"] == "hello":
                """ + READY + """
            elif m["type"] == "score":
                ok = os.getcwd() == os.path.realpath(sys.argv[1]) and os.environ["FB_SCORE"] == "0.25"
                send({"id": m["id"], "score": float(os.environ["FB_SCORE"]) if ok else 1.0})
        """)
    with CommandDetector(command + [str(tmp_path)], workdir=str(tmp_path), env={"FB_SCORE": 0.25}) as detector:
        np.testing.assert_allclose(detector.score(images(1)), [0.25])


# -- through the registry, the runner and the CLI -----------------------------------------


SUITE = """
name = "command"
[split]
test_fraction = 0.5
[[generators]]
name = "parametric"
label = "faces"
count = 8
batch_size = 8
[generators.params]
resolution = 64
artifacts = "upsampling"
[[detectors]]
name = "command"
label = "brightness"
[detectors.params]
command = {example}
batch_size = 3
[[detectors]]
name = "command"
label = "broken"
[detectors.params]
command = {broken}
"""


def test_a_suite_records_the_broken_command_and_keeps_the_working_one(tmp_path):
    from facebench.harness.run.runner import run_suite
    from facebench.harness.data.suite import load_suite

    broken = child(tmp_path, 'print("no model here", file=sys.stderr)\nsys.exit(2)\n', "broken.py")
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE.format(example=json.dumps([PYTHON, str(EXAMPLE)]), broken=json.dumps(broken)))
    result = run_suite(load_suite(suite), tmp_path / "results", show_progress=False)
    assert [e["task"] for e in result.errors] == ["detect broken on faces"]
    assert "exited with code 2" in result.errors[0]["message"] and "no model here" in result.errors[0]["message"]
    detectors = {row["detector"] for row in result.metrics}
    assert detectors == {"brightness"}
    assert result.run["status"] == "partial"
    (speed,) = [t for t in result.throughput if t["kind"] == "detector"]
    assert speed["device"] == "external" and speed["batch_size"] == 3


def test_cli_detect_with_a_toml_list_param(tmp_path):
    from facebench.harness.cli import app

    runner = CliRunner()
    corpus = tmp_path / "corpus"
    made = runner.invoke(app, ["generate", "parametric", "--n", "6", "--artifacts", "upsampling", "-p", "resolution=64",
                               "--out", str(corpus)])
    assert made.exit_code == 0, made.output
    param = f"command={json.dumps([PYTHON, str(EXAMPLE)])}"
    result = runner.invoke(app, ["detect", "command", str(corpus), "-p", param, "-p", "timeout=10",
                                 "--results", str(tmp_path / "results")])
    assert result.exit_code == 0, result.output
    assert "suite detect brightness" in result.output  # labelled by the name the program announces, not "command"
    failed = runner.invoke(app, ["detect", "command", str(corpus), "-p", "command=no-such-detector-xyz",
                                 "--results", str(tmp_path / "results")])
    assert failed.exit_code == 2  # the program is checked before any work
    assert "not found on PATH" in failed.output


def test_registry_creates_it():
    detector = registry.create("detector", "command", command=[PYTHON, str(EXAMPLE)], requires_fit=True)
    assert detector.requires_fit and detector.inputs == ("pixels",) and detector.batch_size == 32
    with pytest.raises(registry.PluginError, match="image_format"):
        registry.create("detector", "command", command=[PYTHON, str(EXAMPLE)], image_format="gif")
