"""Issue 9, item 1: hostile files never run code.

Every file here is built by the test and would, if anything from it ran, create a marker
file (``os.system``, ``eval``, ``subprocess``) or import a module whose top level creates
one. Every loader that reads a pickle-based file must refuse it with one line naming the
file, and no marker may exist afterwards.

Other checks of the same promise live beside the code they test:
``tests/test_stylegan2_pickles.py`` (``module_src`` of official network pickles is never run,
every forbidden global, storage blobs) and ``tests/test_learned_detectors.py`` (io.open in a
checkpoint).
"""

from __future__ import annotations

import builtins
import json
import os
import pickle
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from facebench.detectors.checkpoint import CheckpointDetector, CheckpointError, read_state_dict
from facebench.generators.stylegan2.loading import load_network
from facebench.generators.stylegan2.pickles import NetworkPickleError, read_network_pickle
from facebench.harness.contracts import registry
from facebench.harness.cli import app
from facebench.harness.contracts.errors import FacebenchError

EVIL_MODULE = "fb_faults_evil_module"


class Call:
    """Pickles as a call of ``function(*args)``: what a hostile ``__reduce__`` does."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


@pytest.fixture
def markers(tmp_path, monkeypatch):
    """(ran, imported): files created if a payload ran or the evil module was imported.

    The evil module lies on sys.path for the test, so a loader that imported it would succeed.
    """
    ran, imported = tmp_path / "RAN", tmp_path / "IMPORTED"
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / f"{EVIL_MODULE}.py").write_text(f"open({str(imported)!r}, 'w').close()\ndef f(*args): pass\n")
    monkeypatch.syspath_prepend(str(modules))
    sys.modules.pop(EVIL_MODULE, None)
    yield ran, imported
    assert not ran.exists(), "a payload from a hostile file ran"
    assert not imported.exists() and EVIL_MODULE not in sys.modules, "a loader imported a module a file named"


def payloads(ran: Path) -> dict[str, object]:
    """A payload object per kind of attack; pickling them never runs them."""
    stand_in = types.ModuleType(EVIL_MODULE)  # pickled by reference only; the real module is never imported here

    def f(*args):
        raise AssertionError("never called")

    f.__module__, f.__qualname__ = EVIL_MODULE, "f"
    stand_in.f = f
    return {
        "os.system": Call(os.system, f"touch '{ran}'"),
        "eval": Call(builtins.eval, f"__import__('os').system(\"touch '{ran}'\")"),
        "exec": Call(builtins.exec, f"open({str(ran)!r}, 'w').close()"),
        "subprocess": Call(subprocess.check_call, ["touch", str(ran)]),
        "import": (stand_in, Call(f)),
    }


def write(path: Path, payload, container: str, key: str) -> Path:
    """``{key: payload}`` (next to a real tensor) written as a plain pickle or a torch checkpoint."""
    stand_in = None
    if isinstance(payload, tuple):
        stand_in, payload = payload
        sys.modules[EVIL_MODULE] = stand_in
    obj = {key: {"weight": torch.zeros(2), "evil": payload}} if key == "model" else {key: payload}
    try:
        if container.startswith("pickle"):
            path.write_bytes(pickle.dumps(obj, protocol=int(container[-1])))
        else:
            torch.save(obj, path, _use_new_zipfile_serialization=container == "torch-zip")
    finally:
        if stand_in is not None:
            del sys.modules[EVIL_MODULE]
    return path


def one_clear_line(exc: BaseException, path: Path) -> str:
    text = str(exc)
    assert isinstance(exc, FacebenchError), type(exc)
    assert "\n" not in text and str(path) in text, text
    assert "weights_only set to `False`" not in text  # never the advice to load it unsafely
    return text


KINDS = ("os.system", "eval", "exec", "subprocess", "import")
CONTAINERS = ("pickle2", "pickle4", "torch-zip", "torch-legacy")


@pytest.mark.parametrize("container", CONTAINERS)
@pytest.mark.parametrize("kind", KINDS)
def test_stylegan2_network_loader_refuses_hostile_pickles(tmp_path, markers, kind, container):
    ran, _ = markers
    path = write(tmp_path / "network.pkl", payloads(ran)[kind], container, "G_ema")
    with pytest.raises(NetworkPickleError) as info:
        load_network(path)
    one_clear_line(info.value, path)
    if container != "torch-legacy":  # its first pickle is a plain int, which is all this reader reads
        with pytest.raises(NetworkPickleError):
            read_network_pickle(path, key=None)


@pytest.mark.parametrize("container", CONTAINERS)
@pytest.mark.parametrize("kind", KINDS)
def test_checkpoint_loader_refuses_hostile_weights(tmp_path, markers, kind, container):
    ran, _ = markers
    path = write(tmp_path / "weights.pth", payloads(ran)[kind], container, "model")
    with pytest.raises(CheckpointError) as info:
        read_state_dict(path)
    text = one_clear_line(info.value, path)
    assert "nothing in it was run" in text
    if container.startswith("torch"):  # a real checkpoint: torch names the global it refused
        assert "refused" in text and ("system" in text or "eval" in text or "exec" in text
                                      or "check_call" in text or EVIL_MODULE in text), text


@pytest.mark.parametrize("suffix", [".pth", ".pt", ".bin", ".ckpt", ".safetensors"])
def test_every_checkpoint_suffix_refuses_a_hostile_file(tmp_path, markers, suffix):
    ran, _ = markers
    path = write(tmp_path / f"weights{suffix}", payloads(ran)["os.system"], "torch-zip", "model")
    with pytest.raises(CheckpointError) as info:
        CheckpointDetector(weights=str(path), arch="resnet18")
    one_clear_line(info.value, path)


def test_plugins_built_through_the_registry_refuse_hostile_files(tmp_path, markers):
    ran, _ = markers
    network = write(tmp_path / "network.pkl", payloads(ran)["os.system"], "pickle2", "G_ema")
    weights = write(tmp_path / "weights.pth", payloads(ran)["os.system"], "torch-zip", "model")
    with pytest.raises(FacebenchError, match="network.pkl"):
        registry.create("generator", "stylegan2", network=str(network))
    with pytest.raises(FacebenchError, match="weights.pth"):
        registry.create("detector", "checkpoint", weights=str(weights), arch="resnet18")


def test_cli_convert_refuses_a_hostile_pickle_and_writes_nothing(tmp_path, markers):
    ran, _ = markers
    network = write(tmp_path / "network.pkl", payloads(ran)["eval"], "pickle4", "G_ema")
    out = tmp_path / "out.safetensors"
    result = CliRunner().invoke(app, ["stylegan2", "convert", str(network), str(out)])
    assert result.exit_code == 1
    assert "network.pkl" in result.stderr and "nothing from the file was run" in result.stderr
    assert "Traceback" not in result.output and not out.exists()
    assert not list(tmp_path.glob(".out*"))  # no partial output either


RUN_SUITE = """
name = "hostile"
[bootstrap]
resamples = 0
[[generators]]
name = "parametric"
count = 8
batch_size = 8
[generators.params]
resolution = 64
artifacts = "upsampling:0.5"
[[detectors]]
name = "spectrum"
[[detectors]]
name = "checkpoint"
[detectors.params]
weights = "{weights}"
arch = "resnet18"
"""


def test_a_run_with_hostile_weights_records_the_refusal_and_keeps_the_rest(tmp_path, markers):
    ran, _ = markers
    weights = write(tmp_path / "weights.pth", payloads(ran)["subprocess"], "torch-zip", "model")
    suite = tmp_path / "suite.toml"
    suite.write_text(RUN_SUITE.format(weights=weights))
    results = tmp_path / "results"
    result = CliRunner().invoke(app, ["run", str(suite), "--results", str(results), "--no-progress", "--no-report"])
    assert result.exit_code == 1, result.output
    from facebench.harness.data.store import Store

    store = Store(results / "facebench.sqlite")
    run = store.run()
    assert run["status"] == "partial"
    (error,) = store.errors(run["run_id"])
    assert "checkpoint" in error["task"] and "weights.pth" in error["message"] and "refused" in error["message"]
    assert {m["detector"] for m in store.metrics(run["run_id"])} == {"spectrum"}


def test_diffusion_pipelines_refuse_hostile_weights_and_unknown_libraries(tmp_path, markers):
    """diffusers loads .bin weights with weights_only=True and imports no library a model_index names."""
    diffusers = pytest.importorskip("diffusers")
    from facebench.generators.diffusion import DiffusionError, DiffusionGenerator

    ran, _ = markers
    unet = diffusers.UNet2DModel(sample_size=8, in_channels=3, out_channels=3, layers_per_block=1, block_out_channels=(4, 4),
                                 norm_num_groups=2, down_block_types=("DownBlock2D",) * 2, up_block_types=("UpBlock2D",) * 2)
    pipeline = tmp_path / "pipeline"
    diffusers.DDPMPipeline(unet=unet, scheduler=diffusers.DDPMScheduler(num_train_timesteps=10)).save_pretrained(
        pipeline, safe_serialization=False)
    weights = pipeline / "unet" / "diffusion_pytorch_model.bin"
    assert weights.is_file()
    write(weights, payloads(ran)["os.system"], "torch-zip", "conv_in.weight")
    with pytest.raises(DiffusionError) as info:
        DiffusionGenerator(str(pipeline), steps=1)
    one_clear_line(info.value, pipeline)

    library = tmp_path / "library"
    diffusers.DDPMPipeline(unet=unet, scheduler=diffusers.DDPMScheduler(num_train_timesteps=10)).save_pretrained(library)
    index = json.loads((library / "model_index.json").read_text())
    index["unet"] = [EVIL_MODULE, "f"]
    (library / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(DiffusionError) as info:
        DiffusionGenerator(str(library), steps=1)
    one_clear_line(info.value, library)


# -- the command detector never runs a shell ---------------------------------------------------

ECHO_ARGV = """\
import json, sys
hello = json.loads(sys.stdin.readline())
with open(sys.argv[1], "w") as handle:
    json.dump(sys.argv[2:], handle)
print(json.dumps({"type": "ready"}), flush=True)
for line in sys.stdin:
    if json.loads(line).get("type") == "bye":
        break
"""

SHELLISH = ["a; touch {m}1", "$(touch {m}2)", "`touch {m}3`", "x | touch {m}4", "&& touch {m}5", "$HOME", "*", "> {m}6"]


@pytest.mark.skipif(os.name != "posix", reason="the command detector needs POSIX")
def test_command_arguments_reach_the_child_literally(tmp_path):
    from facebench.detectors.command import CommandDetector

    script = tmp_path / "echo_argv.py"
    script.write_text(textwrap.dedent(ECHO_ARGV))
    marker = tmp_path / "M"
    received = tmp_path / "argv.json"
    arguments = [a.format(m=marker) for a in SHELLISH]
    with CommandDetector([sys.executable, str(script), str(received), *arguments]) as detector:
        detector.start()
    assert json.loads(received.read_text()) == arguments
    # the string form is split like a shell would, but no shell runs: ';' and '$(...)' stay words
    line = f"{sys.executable} {script} {received} ; touch {marker}7 '$(touch {marker}8)' $HOME"
    with CommandDetector(line) as detector:
        detector.start()
    assert json.loads(received.read_text()) == [";", "touch", f"{marker}7", f"$(touch {marker}8)", "$HOME"]
    assert not list(tmp_path.glob("M*"))
