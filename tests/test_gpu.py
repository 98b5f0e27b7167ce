"""The CUDA paths of every torch-based generator and detector, of timing and of the out-of-memory back-off.

Every test here is marked ``gpu`` and the module skips in one line where torch sees no CUDA
device, so CI (CPU only) is unchanged. ``benchmarks/gpu_check.py`` runs them on a GPU machine
(``pytest -m gpu tests/test_gpu.py``).

CUDA against CPU comparisons run with TF32 off (:func:`exact_float32`): cuDNN convolutions use
TF32 by default on Ampere and later, which alone moves float32 results by ~1e-3 relative.

``FACEBENCH_GPU_TESTS_ON_CPU=1`` runs the tests that do not need CUDA-only calls with "cpu"
standing in for "cuda" (the comparisons are then trivial): a check of the tests' own code on a
machine without a GPU, nothing more.
"""

from __future__ import annotations

import copy
import json
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from facebench.generators.stylegan2 import Generator, save_network
from facebench.generators.stylegan2.loading import build_generator

from conftest import synthetic_batch

ON_CPU = os.environ.get("FACEBENCH_GPU_TESTS_ON_CPU") == "1"
HAS_CUDA = torch.cuda.is_available()
if not HAS_CUDA and not ON_CPU:
    pytest.skip("CUDA is not available: the gpu tests need an NVIDIA GPU (torch.cuda.is_available() is False)",
                allow_module_level=True)

pytestmark = pytest.mark.gpu
DEVICE = "cuda" if HAS_CUDA else "cpu"
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="calls CUDA-only torch functions")
FIXTURE = Path(__file__).parent / "fixtures" / "stylegan2" / "tiny32"


@contextmanager
def exact_float32():
    """cuDNN convolutions and cuBLAS matrix products in true float32 (no TF32) inside the block."""
    matmul = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        with torch.backends.cudnn.flags(enabled=True, benchmark=torch.backends.cudnn.benchmark,
                                        deterministic=torch.backends.cudnn.deterministic, allow_tf32=False):
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = matmul


def levels(a: np.ndarray, b: np.ndarray) -> int:
    """Largest difference between two uint8 images, in grey levels."""
    return int(np.abs(a.astype(int) - b.astype(int)).max())


# ---- StyleGAN2 ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fixture_config() -> dict:
    return json.loads((FIXTURE / "config.json").read_text())


@pytest.fixture(scope="module")
def official(fixture_config) -> Generator:
    """The tiny32 generator whose official-code images are stored beside it."""
    return build_generator(fixture_config["init_kwargs"], load_file(FIXTURE / "weights.safetensors")).eval()


@pytest.fixture(scope="module")
def network_file(official, tmp_path_factory) -> str:
    return str(save_network(official, tmp_path_factory.mktemp("net") / "tiny32.safetensors"))


def test_stylegan2_on_cuda_draws_the_official_images(official):
    z = torch.from_numpy(np.load(FIXTURE / "z.npy"))
    G = copy.deepcopy(official).to(DEVICE)
    with torch.no_grad(), exact_float32():
        for psi, name in ((1, "img_psi1_const"), (0.7, "img_psi07_const")):
            for fused in (False, True):
                image = G(z.to(DEVICE), None, truncation_psi=psi, noise_mode="const", fused_modconv=fused)
                assert image.device.type == DEVICE.split(":")[0]
                difference = np.abs(image.cpu().numpy() - np.load(FIXTURE / f"{name}.npy")).max()
                assert difference <= 1e-3, f"{name}, fused={fused}: max |cuda - official| = {difference:.2e}"


def tiny_fp16_generator() -> Generator:
    """Random weights; the top two resolutions run in float16 on a GPU, clamped as the official configs do."""
    torch.manual_seed(0)
    return Generator(z_dim=32, c_dim=0, w_dim=32, img_resolution=32, img_channels=3, mapping_kwargs={"num_layers": 2},
                     synthesis_kwargs={"channel_base": 1024, "channel_max": 32, "num_fp16_res": 2,
                                       "conv_clamp": 256}).eval()


def test_stylegan2_float16_blocks_run_in_half_precision_on_cuda_and_stay_close_to_float32():
    G = tiny_fp16_generator().to(DEVICE)
    dtypes = {}

    def record(resolution):
        def hook(module, args, out):
            dtypes.setdefault(resolution, out[0].dtype)  # returns None: the output is left alone
        return hook

    hooks = [getattr(G.synthesis, f"b{r}").register_forward_hook(record(r)) for r in (16, 32)]
    z = torch.randn(4, 32, generator=torch.Generator().manual_seed(1)).to(DEVICE)
    with torch.no_grad(), exact_float32():
        mixed = G(z, None, noise_mode="const")
        dtypes_mixed = dict(dtypes)
        dtypes.clear()
        full = G(z, None, noise_mode="const", force_fp32=True)
    for hook in hooks:
        hook.remove()
    expected = torch.float16 if HAS_CUDA else torch.float32  # float16 only where it is fast: on a GPU
    assert dtypes_mixed == {16: expected, 32: expected} and dtypes == {16: torch.float32, 32: torch.float32}
    assert mixed.dtype == torch.float32 and torch.isfinite(mixed).all()
    correlation = np.corrcoef(mixed.cpu().numpy().ravel(), full.cpu().numpy().ravel())[0, 1]
    assert correlation > 0.99, f"float16 path against float32: correlation {correlation:.4f}"


def test_stylegan2_cuda_matches_the_cpu_on_a_random_full_width_block():
    """Wider layers than the fixture (512 channels at 4-16 px) reach the cuDNN paths real networks use."""
    torch.manual_seed(2)
    G = Generator(z_dim=64, c_dim=0, w_dim=64, img_resolution=16, img_channels=3, mapping_kwargs={"num_layers": 2},
                  synthesis_kwargs={"channel_base": 8192, "channel_max": 512}).eval()
    z = torch.randn(3, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad(), exact_float32():
        on_cpu = G(z, None, noise_mode="const").numpy()
        on_device = copy.deepcopy(G).to(DEVICE)(z.to(DEVICE), None, noise_mode="const").cpu().numpy()
    scale = np.abs(on_cpu).max()
    assert np.abs(on_device - on_cpu).max() <= 1e-4 * max(scale, 1.0)


def test_stylegan2_plugin_on_cuda_draws_the_cpu_faces(network_file):
    from facebench.harness.contracts import registry

    with exact_float32():
        on_cpu = registry.create("generator", "stylegan2", network=network_file, batch_size=3).generate([0, 1, 2, 3])
        on_device = registry.create("generator", "stylegan2", network=network_file, batch_size=3,
                                    device=DEVICE).generate([0, 1, 2, 3])
    assert levels(on_device.images, on_cpu.images) <= 1
    assert levels(on_device.images, np.load(FIXTURE / "uint8_psi1_const.npy")) <= 1
    assert [r.id for r in on_device.records] == [r.id for r in on_cpu.records]


def test_stylegan2_plugin_random_noise_on_cuda_depends_only_on_the_seed(network_file):
    from facebench.harness.contracts import registry

    generator = registry.create("generator", "stylegan2", network=network_file, noise_mode="random", batch_size=2,
                                device=DEVICE)
    together = generator.generate([5, 6, 7]).images
    again = generator.generate([5, 6, 7]).images
    alone = generator.generate([6]).images
    # within a level, not bit for bit: cuDNN may pick a non-deterministic algorithm for the transposed convolutions
    assert levels(together, again) <= 1  # the same seeds draw the same noise
    assert levels(together[1], alone[0]) <= 1  # each image from its own seed, whatever its batch
    assert not np.array_equal(together[0], together[1])


@needs_cuda
def test_stylegan2_random_noise_leaves_the_other_devices_random_state_alone(network_file):
    """Seeding the noise of image k must not reseed the CUDA generators when the network runs on the CPU."""
    from facebench.harness.contracts import registry

    generator = registry.create("generator", "stylegan2", network=network_file, noise_mode="random")
    torch.cuda.manual_seed(123)
    state = torch.cuda.get_rng_state()
    generator.generate([1, 2])
    assert torch.equal(torch.cuda.get_rng_state(), state)


@needs_cuda  # on a CPU, tests/test_stylegan2_loading.py checks the same (marked slow)
def test_stylegan2_plugin_compiled_on_cuda_draws_the_eager_faces(network_file):
    """torch.compile's CUDA code (Triton kernels) must not change the faces."""
    from facebench.harness.contracts import registry

    with exact_float32():
        eager = registry.create("generator", "stylegan2", network=network_file, device=DEVICE).generate([0, 1])
        compiled = registry.create("generator", "stylegan2", network=network_file, device=DEVICE,
                                   compile=True).generate([0, 1])
    assert levels(compiled.images, eager.images) <= 1


# ---- diffusion (needs diffusers, which a GPU machine may lack) -----------------------------------------


def test_diffusion_on_cuda_draws_the_cpu_images_and_runs_in_float16(tmp_path):
    pytest.importorskip("diffusers", reason="diffusers is not installed: the diffusion generator's CUDA path is not checked")
    from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

    from facebench.generators.diffusion import DiffusionGenerator

    torch.manual_seed(0)
    unet = UNet2DModel(sample_size=16, in_channels=3, out_channels=3, layers_per_block=1, block_out_channels=(8, 16),
                       norm_num_groups=4, down_block_types=("DownBlock2D", "DownBlock2D"),
                       up_block_types=("UpBlock2D", "UpBlock2D"))
    DDPMPipeline(unet=unet, scheduler=DDPMScheduler(num_train_timesteps=100)).save_pretrained(tmp_path / "ddpm")
    with exact_float32():
        on_cpu = DiffusionGenerator(str(tmp_path / "ddpm"), steps=3, batch_size=2).images([0, 1, 2])
        on_device = DiffusionGenerator(str(tmp_path / "ddpm"), steps=3, batch_size=2, device=DEVICE).images([0, 1, 2])
    assert levels(on_device, on_cpu) <= 2  # the noise comes from seeded CPU generators on both
    if HAS_CUDA:
        half = DiffusionGenerator(str(tmp_path / "ddpm"), steps=3, batch_size=2, device=DEVICE, dtype="float16")
        images = half.images([0, 1, 2])
        assert images.shape == on_cpu.shape
        assert np.corrcoef(images.ravel().astype(float), on_cpu.ravel().astype(float))[0, 1] > 0.95


# ---- detectors ------------------------------------------------------------------------------------


def random_faces(n: int, side: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images with labels: smooth ramps plus noise (real) and the same, 2x upsampled (fake)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, side, side, 3), dtype=np.uint8)
    labels = np.arange(n) % 2
    half = images[labels == 1, ::2, ::2]
    images[labels == 1] = half.repeat(2, axis=1).repeat(2, axis=2)
    return images, labels


def moved(detector, device: str):
    """A copy of a fitted torch detector whose network runs on ``device``."""
    other = copy.deepcopy(detector)
    other.model = other.model.to(device)
    other.device = device
    return other


def test_cnn_scores_on_cuda_equal_the_cpu_scores():
    from facebench.detectors.cnn import CNNDetector

    images, labels = random_faces(24, 32)
    detector = CNNDetector(epochs=1, batch_size=8, input_size=32)
    detector.fit(images, labels)
    with exact_float32():
        on_cpu = detector.score(images)
        on_device = moved(detector, DEVICE).score(images)
    assert on_device.dtype == np.float64 and on_device.shape == (24,)
    np.testing.assert_allclose(on_device, on_cpu, rtol=0, atol=1e-4)  # float32 sums in another order only


def test_cnn_fits_on_cuda_and_a_second_fit_gives_the_same_scores():
    """cuDNN runs deterministically during ``fit``: the same seed trains the same network on one GPU."""
    from facebench.detectors.cnn import CNNDetector

    images, labels = random_faces(24, 32, seed=1)
    scores = []
    for _ in range(2):
        detector = CNNDetector(epochs=2, batch_size=8, input_size=32, device=DEVICE)
        detector.fit(images, labels)
        assert next(detector.model.parameters()).device.type == DEVICE.split(":")[0]
        scores.append(detector.score(images))
    assert np.all((scores[0] >= 0) & (scores[0] <= 1))
    np.testing.assert_allclose(scores[1], scores[0], rtol=0, atol=1e-6)


@needs_cuda
@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_fitting_the_cnn_leaves_the_cuda_random_state_alone(device):
    """The weights start from the cnn's own seed; the caller's random streams go on undisturbed."""
    from facebench.detectors.cnn import CNNDetector

    torch.cuda.manual_seed(123)
    state = torch.cuda.get_rng_state()
    CNNDetector(epochs=1, batch_size=8, input_size=32, device=device).fit(*random_faces(16, 32, seed=2))
    assert torch.equal(torch.cuda.get_rng_state(), state)


def random_resnet(arch: str = "resnet18", seed: int = 0) -> torch.nn.Module:
    """A built-in ResNet with random weights and BatchNorm statistics (so eval mode matters)."""
    from facebench.detectors.checkpoint import random_resnet as seeded_resnet

    return seeded_resnet(arch, 1, seed)


@pytest.mark.parametrize(("preset", "side"), [("wang2020", 64), ("imagenet", 96)])
def test_checkpoint_scores_on_cuda_equal_the_cpu_scores(preset, side, tmp_path):
    """Both presets: "imagenet" resizes with antialiasing on the detector's device."""
    from safetensors.torch import save_file

    from facebench.detectors.checkpoint import CheckpointDetector

    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in random_resnet().state_dict().items()}, str(path))
    images, _ = random_faces(6, side)
    with exact_float32():
        on_cpu = CheckpointDetector(weights=str(path), arch="resnet18", preset=preset, batch_size=4).score(images)
        detector = CheckpointDetector(weights=str(path), arch="resnet18", preset=preset, batch_size=4, device=DEVICE)
        on_device = detector.score(images)
    assert next(detector.model.parameters()).device.type == DEVICE.split(":")[0]
    assert np.ptp(on_cpu) > 0  # the random model tells the images apart
    np.testing.assert_allclose(on_device, on_cpu, rtol=0, atol=1e-4)  # float32 sums in another order only


# ---- timing ---------------------------------------------------------------------------------------


def sleep_kernel_ms(cycles: int) -> float:
    """How long ``torch.cuda._sleep(cycles)`` keeps the GPU busy, by CUDA events (median of 3)."""
    times = []
    for _ in range(3):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        torch.cuda._sleep(cycles)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return float(np.median(times))


CYCLES = 50_000_000  # ~25-50 ms at GPU clocks: far above the launch time the clock sees without a sync


@needs_cuda
def test_meter_waits_for_queued_gpu_work():
    """Kernels launch asynchronously: without a synchronise the clock would read the launch (microseconds)."""
    from facebench.harness.run.timing import ThroughputMeter

    busy_ms = sleep_kernel_ms(CYCLES)
    assert busy_ms > 5, "the sleep kernel is too short to tell a synchronised clock from an unsynchronised one"
    meter = ThroughputMeter(device="cuda", track_memory=True)
    for _ in range(3):
        with meter.batch(1):
            torch.cuda._sleep(CYCLES)
    assert 1000 * meter.summary()["median_batch_s"] >= 0.8 * busy_ms


@needs_cuda
def test_benchmark_callable_waits_for_the_gpu_and_reports_cuda_peak_memory():
    from facebench.harness.run.timing import benchmark_callable

    busy_ms = sleep_kernel_ms(CYCLES)
    batch = torch.zeros(4, device="cuda")

    def work(x):
        torch.cuda._sleep(CYCLES)
        return torch.empty(32 * 2**20, dtype=torch.uint8, device="cuda")  # 32 MB live during the call

    figures = benchmark_callable(work, batch, device="cuda", warmup=1, rounds=3)
    assert figures["batch_latency_p50_ms"] >= 0.8 * busy_ms
    assert figures["cuda_peak_mb"] is not None and figures["cuda_peak_mb"] >= 32


@needs_cuda
def test_peak_memory_sees_a_cuda_allocation_inside_the_block_only():
    from facebench.harness.run.timing import PeakMemory

    with PeakMemory("cuda") as inside:
        block = torch.empty(256 * 2**20, dtype=torch.uint8, device="cuda")
        del block
    with PeakMemory("cuda") as after:
        torch.zeros(1, device="cuda")
    assert inside.cuda_peak_mb >= 256 and after.cuda_peak_mb < 256


# ---- out of memory --------------------------------------------------------------------------------

PER_IMAGE_MB = 64


class MemoryHungry:
    """Scores images by their mean grey level on the GPU while holding PER_IMAGE_MB per image of the batch."""

    name = "memory_hungry"
    version = "1"
    requires_fit = False
    device = "cuda"
    batch_size = 64

    def score(self, images: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(images).to(self.device)
        workspace = torch.ones(len(images) * PER_IMAGE_MB * 2**20, dtype=torch.uint8, device=self.device)
        scores = x.float().mean(dim=(1, 2, 3)) / 255 + (workspace[0] - 1)
        return scores.double().cpu().numpy()


@contextmanager
def cuda_memory_cap(extra_mb: int):
    """Cap this process's CUDA memory at what it holds now plus ``extra_mb``, for the block only."""
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction((torch.cuda.memory_reserved() + extra_mb * 2**20) / total)
    try:
        yield
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()


@needs_cuda
def test_runner_backs_off_on_a_real_cuda_out_of_memory_and_scores_like_an_uncapped_run(tmp_path):
    from facebench.harness.data.corpus import write_corpus
    from facebench.harness.run.scoring import score_split

    corpus = write_corpus(tmp_path / "corpus", [synthetic_batch(range(32), size=32)], [{"name": "synthetic"}])
    uncapped_rows, uncapped, _ = score_split(MemoryHungry(), corpus, 64, "memory_hungry")
    with cuda_memory_cap(extra_mb=12 * PER_IMAGE_MB):  # 8 images fit, 16 do not
        rows, scores, throughput = score_split(MemoryHungry(), corpus, 64, "memory_hungry")
    assert throughput["batch_size"] in (4, 8), throughput
    assert "out of memory at batch size 64" in throughput["warnings"][0]
    assert [r["id"] for r in rows] == [r["id"] for r in uncapped_rows]
    np.testing.assert_array_equal(scores, uncapped)


@needs_cuda
def test_a_real_cuda_out_of_memory_is_recognised_and_ends_a_sweep():
    from facebench.harness.run.timing import is_out_of_memory, sweep_batch_sizes

    images = np.zeros((64, 8, 8, 3), np.uint8)
    with cuda_memory_cap(extra_mb=12 * PER_IMAGE_MB):
        try:
            MemoryHungry().score(images)
        except Exception as exc:  # noqa: BLE001 - the point is what it is
            assert is_out_of_memory(exc), f"{type(exc).__name__}: {exc}"
        else:
            pytest.fail("64 images x 64 MB under a 768 MB cap did not run out of memory")
        rows = sweep_batch_sizes(MemoryHungry(), images, (4, 8, 32, 64), warmup=0, rounds=1)
    assert [row["batch_size"] for row in rows] == [4, 8, 32]
    assert rows[1]["error"] is None and rows[2]["error"].startswith("out of memory")
