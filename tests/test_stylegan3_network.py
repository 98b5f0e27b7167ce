"""Our StyleGAN3 generator against fixtures computed by the official code (tests/fixtures/stylegan3)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from facebench.generators.stylegan3.networks import Generator, layer_schedule, lowpass_filter, make_transform

FIXTURES = Path(__file__).parent / "fixtures" / "stylegan3"
CASES = ("tiny_t", "tiny_r")
TOLERANCE = 1e-3  # the bound; we measure at most 2.2e-6


def config(case: str) -> dict:
    return json.loads((FIXTURES / case / "config.json").read_text())


def fixture_generator(case: str) -> Generator:
    G = Generator(**config(case)["init_kwargs"]).eval()
    G.load_state_dict(load_file(FIXTURES / case / "weights.safetensors"))
    return G


def fixture_array(case: str, name: str) -> torch.Tensor:
    return torch.from_numpy(np.load(FIXTURES / case / f"{name}.npy"))


@pytest.mark.parametrize("case", CASES)
def test_state_dict_keys_and_order_are_official(case):
    G = Generator(**config(case)["init_kwargs"])
    assert list(G.state_dict()) == config(case)["state_dict_keys"]
    stored = load_file(FIXTURES / case / "weights.safetensors")
    for key, value in G.state_dict().items():
        assert value.shape == stored[key].shape, key


@pytest.mark.parametrize("case", CASES)
def test_the_layer_schedule_is_the_official_one(case):
    G = Generator(**config(case)["init_kwargs"])
    expected = config(case)["synthesis"]
    assert G.num_ws == config(case)["num_ws"]
    assert G.synthesis.input.channels == expected["input"]["channels"]
    assert int(G.synthesis.input.size[0]) == expected["input"]["size"]
    for name, layer in zip(G.synthesis.layer_names, expected["layers"], strict=True):
        ours = getattr(G.synthesis, name)
        assert name == layer["name"]
        assert (ours.in_channels, ours.out_channels) == (layer["in_channels"], layer["out_channels"])
        assert (int(ours.in_size[0]), int(ours.out_size[0])) == (layer["in_size"], layer["out_size"])
        assert (ours.up_factor, ours.down_factor, ours.up_taps, ours.down_taps) == (
            layer["up_factor"], layer["down_factor"], layer["up_taps"], layer["down_taps"])
        assert ours.down_radial == layer["down_radial"]
        assert list(ours.padding) == layer["padding"]
        assert ours.out_cutoff == pytest.approx(layer["out_cutoff"], rel=1e-12)
        assert ours.out_half_width == pytest.approx(layer["out_half_width"], rel=1e-12)


@pytest.mark.parametrize("case", CASES)
def test_designed_filters_equal_the_official_ones_exactly(case):
    ours = Generator(**config(case)["init_kwargs"]).state_dict()
    stored = load_file(FIXTURES / case / "weights.safetensors")
    filters = [key for key in ours if key.endswith(("up_filter", "down_filter"))]
    assert filters
    for key in filters:
        assert torch.equal(ours[key], stored[key]), key


def test_radial_filter_is_not_the_separable_one():
    radial = lowpass_filter(12, cutoff=8.0, width=8.0, rate=64, radial=True)
    separable = lowpass_filter(12, cutoff=8.0, width=8.0, rate=64)
    assert radial.shape == (12, 12) and separable.shape == (12,)
    assert float(radial.sum()) == pytest.approx(1.0, abs=1e-6)
    assert float((radial - torch.outer(separable, separable)).abs().max()) > 0.01 * float(radial.max())
    assert lowpass_filter(1, cutoff=8.0, width=8.0, rate=64) is None


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("psi", ["psi1", "psi07"])
def test_images_match_the_official_code(case, psi):
    G = fixture_generator(case)
    z = fixture_array(case, "z")
    truncation = 1.0 if psi == "psi1" else 0.7
    with torch.no_grad():
        ws = G.mapping(z, None, truncation_psi=truncation)
        images = G(z, None, truncation_psi=truncation, noise_mode="const")
    assert float((ws - fixture_array(case, f"ws_{psi}")).abs().max()) <= 1e-5
    assert float((images - fixture_array(case, f"img_{psi}")).abs().max()) <= TOLERANCE


@pytest.mark.parametrize("case", CASES)
def test_one_by_one_equals_the_batch(case):
    G = fixture_generator(case)
    ws = fixture_array(case, "ws_psi07")
    with torch.no_grad():
        batch = G.synthesis(ws)
        single = torch.cat([G.synthesis(ws[i : i + 1]) for i in range(len(ws))])
    assert float((batch - single).abs().max()) <= 1e-5


def test_a_shifted_padding_would_be_caught():
    """The parity tolerance is tight enough to see an off-by-one crop in a single layer."""
    G = fixture_generator("tiny_t")
    ws = fixture_array("tiny_t", "ws_psi1")
    layer = G.synthesis.L5_52_64
    left, right, top, bottom = layer.padding
    layer.padding = (left + 1, right - 1, top + 1, bottom - 1)
    with torch.no_grad():
        images = G.synthesis(ws)
    assert float((images - fixture_array("tiny_t", "img_psi1")).abs().max()) > 100 * TOLERANCE


@torch.no_grad()
def reference_input(layer, w: torch.Tensor) -> np.ndarray:
    """SynthesisInput written directly from the specification, in float64 NumPy."""
    t = (w.double() @ (layer.affine.weight.double() * layer.affine.weight_gain).T + layer.affine.bias.double()).numpy()
    t = t / np.linalg.norm(t[:, :2], axis=1, keepdims=True)
    size, rate, bandwidth = int(layer.size[0]), layer.sampling_rate, layer.bandwidth
    coords = (np.arange(size) + 0.5 - size / 2) / rate
    out = []
    for row in t:
        rot = np.array([[row[0], -row[1], 0], [row[1], row[0], 0], [0, 0, 1]])
        tr = np.array([[1, 0, -row[2]], [0, 1, -row[3]], [0, 0, 1]])
        m = rot @ tr @ layer.transform.double().numpy()
        freqs = layer.freqs.double().numpy() @ m[:2, :2]
        phases = layer.phases.double().numpy() + layer.freqs.double().numpy() @ m[:2, 2]
        amplitude = np.clip(1 - (np.linalg.norm(freqs, axis=1) - bandwidth) / (rate / 2 - bandwidth), 0, 1)
        x, y = np.meshgrid(coords, coords)  # x varies along the width
        features = np.sin(2 * np.pi * (x[..., None] * freqs[:, 0] + y[..., None] * freqs[:, 1] + phases)) * amplitude
        mixed = features @ (layer.weight.double().numpy() / math.sqrt(layer.channels)).T
        out.append(mixed.transpose(2, 0, 1))
    return np.stack(out)


@pytest.mark.parametrize("transform", [dict(), dict(translate=(0.3, -0.2), rotate=25.0), dict(rotate=-140.0)])
def test_input_layer_with_a_user_transform_matches_the_specification(transform):
    G = fixture_generator("tiny_r")
    layer = G.synthesis.input
    layer.transform.copy_(torch.from_numpy(make_transform(**transform)))
    ws = fixture_array("tiny_r", "ws_psi1")[:, 0]
    with torch.no_grad():
        ours = layer(ws).double().numpy()
    assert np.abs(ours - reference_input(layer, ws)).max() <= 1e-4


def test_translate_and_rotate_move_the_input_features_as_the_official_script_does():
    G = fixture_generator("tiny_t")
    layer = G.synthesis.input
    ws = fixture_array("tiny_t", "ws_psi1")[:, 0]
    with torch.no_grad():
        base = layer(ws)
        layer.transform.copy_(torch.from_numpy(make_transform(translate=(3 / layer.sampling_rate, 0.0))))
        shifted = layer(ws)
        layer.transform.copy_(torch.from_numpy(make_transform(rotate=90.0)))
        rotated = layer(ws)
    # content moves right by three samples: new(x) = old(x - 3)
    assert torch.allclose(shifted[..., 3:], base[..., :-3], atol=1e-4)
    assert not torch.allclose(shifted, base, atol=1e-2)
    assert torch.allclose(rotated, base.flip(-1).transpose(-1, -2), atol=1e-4)


def test_ffhq_sized_schedule():
    """The 1024 px FFHQ-T config: the layer names of the official FFHQ-T pickles (L10_1044_81 .. L14_1024_3)."""
    schedule = layer_schedule(1024, 3, 32768, 512, 14, 2, 2, 2**2.1, 2**0.3, 10)
    assert list(schedule["sizes"][:3]) == [36, 36, 52] and list(schedule["sizes"][-5:]) == [1044, 1044, 1044, 1024, 1024]
    assert list(schedule["channels"][:7]) == [512] * 7 and list(schedule["channels"][-5:]) == [81, 51, 32, 32, 3]


def test_bad_ws_shape_is_refused():
    G = Generator(**config("tiny_t")["init_kwargs"])
    with pytest.raises(ValueError, match=r"ws must be \[N, 16, 32\]"):
        G.synthesis(torch.zeros([1, 14, 32]))


def plain_filtered_lrelu(x, bias, fu, fd, up, down, padding, gain, slope, clamp):
    """The filtered lrelu the slow, obvious way: zero insertion, pad, 2-D filters, every down-th sample."""
    x = x + bias.reshape(1, -1, 1, 1)
    n, c, h, w = x.shape
    zeros = torch.zeros(n, c, h * up, w * up)
    zeros[:, :, ::up, ::up] = x
    x = torch.nn.functional.pad(zeros, list(padding))
    kernel = torch.outer(fu, fu) * up * up
    x = torch.nn.functional.conv2d(x, kernel.flip([0, 1])[None, None].repeat(c, 1, 1, 1), groups=c)
    x = (torch.nn.functional.leaky_relu(x, slope) * gain).clamp(-clamp, clamp)
    down_2d = fd if fd.ndim == 2 else torch.outer(fd, fd)
    x = torch.nn.functional.conv2d(x, down_2d.flip([0, 1])[None, None].repeat(c, 1, 1, 1), groups=c)
    return x[:, :, ::down, ::down]


@pytest.mark.parametrize("padding", [(9, 8, 9, 8), (-6, -9, 3, 14), (15, 1, -1, 20), (0, 0, 0, 0)])
@pytest.mark.parametrize("radial", [False, True])
def test_filtered_lrelu_equals_the_obvious_computation(padding, radial):
    from facebench.generators.stylegan3.networks import filtered_lrelu

    torch.manual_seed(0)
    x, bias = torch.randn(2, 3, 20, 20) * 3, torch.randn(3)
    fu = lowpass_filter(24, cutoff=4.0, width=6.0, rate=64)
    fd = lowpass_filter(12, cutoff=5.0, width=6.0, rate=64, radial=radial)
    ours = filtered_lrelu(x, bias, fu, fd, 4, 2, padding, gain=math.sqrt(2), slope=0.2, clamp=4.0)
    expected = plain_filtered_lrelu(x, bias, fu, fd, 4, 2, padding, math.sqrt(2), 0.2, 4.0)
    assert ours.shape == expected.shape
    assert float((ours - expected).abs().max()) <= 1e-5
