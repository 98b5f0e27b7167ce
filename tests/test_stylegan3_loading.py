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
