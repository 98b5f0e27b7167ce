"""Throughput of the parametric generator (pytest-benchmark; not part of the test suite).

Run: python -m pytest benchmarks -q --benchmark-only
Images per second = images per round / median round time, printed by each benchmark.
"""

import pytest

from facebench.generators.parametric import ParametricGenerator
from facebench.generators.parametric.face import render_faces, sample_face_params
from facebench.harness.data.corpus import CorpusWriter

N = 32


@pytest.mark.parametrize("resolution", [128, 256])
def test_render_only(benchmark, resolution):
    params = [sample_face_params(seed) for seed in range(N)]
    render = benchmark(render_faces, params, resolution)
    assert render.images.shape == (N, resolution, resolution, 3)
    benchmark.extra_info["images_per_s"] = N / benchmark.stats.stats.median


def test_generate_with_camera_and_artifacts(benchmark):
    generator = ParametricGenerator(resolution=256, artifacts="upsampling,eyes_fixed")
    batch = benchmark(generator.generate, range(N // 2))
    benchmark.extra_info["images_per_s"] = len(batch) / benchmark.stats.stats.median


def test_generate_into_corpus(benchmark, tmp_path):
    """The default generator (256 px, camera, upsampling and eyes_fixed fakes) written into a corpus."""
    generator = ParametricGenerator()
    counter = iter(range(10_000))

    def write():
        writer = CorpusWriter(tmp_path / f"c{next(counter)}", [generator.config()])
        batch = generator.generate(range(N // 2))
        writer.write(batch)
        writer.close()
        return len(batch)

    images = benchmark.pedantic(write, rounds=5, iterations=1)
    benchmark.extra_info["images_per_s"] = images / benchmark.stats.stats.median


def test_generate_every_artifact(benchmark):
    """One fake per built-in artifact: the slowest mix (scene artifacts render again)."""
    generator = ParametricGenerator(resolution=256, artifacts="all")
    batch = benchmark(generator.generate, range(4))
    benchmark.extra_info["images_per_s"] = len(batch) / benchmark.stats.stats.median
