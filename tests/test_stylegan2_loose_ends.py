"""StyleGAN2 loose ends of issue 21: random noise drawn as the official code draws it, networks
pickled without init_kwargs."""

from __future__ import annotations

import json
from collections import OrderedDict

import pytest
import torch
from safetensors.torch import load_file

from facebench.generators.stylegan2 import Generator
from facebench.generators.stylegan2.loading import NetworkError, load_network

from test_stylegan2_loading import FIXTURE, fixture_config, fixture_generator, write_network_pickle


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
