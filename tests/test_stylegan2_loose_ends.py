"""StyleGAN2 loose ends of issue 21: random noise drawn as the official code draws it, networks
pickled without init_kwargs."""

from __future__ import annotations

import pytest
import torch

from facebench.generators.stylegan2 import Generator
from facebench.generators.stylegan2.loading import NetworkError, load_network

from test_stylegan2_loading import fixture_generator, write_network_pickle


def noisy_generator() -> Generator:
    torch.manual_seed(0)
    G = Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, mapping_kwargs={"num_layers": 1},
                  synthesis_kwargs={"channel_base": 64, "channel_max": 8}).eval()
    for name, param in G.named_parameters():
        if name.endswith("noise_strength"):
            param.data.fill_(0.5)
    return G


def test_random_noise_is_drawn_for_the_whole_batch_as_the_official_code_does(monkeypatch):
    """The official code draws each layer's noise for the whole batch, layer by layer; splitting
    the batch into CPU passes must not change which numbers each image gets."""
    G = noisy_generator()
    ws = G.mapping(torch.randn(4, 8), None)
    with torch.no_grad():
        torch.manual_seed(123)
        whole = G.synthesis(ws, noise_mode="random", fused_modconv=False)
        monkeypatch.setattr(G.synthesis, "CPU_CHUNK_ELEMENTS", 1)  # one image per pass, unless noise is random
        torch.manual_seed(123)
        split = G.synthesis(ws, noise_mode="random", fused_modconv=False)
        const_split = G.synthesis(ws, noise_mode="const", fused_modconv=False)
        monkeypatch.setattr(G.synthesis, "CPU_CHUNK_ELEMENTS", 1 << 62)
        const_whole = G.synthesis(ws, noise_mode="const", fused_modconv=False)
    assert torch.allclose(whole, split, atol=1e-5)
    assert torch.allclose(const_whole, const_split, atol=1e-5)


def test_a_pickle_without_init_kwargs_is_rebuilt_from_its_tensors(tmp_path):
    path = write_network_pickle(tmp_path / "bare.pkl", fixture_generator(), {}, tmp_path / "m")
    G = load_network(path)
    reference = fixture_generator()
    assert G.init_kwargs["img_resolution"] == 32 and G.init_kwargs["z_dim"] == reference.z_dim
    ws = reference.mapping(torch.randn(2, reference.z_dim), None)
    with torch.no_grad():
        assert torch.equal(G.synthesis(ws, noise_mode="const"), reference.synthesis(ws, noise_mode="const"))
        assert torch.equal(G.mapping.fc0.weight, reference.mapping.fc0.weight)


@pytest.mark.parametrize("options", [
    dict(c_dim=3, synthesis_kwargs={"architecture": "resnet", "channel_base": 128, "channel_max": 16}),
    dict(synthesis_kwargs={"architecture": "orig", "channel_base": 64, "channel_max": 64, "use_noise": False}),
    dict(mapping_kwargs={"num_layers": 3, "layer_features": 24, "lr_multiplier": 0.1},
         synthesis_kwargs={"channel_base": 256, "channel_max": 16, "conv_clamp": 256}),
])
def test_inferred_arguments_reproduce_each_architecture(tmp_path, options):
    torch.manual_seed(0)
    kwargs = {"z_dim": 8, "c_dim": 0, "w_dim": 8, "img_resolution": 16, "img_channels": 3, **options}
    original = Generator(**kwargs).eval()
    with torch.no_grad():
        for param in original.parameters():
            param.normal_()
    G = load_network(write_network_pickle(tmp_path / "bare.pkl", original, {}, tmp_path / "m"))
    z = torch.randn(2, 8)
    c = torch.eye(3)[:2] if original.c_dim else None
    with torch.no_grad():
        assert torch.equal(G(z, c, noise_mode="const"), original(z, c, noise_mode="const"))


def test_what_tensors_cannot_tell_is_named(tmp_path):
    def tweak(class_name, state):
        if class_name == "FullyConnectedLayer":
            state.pop("bias_gain", None)
        if class_name == "SynthesisLayer":
            state.pop("conv_clamp", None)

    path = write_network_pickle(tmp_path / "bare.pkl", fixture_generator(), {}, tmp_path / "m", tweak=tweak)
    with pytest.raises(NetworkError, match=r"do not determine the mapping's lr_multiplier \(fc0.bias_gain\) or conv_clamp"):
        load_network(path)


def test_a_stylegan3_pickle_without_init_kwargs_says_what_is_missing(tmp_path):
    from test_stylegan3_loading import write_stylegan3_pickle
    from test_stylegan3_network import fixture_generator as stylegan3_fixture

    path = write_stylegan3_pickle(tmp_path / "bare.pkl", stylegan3_fixture("tiny_t"), {}, tmp_path / "m")
    with pytest.raises(NetworkError, match="init_kwargs lack z_dim, c_dim, w_dim, img_resolution, img_channels"):
        load_network(path)
