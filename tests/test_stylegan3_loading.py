"""Loading StyleGAN3 networks (official-structure pickles, our safetensors format) and the stylegan3 plug-in."""

from __future__ import annotations

import json
import os
import pickle
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from typer.testing import CliRunner

from facebench.generators.stylegan2.loading import (
    STYLEGAN3_CONFIG_KEY,
    NetworkError,
    convert,
    load_network,
    network_family,
    save_network,
)
from facebench.generators.stylegan2.pickles import UnsafePickleError
from facebench.generators.stylegan3 import Generator
from facebench.harness.cli import app

from test_stylegan2_pickles import Persistent, Reduce, marker_source, official_modules
from test_stylegan3_network import CASES, FIXTURES, TOLERANCE, config, fixture_array, fixture_generator

OFFICIAL_CLASS = {"Generator": "Generator", "MappingNetwork": "MappingNetwork", "SynthesisNetwork": "SynthesisNetwork",
                  "SynthesisInput": "SynthesisInput", "SynthesisLayer": "SynthesisLayer",
                  "FullyConnectedLayer": "FullyConnectedLayer"}


def persistent(module: torch.nn.Module, official, source: str, init_kwargs: dict | None = None,
               tweak=None) -> Persistent:
    """``module`` as the official StyleGAN3 code pickles a persistent network object."""
    state = dict(module.__getstate__())
    state["_modules"] = OrderedDict((name, persistent(child, official, source, tweak=tweak))
                                    for name, child in module._modules.items())
    state.pop("init_kwargs", None)
    state["_init_args"] = ()
    state["_init_kwargs"] = official.EasyDict(init_kwargs or {})
    if isinstance(state.get("padding"), tuple):
        state["padding"] = list(state["padding"])  # the official layers keep a list
    if tweak:
        tweak(type(module).__name__, state)
    meta = dict(type="class", version=6, module_src=source, class_name=OFFICIAL_CLASS[type(module).__name__], state=state)
    return Persistent(official.reconstruct, meta)


def write_stylegan3_pickle(path: Path, G: Generator, init_kwargs: dict, marker: Path, tweak=None, extra=None) -> Path:
    with official_modules() as official:
        kwargs = {k: official.EasyDict(v) if isinstance(v, dict) else v for k, v in init_kwargs.items()}
        data = {"G": None, "D": None, "G_ema": persistent(G, official, marker_source(marker), kwargs, tweak),
                "augment_pipe": None, "training_set_kwargs": official.EasyDict(resolution=G.img_resolution)}
        data.update(extra or {})
        path.write_bytes(pickle.dumps(data, protocol=2))
    return path


@pytest.fixture(scope="module")
def pickles(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sg3")
    marker = folder / "MODULE_SRC_RAN"
    paths = {case: write_stylegan3_pickle(folder / f"{case}.pkl", fixture_generator(case), config(case)["init_kwargs"],
                                          marker) for case in CASES}
    return paths, marker


def max_error(G, case: str, psi: str = "psi07") -> float:
    z = fixture_array(case, "z")
    with torch.no_grad():
        images = G(z, None, truncation_psi=0.7 if psi == "psi07" else 1.0)
    return float((images - fixture_array(case, f"img_{psi}")).abs().max())


@pytest.mark.parametrize("case", CASES)
def test_official_pickle_loads_and_draws_the_official_images_without_running_its_code(pickles, case):
    paths, marker = pickles
    G = load_network(paths[case])
    assert network_family(G) == "stylegan3"
    assert G.init_kwargs["channel_base"] == config(case)["init_kwargs"]["channel_base"]
    for psi in ("psi1", "psi07"):
        assert max_error(G, case, psi) <= TOLERANCE
    assert not marker.exists()


@pytest.mark.parametrize("case", CASES)
def test_convert_keeps_the_images_and_records_the_family(pickles, case, tmp_path):
    paths, marker = pickles
    out = convert(paths[case], tmp_path / f"{case}.safetensors")
    with safe_open(str(out), framework="pt") as handle:
        assert json.loads(handle.metadata()[STYLEGAN3_CONFIG_KEY])["img_resolution"] == 32
    G = load_network(out)
    assert network_family(G) == "stylegan3"
    assert max_error(G, case) <= TOLERANCE
    assert not marker.exists()


def test_fixture_layout_loads_with_the_config_beside_the_weights():
    G = load_network(FIXTURES / "tiny_r" / "weights.safetensors")
    assert network_family(G) == "stylegan3" and G.synthesis.L0_36_128.down_radial
    assert max_error(G, "tiny_r") <= TOLERANCE


def test_convert_command_for_stylegan3(pickles, tmp_path):
    paths, _ = pickles
    out = tmp_path / "t.safetensors"
    result = CliRunner().invoke(app, ["stylegan3", "convert", str(paths["tiny_t"]), str(out)])
    assert result.exit_code == 0, result.output
    assert max_error(load_network(out), "tiny_t") <= TOLERANCE


@pytest.mark.parametrize("name", ["net.PKL", "net.pickle", "net.Pickle"])
def test_pickle_suffixes_in_any_case(pickles, tmp_path, name):
    paths, _ = pickles
    copy = tmp_path / name
    copy.write_bytes(paths["tiny_t"].read_bytes())
    assert network_family(load_network(copy)) == "stylegan3"


def test_a_stylegan3_pickle_with_a_hostile_payload_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "PWNED"
    path = write_stylegan3_pickle(tmp_path / "evil.pkl", fixture_generator("tiny_t"), config("tiny_t")["init_kwargs"],
                                  tmp_path / "m", extra={"payload": Reduce(os.system, f"touch {marker}")})
    with pytest.raises(UnsafePickleError, match="system"):
        load_network(path)
    assert not marker.exists() and not (tmp_path / "m").exists()


def test_a_hostile_payload_deep_inside_a_layer_is_refused(tmp_path):
    marker = tmp_path / "PWNED"

    def tweak(class_name, state):
        if class_name == "SynthesisLayer":
            state["in_size"] = Reduce(os.system, f"touch {marker}")

    path = write_stylegan3_pickle(tmp_path / "evil.pkl", fixture_generator("tiny_r"), config("tiny_r")["init_kwargs"],
                                  tmp_path / "m", tweak=tweak)
    with pytest.raises(UnsafePickleError, match="system"):
        load_network(path)
    assert not marker.exists()


def test_weights_that_do_not_fit_are_refused_by_name(tmp_path):
    def tweak(class_name, state):
        if class_name == "SynthesisInput":
            state["_buffers"]["freqs"] = torch.zeros(3, 2)

    path = write_stylegan3_pickle(tmp_path / "bad.pkl", fixture_generator("tiny_t"), config("tiny_t")["init_kwargs"],
                                  tmp_path / "m", tweak=tweak)
    with pytest.raises(NetworkError, match="StyleGAN3 .*wrong shape: synthesis.input.freqs"):
        load_network(path)


def test_our_format_round_trips(tmp_path):
    G = fixture_generator("tiny_t")
    path = save_network(G, tmp_path / "g.safetensors")
    ws = fixture_array("tiny_t", "ws_psi1")
    with torch.no_grad():
        assert torch.equal(G.synthesis(ws), load_network(path).synthesis(ws))


# ---- the plug-in -----------------------------------------------------------------------------------

SMALL = dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, mapping_kwargs={"num_layers": 1},
             channel_base=128, channel_max=8, num_layers=4, margin_size=2)


def small_generator(**changes) -> Generator:
    torch.manual_seed(0)
    G = Generator(**{**SMALL, **changes}).eval()
    with torch.no_grad():  # per-sample rotations and translations, as trained networks have
        G.synthesis.input.affine.weight.normal_()
    return G


@pytest.fixture(scope="module")
def small_pickle(tmp_path_factory):
    folder = tmp_path_factory.mktemp("small")
    return write_stylegan3_pickle(folder / "small.pkl", small_generator(), SMALL, folder / "MODULE_SRC_RAN")


def create(network, **params):
    from facebench.harness.contracts import registry

    return registry.create("generator", "stylegan3", network=str(network), **params)


def test_plugin_draws_what_the_network_draws_for_each_seed(pickles):
    from facebench.generators.stylegan2.generator import to_uint8

    paths, _ = pickles
    batch = create(paths["tiny_t"], truncation_psi=0.7).generate([3, 11])
    G = load_network(paths["tiny_t"])
    z = torch.from_numpy(np.concatenate([np.random.RandomState(seed).randn(1, 32) for seed in (3, 11)]))
    with torch.no_grad():
        assert np.array_equal(batch.images, to_uint8(G(z, None, truncation_psi=0.7)))
    record = batch.records[1]
    assert record.id == "stylegan3-00000011-fake" and record.seed == 11 and record.source == "stylegan3"
    assert record.meta["truncation_psi"] == 0.7 and "noise_mode" not in record.meta


@pytest.mark.parametrize("batch_size", [1, 2, 5])
def test_plugin_image_depends_only_on_its_seed_exactly(small_pickle, batch_size):
    seeds = [4, 5, 6, 7, 8]
    reference = create(small_pickle, batch_size=1).generate([6]).images[0]
    together = create(small_pickle, batch_size=batch_size).generate(seeds).images
    assert np.array_equal(together[2], reference)
    assert not np.array_equal(together[0], together[1])


def test_batched_mode_is_within_one_level(small_pickle):
    seeds = list(range(6))
    exact = create(small_pickle).generate(seeds).images.astype(int)
    batched = create(small_pickle, batch_size=4, batched=True).generate(seeds).images.astype(int)
    assert np.abs(exact - batched).max() <= 1


def test_translate_and_rotate_set_the_input_transform(small_pickle):
    from facebench.generators.stylegan3.networks import make_transform

    plain = create(small_pickle)
    moved = create(small_pickle, translate="0.25,-0.1", rotate=30)
    assert torch.allclose(moved.G.synthesis.input.transform.double(), torch.from_numpy(make_transform((0.25, -0.1), 30)))
    assert not np.array_equal(plain.generate([1]).images, moved.generate([1]).images)
    record = moved.generate([1]).records[0]
    assert record.meta["translate"] == [0.25, -0.1] and record.meta["rotate"] == 30.0
    assert moved.config()["translate"] == [0.25, -0.1] and "translate" not in plain.generate([1]).records[0].meta
    with pytest.raises(Exception, match="translate must be two numbers"):
        create(small_pickle, translate="0.1")


def test_each_family_has_its_own_plugin(small_pickle, tmp_path):
    from facebench.generators.stylegan2 import Generator as StyleGAN2
    from facebench.harness.contracts import registry

    with pytest.raises(registry.PluginError, match="StyleGAN3 network; draw from it with the stylegan3 generator"):
        registry.create("generator", "stylegan2", network=str(small_pickle))
    sg2 = save_network(StyleGAN2(z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3,
                                 synthesis_kwargs={"channel_base": 32, "channel_max": 8}), tmp_path / "sg2.safetensors")
    with pytest.raises(registry.PluginError, match="StyleGAN2 network; draw from it with the stylegan2 generator"):
        create(sg2)


def test_class_conditional_models_need_a_class(tmp_path):
    from facebench.harness.contracts import registry

    path = save_network(small_generator(c_dim=3), tmp_path / "cond.safetensors")
    with pytest.raises(registry.PluginError, match="class_idx in 0..2"):
        create(path)
    a = create(path, class_idx=0).generate([1])
    b = create(path, class_idx=2).generate([1])
    assert not np.array_equal(a.images, b.images) and b.records[0].meta["class_idx"] == 2


def test_generate_command_writes_a_corpus_that_verifies(small_pickle, tmp_path):
    from facebench.harness.data.corpus import Corpus

    out = tmp_path / "corpus"
    result = CliRunner().invoke(app, ["generate", "stylegan3", "-p", f"network={small_pickle}", "--n", "4",
                                      "-p", "truncation_psi=0.7", "-p", "translate=0.1,0", "-p", "rotate=10",
                                      "--batch-size", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    corpus = Corpus.open(out)
    assert corpus.meta["counts"] == {"images": 4, "real": 0, "fake": 4}
    params = corpus.meta["generators"][0]["params"]
    assert params["truncation_psi"] == 0.7 and params["translate"] == [0.1, 0.0] and params["rotate"] == 10.0
    verify = CliRunner().invoke(app, ["corpus", "verify", str(out)])
    assert verify.exit_code == 0, verify.output


@pytest.mark.slow
def test_plugin_with_torch_compile_draws_the_same_images(small_pickle):
    """torch.compile (inductor, tens of seconds on a CPU) must not change the faces."""
    plain = create(small_pickle).generate([0, 1])
    compiled = create(small_pickle, compile=True).generate([0, 1])
    assert np.abs(plain.images.astype(int) - compiled.images.astype(int)).max() <= 1


SUITE = """
name = "sg2-and-sg3"
[split]
test_fraction = 0.5
seed = 0

[[generators]]
name = "stylegan2"
label = "mine-sg2"
count = 12
[generators.params]
network = "{sg2}"
[generators.reals]
name = "folder"
count = 12
[generators.reals.params]
path = "{photos}"
resolution = 16

[[generators]]
name = "stylegan3"
label = "mine-sg3"
count = 12
[generators.params]
network = "{sg3}"
translate = "0.05,0"
[generators.reals]
name = "folder"
count = 12
[generators.reals.params]
path = "{photos}"
resolution = 16

[[detectors]]
name = "spectrum"
"""


def test_a_suite_with_stylegan2_and_stylegan3_corpora_runs_end_to_end(small_pickle, tmp_path):
    from PIL import Image

    from facebench.generators.parametric.face import render_faces, sample_face_params
    from facebench.generators.stylegan2 import Generator as StyleGAN2
    from facebench.harness.run.runner import run_suite
    from facebench.harness.data.store import Store
    from facebench.harness.data.suite import load_suite

    photos = tmp_path / "photos"
    photos.mkdir()
    for seed, image in enumerate(render_faces([sample_face_params(s) for s in range(12)], 32).images):
        Image.fromarray(image).save(photos / f"photo{seed:02d}.png")
    torch.manual_seed(1)
    sg2 = save_network(StyleGAN2(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3,
                                 synthesis_kwargs={"channel_base": 64, "channel_max": 8}), tmp_path / "sg2.safetensors")
    path = tmp_path / "suite.toml"
    path.write_text(SUITE.format(sg2=sg2, sg3=small_pickle, photos=photos))
    result = run_suite(load_suite(path), tmp_path / "results", show_progress=False)
    assert result.errors == []
    metrics = Store(tmp_path / "results" / "facebench.sqlite").metrics(result.run["run_id"])
    corpora = {m["corpus"] for m in metrics if m["metric"] == "auc"}
    assert corpora == {"mine-sg2", "mine-sg3"}


def test_the_documented_example_suite_names_real_plugins_and_parameters():
    from facebench.harness.run.runner import check_suite
    from facebench.harness.data.suite import load_suite

    suite = load_suite(Path(__file__).parents[1] / "benchmarks" / "suites" / "examples" / "stylegan3-vs-photos.toml")
    check_suite(suite)
    assert suite.generators[0].name == "stylegan3" and suite.generators[0].reals.name == "folder"


@pytest.mark.parametrize("first", ["facebench.generators.stylegan3", "facebench.generators.stylegan2.loading",
                                   "facebench.generators.stylegan3.generator"])
def test_either_package_imports_first(first):
    """The loader reads both families and the stylegan3 package re-exports it: no import cycle."""
    import subprocess
    import sys

    code = (f"import {first}; from facebench.generators.stylegan3 import load_network; "
            "from facebench.generators.stylegan2 import load_network")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
