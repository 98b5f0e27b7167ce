"""Loading StyleGAN2 networks (official pickles, our safetensors format) and the stylegan2 plug-in."""

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
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from facebench.generators.stylegan2 import Generator
from facebench.generators.stylegan2.loading import CONFIG_KEY, NetworkError, build_generator, load_network, save_network
from facebench.generators.stylegan2.pickles import UnsafePickleError
from facebench.harness.contracts import registry
from facebench.harness.cli import app
from facebench.harness.data.corpus import Corpus

from test_stylegan2_pickles import Persistent, Reduce, marker_source, official_modules

FIXTURE = Path(__file__).parent / "fixtures" / "stylegan2" / "tiny32"
OFFICIAL_CLASS = {
    "Generator": "Generator", "MappingNetwork": "MappingNetwork", "SynthesisNetwork": "SynthesisNetwork",
    "SynthesisBlock": "SynthesisBlock", "SynthesisLayer": "SynthesisLayer", "ToRGBLayer": "ToRGBLayer",
    "FullyConnectedLayer": "FullyConnectedLayer", "SkipLayer": "Conv2dLayer",
}


def fixture_config() -> dict:
    return json.loads((FIXTURE / "config.json").read_text())


def fixture_generator() -> Generator:
    return build_generator(fixture_config()["init_kwargs"], load_file(FIXTURE / "weights.safetensors"))


def persistent(module: torch.nn.Module, official, source: str, init_kwargs: dict | None = None,
               tweak=None) -> Persistent:
    """``module`` as the official code pickles a persistent network object."""
    state = dict(module.__getstate__())
    state["_modules"] = OrderedDict((name, persistent(child, official, source, tweak=tweak)) for name, child in module._modules.items())
    state.pop("init_kwargs", None)
    state["_init_args"] = ()
    state["_init_kwargs"] = official.EasyDict(init_kwargs or {})
    if tweak:
        tweak(type(module).__name__, state)
    meta = dict(type="class", version=4, module_src=source, class_name=OFFICIAL_CLASS[type(module).__name__], state=state)
    return Persistent(official.reconstruct, meta)


def write_network_pickle(path: Path, G: Generator, init_kwargs: dict, marker: Path, tweak=None, extra=None) -> Path:
    with official_modules() as official:
        source = marker_source(marker)
        data = {
            "G": None, "D": None,
            "G_ema": persistent(G, official, source, init_kwargs=init_kwargs, tweak=tweak),
            "augment_pipe": None,
            "training_set_kwargs": official.EasyDict(resolution=32),
        }
        data.update(extra or {})
        path.write_bytes(pickle.dumps(data, protocol=2))
    return path


@pytest.fixture(scope="module")
def network_pickle(tmp_path_factory):
    folder = tmp_path_factory.mktemp("network")
    marker = folder / "MODULE_SRC_RAN"
    path = write_network_pickle(folder / "network.pkl", fixture_generator(), fixture_config()["init_kwargs"], marker)
    return path, marker


def fixture_images(name: str = "img_psi1_const") -> torch.Tensor:
    return torch.from_numpy(np.load(FIXTURE / f"{name}.npy"))


def test_official_pickle_loads_and_draws_the_official_images_without_running_its_code(network_pickle):
    path, marker = network_pickle
    G = load_network(path)
    z = torch.from_numpy(np.load(FIXTURE / "z.npy"))
    with torch.no_grad():
        for psi, name in ((1, "img_psi1_const"), (0.7, "img_psi07_const")):
            assert (G(z, None, truncation_psi=psi, noise_mode="const") - fixture_images(name)).abs().max() <= 1e-3
    assert not marker.exists()


def test_per_layer_attributes_in_the_pickle_win_over_missing_constructor_options(tmp_path):
    kwargs = json.loads(json.dumps(fixture_config()["init_kwargs"]))
    del kwargs["synthesis_kwargs"]["conv_clamp"]  # a writer that left the option out

    def tweak(class_name, state):
        if class_name in ("SynthesisLayer", "ToRGBLayer"):
            state["conv_clamp"] = 0.5  # what the layers actually ran with

    path = write_network_pickle(tmp_path / "n.pkl", fixture_generator(), kwargs, tmp_path / "m", tweak=tweak)
    G = load_network(path)
    assert G.synthesis.b32.conv1.conv_clamp == 0.5 and G.synthesis.b32.torgb.conv_clamp == 0.5
    assert G.init_kwargs["synthesis_kwargs"]["conv_clamp"] == 0.5


def test_a_pickle_that_calls_anything_else_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "PWNED"
    path = write_network_pickle(tmp_path / "evil.pkl", fixture_generator(), fixture_config()["init_kwargs"],
                                tmp_path / "m", extra={"payload": Reduce(os.system, f"touch {marker}")})
    with pytest.raises(UnsafePickleError, match="system"):
        load_network(path)
    assert not marker.exists()


def test_a_network_mixing_the_two_families_is_refused_with_a_clear_message(tmp_path):
    """StyleGAN3 pickles load (tests/test_stylegan3_loading.py); a StyleGAN2 network with a
    StyleGAN3 input layer grafted on fits neither and says so."""
    def tweak(class_name, state):
        if class_name == "SynthesisNetwork":
            state["_modules"]["input"] = state["_modules"]["b4"]  # StyleGAN3 has a SynthesisInput

    path = write_network_pickle(tmp_path / "sg3.pkl", fixture_generator(), fixture_config()["init_kwargs"], tmp_path / "m", tweak=tweak)
    with pytest.raises(NetworkError, match="cannot build a StyleGAN3 generator from its arguments"):
        load_network(path)


def test_our_format_round_trips_with_the_config_in_its_metadata(tmp_path):
    G = fixture_generator()
    path = save_network(G, tmp_path / "g.safetensors")
    with safe_open(str(path), framework="pt") as handle:
        assert json.loads(handle.metadata()[CONFIG_KEY])["img_resolution"] == 32
    z = torch.randn(2, 64)
    with torch.no_grad():
        assert torch.equal(G(z, None, noise_mode="const"), load_network(path)(z, None, noise_mode="const"))


def test_fixture_layout_loads_with_the_config_beside_the_weights():
    G = load_network(FIXTURE / "weights.safetensors")
    assert G.img_resolution == 32 and G.num_ws == 8


def test_bad_network_files_give_one_clear_error(tmp_path):
    bare = tmp_path / "bare.safetensors"
    save_file(load_file(FIXTURE / "weights.safetensors"), str(bare))
    with pytest.raises(NetworkError, match="no generator config"):
        load_network(bare)
    with pytest.raises(NetworkError, match="no such network file"):
        load_network(tmp_path / "missing.pkl")
    (tmp_path / "x.onnx").write_bytes(b"0")
    with pytest.raises(NetworkError, match="unknown network format"):
        load_network(tmp_path / "x.onnx")
    wrong = dict(load_file(FIXTURE / "weights.safetensors"))
    wrong["synthesis.b4.const"] = torch.zeros(3, 4, 4)
    with pytest.raises(NetworkError, match="wrong shape: synthesis.b4.const"):
        build_generator(fixture_config()["init_kwargs"], wrong)


def test_convert_command_writes_our_format_from_an_official_pickle(network_pickle, tmp_path):
    path, marker = network_pickle
    out = tmp_path / "converted.safetensors"
    result = CliRunner().invoke(app, ["stylegan2", "convert", str(path), str(out)])
    assert result.exit_code == 0, result.output
    z = torch.from_numpy(np.load(FIXTURE / "z.npy"))
    with torch.no_grad():
        assert (load_network(out)(z, None, noise_mode="const") - fixture_images()).abs().max() <= 1e-3
    again = CliRunner().invoke(app, ["stylegan2", "convert", str(path), str(out)])
    assert again.exit_code == 2 and "exists" in again.output
    assert not marker.exists()


# ---- the plug-in -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def network_file(tmp_path_factory):
    return str(save_network(fixture_generator(), tmp_path_factory.mktemp("net") / "tiny32.safetensors"))


def test_plugin_seeds_draw_the_official_faces(network_file):
    generator = registry.create("generator", "stylegan2", network=network_file, batch_size=3)
    batch = generator.generate([0, 1, 2, 3])
    reference = np.load(FIXTURE / "uint8_psi1_const.npy")  # z from RandomState(seed) for seeds 0..3
    assert np.abs(batch.images.astype(int) - reference.astype(int)).max() <= 1
    record = batch.records[2]
    assert record.label == 1 and record.seed == 2 and record.pair == "stylegan2-00000002"
    assert record.meta["truncation_psi"] == 1.0 and record.meta["noise_mode"] == "const"
    assert len(record.meta["network_sha256"]) == 64


@pytest.mark.parametrize("noise_mode", ["const", "random"])
def test_plugin_image_depends_only_on_its_seed(network_file, noise_mode):
    generator = registry.create("generator", "stylegan2", network=network_file, noise_mode=noise_mode, batch_size=2)
    together = generator.generate([5, 6, 7])
    alone = generator.generate([6])
    assert np.array_equal(together.images[1], alone.images[0])
    assert not np.array_equal(together.images[0], together.images[1])


def test_plugin_adds_pixel_artifacts_on_top_and_refuses_ones_needing_regions(network_file):
    generator = registry.create("generator", "stylegan2", network=network_file, artifacts="blob")
    batch = generator.generate([0, 1])
    ids = [r.id for r in batch.records]
    assert ids == ["stylegan2-00000000-fake", "stylegan2-00000001-fake", "stylegan2-00000000-blob", "stylegan2-00000001-blob"]
    assert batch.records[2].pair == batch.records[0].pair and "blob" in batch.records[2].masks
    # faces="off": no face analysis, so the artifact finds no region masks (tests/test_source_faces.py: the default)
    with pytest.raises(Exception, match="face/hair/background"):
        registry.create("generator", "stylegan2", network=network_file, artifacts="background_blur",
                        faces="off").generate([0])


def test_class_conditional_models_need_a_class(tmp_path):
    torch.manual_seed(0)
    G = Generator(z_dim=8, c_dim=3, w_dim=8, img_resolution=8, img_channels=3, mapping_kwargs={"num_layers": 1},
                  synthesis_kwargs={"channel_base": 32, "channel_max": 8})
    path = str(save_network(G, tmp_path / "cond.safetensors"))
    with pytest.raises(registry.PluginError, match="class_idx in 0..2"):
        registry.create("generator", "stylegan2", network=path)
    a = registry.create("generator", "stylegan2", network=path, class_idx=0).generate([1])
    b = registry.create("generator", "stylegan2", network=path, class_idx=2).generate([1])
    assert not np.array_equal(a.images, b.images) and b.records[0].meta["class_idx"] == 2


def test_generate_command_with_the_stylegan2_parameters(network_file, tmp_path):
    out = tmp_path / "corpus"
    result = CliRunner().invoke(app, ["generate", "stylegan2", "-p", f"network={network_file}", "--n", "5",
                                      "-p", "truncation_psi=0.7", "-p", "noise_mode=const", "--batch-size", "2",
                                      "-p", "device=cpu", "--out", str(out)])
    assert result.exit_code == 0, result.output
    corpus = Corpus.open(out)
    assert corpus.meta["counts"] == {"images": 5, "real": 0, "fake": 5}
    assert corpus.meta["generators"][0]["params"]["truncation_psi"] == 0.7
    assert all(r.meta["truncation_psi"] == 0.7 for r in corpus.records())
    bad = CliRunner().invoke(app, ["generate", "stylegan2", "-p", f"network={tmp_path / 'nope.pkl'}", "--n", "1",
                                   "--out", str(tmp_path / "x")])
    assert bad.exit_code != 0 and "no such network file" in bad.output


@pytest.mark.slow
def test_plugin_with_torch_compile_draws_the_same_images(network_file):
    """torch.compile (inductor, about 30 s on a CPU) must not change the faces."""
    plain = registry.create("generator", "stylegan2", network=network_file).generate([0, 1])
    compiled = registry.create("generator", "stylegan2", network=network_file, compile=True).generate([0, 1])
    assert np.abs(plain.images.astype(int) - compiled.images.astype(int)).max() <= 1


# ---- a suite: StyleGAN2 faces against a folder of real photos ---------------------------------------

SUITE = """
name = "sg2"
[split]
test_fraction = 0.5
seed = 0

[[generators]]
name = "stylegan2"
label = "mine"
count = 16
batch_size = 8
[generators.params]
network = "{network}"
resolution = {resolution}
[generators.reals]
name = "folder"
count = 16
[generators.reals.params]
path = "{photos}"
resolution = 32

[[detectors]]
name = "spectrum"
"""


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    from PIL import Image

    from facebench.generators.parametric.face import render_faces, sample_face_params

    folder = tmp_path_factory.mktemp("photos")
    for seed, image in enumerate(render_faces([sample_face_params(s) for s in range(16)], 64).images):
        Image.fromarray(image).save(folder / f"photo{seed:02d}.jpg", quality=90)
    return folder


def test_a_suite_scores_stylegan2_faces_against_real_photos(network_file, photos, tmp_path):
    from facebench.harness.run.runner import run_suite
    from facebench.harness.data.store import Store
    from facebench.harness.data.suite import load_suite

    path = tmp_path / "sg2.toml"
    path.write_text(SUITE.format(network=network_file, photos=photos, resolution=32))
    result = run_suite(load_suite(path), tmp_path / "results", show_progress=False)
    assert result.errors == []
    (corpus_dir,) = (tmp_path / "results" / "corpora").iterdir()
    corpus = Corpus.open(corpus_dir)
    assert corpus.meta["counts"] == {"images": 32, "real": 16, "fake": 16}
    assert [g["name"] for g in corpus.meta["generators"]] == ["stylegan2", "folder"]
    metrics = Store(tmp_path / "results" / "facebench.sqlite").metrics(result.run["run_id"])
    (auc,) = [m["value"] for m in metrics if m["corpus"] == "mine" and m["metric"] == "auc" and m["artifact"] == "all"]
    assert auc > 0.8  # random-weight StyleGAN noise against rendered photos: easy to tell apart


def test_sources_of_one_corpus_must_share_the_image_size(network_file, photos, tmp_path):
    from facebench.harness.run.corpora import MixedSizeError, generate_corpus
    from facebench.harness.data.suite import load_suite

    path = tmp_path / "sg2.toml"
    path.write_text(SUITE.format(network=network_file, photos=photos, resolution=64))
    (spec,) = load_suite(path).generators
    with pytest.raises(MixedSizeError, match="stylegan2: 64x64, folder: 32x32"):
        generate_corpus(spec, tmp_path / "corpus")
    assert not (tmp_path / "corpus").exists()


def test_the_documented_example_suite_names_real_plugins_and_parameters():
    from facebench.harness.run.runner import check_suite
    from facebench.harness.data.suite import load_suite

    suite = load_suite(Path(__file__).parents[1] / "benchmarks" / "suites" / "examples" / "stylegan2-vs-photos.toml")
    check_suite(suite)
    assert suite.generators[0].reals.name == "folder"
