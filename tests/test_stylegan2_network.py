"""Our StyleGAN2 generator against the official code's outputs, and each part on tiny models."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from facebench.generators.stylegan2 import Generator
from facebench.generators.stylegan2.ops import fir_filter, modulated_conv2d, setup_filter, upsample2d

FIXTURE = Path(__file__).parent / "fixtures" / "stylegan2" / "tiny32"


@pytest.fixture(scope="module")
def official():
    config = json.loads((FIXTURE / "config.json").read_text())
    G = Generator(**config["init_kwargs"]).eval()
    G.load_state_dict(load_file(FIXTURE / "weights.safetensors"), strict=True)
    z = torch.from_numpy(np.load(FIXTURE / "z.npy"))
    return G, z, config


def test_official_state_dict_loads_unchanged_with_the_same_keys_and_shapes(official):
    G, _, config = official
    reference = load_file(FIXTURE / "weights.safetensors")
    ours = G.state_dict()
    assert set(ours) == set(reference)
    assert all(ours[k].shape == reference[k].shape for k in reference)
    assert G.num_ws == config["num_ws"] and G.z_dim == 64 and G.c_dim == 0 and G.w_dim == 64 and G.img_resolution == 32
    keys = list(ours)
    assert keys.index("synthesis.b4.const") < keys.index("mapping.fc0.weight")  # synthesis first, as official


@pytest.mark.parametrize(("psi", "cutoff", "name"), [(1, None, "ws_psi1"), (0.7, None, "ws_psi07"), (0.5, 4, "ws_psi05_cut4")])
def test_mapping_matches_the_official_ws(official, psi, cutoff, name):
    G, z, _ = official
    with torch.no_grad():
        ws = G.mapping(z, None, truncation_psi=psi, truncation_cutoff=cutoff)
    np.testing.assert_allclose(ws.numpy(), np.load(FIXTURE / f"{name}.npy"), atol=1e-5, rtol=0)


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize(("psi", "noise_mode", "name"),
                         [(1, "const", "img_psi1_const"), (0.7, "const", "img_psi07_const"), (1, "none", "img_psi1_none")])
def test_images_match_the_official_images(official, psi, noise_mode, name, fused):
    G, z, _ = official
    with torch.no_grad():
        image = G(z, None, truncation_psi=psi, noise_mode=noise_mode, fused_modconv=fused)
    reference = np.load(FIXTURE / f"{name}.npy")
    assert np.abs(reference).max() > 5  # random weights: far outside [-1, 1], so the check is demanding
    assert np.abs(image.numpy() - reference).max() <= 1e-3


def test_uint8_images_match_within_one_level(official):
    G, z, _ = official
    with torch.no_grad():
        image = G(z, None, noise_mode="const")
    ours = (image.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()
    assert np.abs(ours.astype(int) - np.load(FIXTURE / "uint8_psi1_const.npy").astype(int)).max() <= 1


def test_one_image_at_a_time_equals_the_batch(official):
    G, z, _ = official
    with torch.no_grad():
        batch = G(z, None, noise_mode="const")
        single = torch.cat([G(z[i : i + 1], None, noise_mode="const") for i in range(len(z))])
    assert (batch - single).abs().max() < 1e-3


# ---- tiny models ---------------------------------------------------------------------------------

def tiny(**synthesis):
    torch.manual_seed(0)
    kwargs = {"channel_base": 64, "channel_max": 8, **synthesis}
    return Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3,
                     mapping_kwargs={"num_layers": 2}, synthesis_kwargs=kwargs).eval()


def test_filter_is_the_normalised_outer_product():
    f = setup_filter([1, 3, 3, 1])
    assert f.shape == (4, 4) and torch.isclose(f.sum(), torch.tensor(1.0))
    assert torch.allclose(f, torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1])) / 64)


def test_upsample2d_doubles_the_size_keeps_a_flat_image_flat_and_spreads_an_impulse_by_the_filter():
    f = setup_filter([1, 3, 3, 1])
    flat = torch.full([1, 2, 6, 6], 3.0)
    up = upsample2d(flat, f)
    assert up.shape == (1, 2, 12, 12)
    assert torch.allclose(up[..., 2:-2, 2:-2], torch.tensor(3.0))  # interior: gain 4 over 1-in-4 samples
    impulse = torch.zeros([1, 1, 5, 5])
    impulse[0, 0, 2, 2] = 1.0
    spread = upsample2d(impulse, f)[0, 0]
    assert torch.isclose(spread.sum(), torch.tensor(4.0))  # gain 4
    assert torch.allclose(spread[3:7, 3:7], 4 * f)  # the (symmetric) filter around the 2x position, by the 2/1 padding


def test_fir_filter_convolves_rather_than_correlates():
    f = torch.tensor([[0.0, 1.0], [0.0, 0.0]])  # asymmetric on purpose
    x = torch.zeros([1, 1, 3, 3])
    x[0, 0, 1, 1] = 1.0
    y = fir_filter(x, f, pad=(1, 0, 1, 0))[0, 0]
    assert y[1, 2] == 1.0 and y.sum() == 1.0  # convolution shifts the impulse right (correlation: left)


def test_fused_and_unfused_modulated_convolution_agree_with_and_without_up_sampling():
    torch.manual_seed(1)
    x, weight, styles = torch.randn(3, 5, 6, 6), torch.randn(4, 5, 3, 3), torch.randn(3, 5)
    f = setup_filter([1, 3, 3, 1])
    for up in (1, 2):
        a = modulated_conv2d(x, weight, styles, up=up, padding=1, resample_filter=f, fused=False)
        b = modulated_conv2d(x, weight, styles, up=up, padding=1, resample_filter=f, fused=True)
        assert a.shape == (3, 4, 6 * up, 6 * up) and torch.allclose(a, b, atol=1e-5)


def test_demodulation_makes_the_output_independent_of_style_scale():
    torch.manual_seed(2)
    x, weight, styles = torch.randn(2, 5, 6, 6), torch.randn(4, 5, 3, 3), torch.randn(2, 5)
    a = modulated_conv2d(x, weight, styles, padding=1)
    b = modulated_conv2d(x, weight, styles * 7.0, padding=1)
    c = modulated_conv2d(x, weight, styles * 7.0, padding=1, demodulate=False)
    assert torch.allclose(a, b, atol=1e-5) and not torch.allclose(a, c, atol=1e-2)


def test_noise_modes():
    G = tiny()
    for name, param in G.named_parameters():
        if name.endswith("noise_strength"):
            param.data.fill_(0.5)
    ws = G.mapping(torch.randn(2, 8), None)
    with torch.no_grad():
        const = G.synthesis(ws, noise_mode="const")
        assert torch.equal(const, G.synthesis(ws, noise_mode="const"))
        assert not torch.allclose(const, G.synthesis(ws, noise_mode="random"))
        assert not torch.allclose(G.synthesis(ws, noise_mode="random"), G.synthesis(ws, noise_mode="random"))
        none = G.synthesis(ws, noise_mode="none")
        for name, param in G.named_parameters():
            if name.endswith("noise_strength"):
                param.data.zero_()
        assert torch.allclose(none, G.synthesis(ws, noise_mode="const"), atol=1e-6)
    with pytest.raises(ValueError, match="noise_mode"):
        G.synthesis(ws, noise_mode="loud")


def test_truncation_pulls_ws_towards_w_avg_and_respects_the_cutoff():
    G = tiny()
    G.mapping.w_avg.copy_(torch.randn(8))
    z = torch.randn(3, 8)
    with torch.no_grad():
        free = G.mapping(z, None)
        assert torch.allclose(G.mapping(z, None, truncation_psi=0), G.mapping.w_avg.expand_as(free))
        half = G.mapping(z, None, truncation_psi=0.5, truncation_cutoff=2)
    assert torch.allclose(half[:, :2], G.mapping.w_avg + 0.5 * (free[:, :2] - G.mapping.w_avg), atol=1e-6)
    assert torch.equal(half[:, 2:], free[:, 2:])


@pytest.mark.parametrize("architecture", ["orig", "skip", "resnet"])
def test_architectures_build_the_official_layers_and_run(architecture):
    G = tiny(architecture=architecture)
    keys = set(G.state_dict())
    assert ("synthesis.b16.skip.weight" in keys) == (architecture == "resnet")
    assert ("synthesis.b8.torgb.weight" in keys) == (architecture == "skip")
    assert "synthesis.b16.torgb.weight" in keys
    assert G.num_ws == 2 * int(math.log2(16)) - 2  # the same for every architecture
    with torch.no_grad():
        image = G(torch.randn(2, 8), None, noise_mode="const")
    assert image.shape == (2, 3, 16, 16) and torch.isfinite(image).all()


def test_class_conditional_model_embeds_the_label():
    torch.manual_seed(0)
    G = Generator(z_dim=8, c_dim=4, w_dim=8, img_resolution=8, img_channels=3,
                  mapping_kwargs={"num_layers": 2}, synthesis_kwargs={"channel_base": 32, "channel_max": 8}).eval()
    assert {"mapping.embed.weight", "mapping.embed.bias"} <= set(G.state_dict())
    z = torch.randn(1, 8)
    with torch.no_grad():
        a = G(z, torch.eye(4)[:1], noise_mode="const")
        b = G(z, torch.eye(4)[1:2], noise_mode="const")
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="c must be"):
        G(z, None)


def test_conv_clamp_bounds_every_layer_output():
    G = tiny(conv_clamp=0.5)
    with torch.no_grad():
        image = G(torch.randn(2, 8) * 10, None, noise_mode="const")
    # ToRGB outputs are clamped to 0.5 each; the skip sum of 3 blocks stays within 3 * 0.5
    assert image.abs().max() <= 1.5 + 1e-6


def test_fp16_blocks_run_in_float32_on_cpu_unless_asked():
    G = tiny(num_fp16_res=2)
    assert G.synthesis.b16.use_fp16 and G.synthesis.b8.use_fp16 and not G.synthesis.b4.use_fp16
    ws = G.mapping(torch.randn(1, 8), None)
    with torch.no_grad():
        default = G.synthesis(ws, noise_mode="const")
        forced = G.synthesis(ws, noise_mode="const", force_fp32=True)
    assert torch.equal(default, forced) and default.dtype == torch.float32


def test_synthesis_rejects_ws_of_the_wrong_shape():
    G = tiny()
    with pytest.raises(ValueError, match="ws must be"):
        G.synthesis(torch.zeros(1, G.num_ws + 1, 8))


def test_stylegan3_repository_style_arguments_are_accepted():
    """Its StyleGAN2 generator passes synthesis options flat, with fused_modconv_default."""
    G = Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3, mapping_kwargs={"num_layers": 1},
                  channel_base=32, channel_max=8, conv_clamp=256, fused_modconv_default="inference_only")
    assert G.synthesis.b8.conv1.conv_clamp == 256 and G.num_ws == 4


@pytest.mark.parametrize("fused", [False, True])
def test_fp16_blocks_in_float16_stay_close_to_float32(fused):
    """The float16 path (what a GPU runs for num_fp16_res), run here on the CPU: same image within fp16 precision."""
    G = tiny(num_fp16_res=2, conv_clamp=256)
    ws = G.mapping(torch.randn(3, 8), None)
    with torch.no_grad():
        half = G.synthesis(ws, noise_mode="const", force_fp32=False, fused_modconv=fused)
        full = G.synthesis(ws, noise_mode="const", force_fp32=True, fused_modconv=fused)
    assert half.dtype == torch.float32
    assert 0 < (half - full).abs().max() < 0.01 * full.abs().max()  # really ran in float16, and close
