"""StyleGAN3 on CUDA: the official fixtures' images and the plug-in's faces, as on the CPU.

Marked ``gpu``, skipped in one line where torch sees no CUDA device (``benchmarks/gpu_check.py``
runs every tests/test_gpu*.py on a GPU machine). ``FACEBENCH_GPU_TESTS_ON_CPU=1`` runs them
with "cpu" standing in for "cuda": a check of the tests' own code, nothing more.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from test_gpu import DEVICE, exact_float32, levels
from test_stylegan3_loading import create, small_generator
from test_stylegan3_network import CASES, TOLERANCE, fixture_array, fixture_generator

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("case", CASES)
def test_fixture_images_on_the_device(case):
    G = fixture_generator(case).to(DEVICE)
    z = fixture_array(case, "z").to(DEVICE)
    with torch.no_grad(), exact_float32():
        images = G(z, None, truncation_psi=0.7).cpu()
    assert float((images - fixture_array(case, "img_psi07")).abs().max()) <= TOLERANCE


@pytest.mark.parametrize("batched", [False, True])
def test_plugin_on_the_device_draws_the_cpu_faces(tmp_path, batched):
    from facebench.generators.stylegan2.loading import save_network

    path = save_network(small_generator(), tmp_path / "small.safetensors")
    seeds = [0, 1, 2, 3, 4]
    on_cpu = create(path, batch_size=2).generate(seeds).images
    with exact_float32():
        on_device = create(path, batch_size=2, batched=batched, device=DEVICE).generate(seeds).images
    assert levels(on_cpu, on_device) <= 1
    assert not np.array_equal(on_device[0], on_device[1])
