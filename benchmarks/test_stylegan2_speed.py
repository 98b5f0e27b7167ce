"""CPU speed of our StyleGAN2 generator, full width (channel_base 32768, channel_max 512).

Run: python -m pytest benchmarks/test_stylegan2_speed.py -q --benchmark-only
Images per second = batch / median round time (in ``extra_info``).

"default" is what facebench runs: one grouped convolution per layer for a single image,
scaled activations and a shared convolution for batches, in passes small enough for the
CPU's memory. "grouped" forces one grouped convolution with per-sample weights over the whole
batch, the path the official code takes in eval mode in float32: a stand-in for it, to show
how each scales with the batch.
"""

import pytest
import torch

from facebench.generators.stylegan2 import Generator


@pytest.fixture(scope="module", params=[64, 256])
def network(request):
    torch.manual_seed(0)
    G = Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=request.param, img_channels=3,
                  synthesis_kwargs={"channel_base": 32768, "channel_max": 512, "conv_clamp": 256})
    return G.eval()


@pytest.mark.parametrize("batch", [1, 8])
@pytest.mark.parametrize("path", ["default", "grouped"])
def test_generate(benchmark, network, batch, path, monkeypatch):
    z = torch.randn(batch, 512)
    fused = True if path == "grouped" else None
    if path == "grouped":
        monkeypatch.setattr(network.synthesis, "CPU_CHUNK_ELEMENTS", 1 << 62)  # one pass over the whole batch

    def run():
        with torch.no_grad():
            return network(z, None, truncation_psi=0.7, noise_mode="const", fused_modconv=fused)

    run()  # warm-up
    image = benchmark.pedantic(run, rounds=4 if batch == 1 else 2, iterations=1)
    assert image.shape == (batch, 3, network.img_resolution, network.img_resolution)
    benchmark.extra_info["images_per_s"] = batch / benchmark.stats.stats.median
    benchmark.extra_info["resolution"] = network.img_resolution
