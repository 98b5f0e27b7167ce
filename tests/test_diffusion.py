"""The diffusion generator plug-in, on tiny random-weight pipelines built and saved here.

Two pipelines, as ``save_pretrained`` writes them: an unconditional DDPM (16x16) and a
Stable Diffusion (32x32) with a CLIP text encoder and a tokenizer whose vocabulary is
written here, so nothing is ever fetched.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

diffusers = pytest.importorskip("diffusers")
pytest.importorskip("transformers")

import torch  # noqa: E402

from facebench.generators.diffusion import DiffusionError, DiffusionGenerator  # noqa: E402
from facebench.generators.diffusion.loading import root_cause  # noqa: E402

try:  # diffusers imports lazily: a broken install (e.g. a torchvision built for another torch) shows only here
    diffusers.DiffusionPipeline, diffusers.StableDiffusionPipeline  # noqa: B018
except Exception as exc:
    pytest.skip(f"diffusers is installed but does not import: {root_cause(exc)}", allow_module_level=True)
from facebench.generators.diffusion.prompts import TEMPLATES, draw_fields  # noqa: E402
from facebench.harness.contracts import registry  # noqa: E402
from facebench.harness.cli import app  # noqa: E402
from facebench.harness.data.corpus import Corpus  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# diffusers' own schedulers hit a numpy 2 deprecation; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def byte_characters() -> list[str]:
    """The 256 printable characters byte-level BPE (GPT-2, CLIP) maps bytes to."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = [b for b in range(256) if b not in printable]
    return [chr(c) for c in printable] + [chr(256 + i) for i in range(len(extra))]


def write_clip_vocabulary(folder: Path) -> Path:
    """A character-level CLIP vocabulary (no merges): every text tokenizes, nothing is downloaded."""
    folder.mkdir(parents=True)
    tokens = ["<|startoftext|>", "<|endoftext|>", *byte_characters(), *(c + "</w>" for c in byte_characters())]
    (folder / "vocab.json").write_text(json.dumps({token: i for i, token in enumerate(tokens)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return folder


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The models are tiny: one thread beats two that spin-wait on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def pipelines(tmp_path_factory) -> dict[str, Path]:
    from diffusers import (AutoencoderKL, DDPMPipeline, DDPMScheduler, PNDMScheduler, StableDiffusionPipeline,
                           UNet2DConditionModel, UNet2DModel)
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    root = tmp_path_factory.mktemp("pipelines")
    torch.manual_seed(0)
    unet = UNet2DModel(sample_size=16, in_channels=3, out_channels=3, layers_per_block=1, block_out_channels=(8, 16),
                       norm_num_groups=4, down_block_types=("DownBlock2D", "DownBlock2D"),
                       up_block_types=("UpBlock2D", "UpBlock2D"))
    DDPMPipeline(unet=unet, scheduler=DDPMScheduler(num_train_timesteps=100)).save_pretrained(root / "ddpm")

    tokenizer = CLIPTokenizer.from_pretrained(write_clip_vocabulary(root / "vocab"), model_max_length=256)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
        max_position_embeddings=256, projection_dim=32, bos_token_id=0, eos_token_id=1, pad_token_id=1))
    unet = UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(8, 16), norm_num_groups=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, attention_head_dim=2)
    vae = AutoencoderKL(in_channels=3, out_channels=3, block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4,
                        latent_channels=4, down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, sample_size=32)
    scheduler = PNDMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                              skip_prk_steps=True, steps_offset=1)  # as Stable Diffusion 1.x ships it
    StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
                            safety_checker=None, feature_extractor=None,
                            requires_safety_checker=False).save_pretrained(root / "sd")
    return {"ddpm": root / "ddpm", "sd": root / "sd"}


@pytest.fixture(scope="module")
def sd(pipelines) -> DiffusionGenerator:
    return DiffusionGenerator(str(pipelines["sd"]), steps=2, batch_size=3)


@pytest.fixture(scope="module")
def ddpm(pipelines) -> DiffusionGenerator:
    return DiffusionGenerator(str(pipelines["ddpm"]), steps=3, batch_size=3)


def test_unconditional_images_and_records(ddpm):
    batch = ddpm.generate([0, 1, 2, 3])
    assert batch.images.shape == (4, 16, 16, 3) and batch.images.dtype == np.uint8
    record = batch.records[2]
    assert (record.id, record.label, record.pair, record.seed) == ("diffusion-00000002-fake", 1, "diffusion-00000002", 2)
    assert record.meta["pipeline"] == "DDPMPipeline" and record.meta["scheduler"] == "DDPMScheduler"
    assert record.meta["steps"] == 3 and (record.meta["height"], record.meta["width"]) == (16, 16)
    assert record.meta["prompt"] is None and record.meta["template"] is None and record.meta["guidance"] is None
    assert record.meta["config_sha256"] == ddpm.config()["config_sha256"] and len(record.meta["config_sha256"]) == 64


def test_text_pipeline_fills_the_template_per_seed(sd):
    batch = sd.generate([0, 1, 2, 3])
    assert batch.images.shape == (4, 32, 32, 3) and batch.images.dtype == np.uint8
    meta = batch.records[3].meta
    assert meta["pipeline"] == "StableDiffusionPipeline" and meta["template"] == "headshot"
    assert meta["prompt"] == TEMPLATES["headshot"].fill(3)[0] and meta["prompt_fields"] == draw_fields(3)
    assert meta["prompt_fields"]["role"] in meta["prompt"] and meta["negative_prompt"] == TEMPLATES["headshot"].negative
    assert meta["guidance"] == 7.5 and meta["steps"] == 2 and (meta["height"], meta["width"]) == (32, 32)
    assert len({r.meta["prompt"] for r in batch.records}) == 4
    assert sd.config()["template"] == "headshot" and sd.config()["config_sha256"] == meta["config_sha256"]


@pytest.mark.parametrize("kind", ["ddpm", "sd"])
def test_an_image_is_the_same_whatever_its_batch(kind, request):
    generator = request.getfixturevalue(kind)
    alone = generator.generate([5])
    together = generator.generate([1, 5, 7, 9])  # batch_size 3: seed 5 is drawn with 1 and 7
    assert np.array_equal(alone.images[0], together.images[1])
    assert alone.records[0] == together.records[1]
    assert not np.array_equal(together.images[0], together.images[1])


def test_a_second_load_draws_identical_images_and_records(pipelines, sd):
    again = DiffusionGenerator(str(pipelines["sd"]), steps=2, batch_size=2)
    first, second = sd.generate([4, 6]), again.generate([4, 6])
    assert np.array_equal(first.images, second.images) and first.records == second.records


def test_a_fixed_prompt_and_guidance_are_used_and_recorded(pipelines, sd):
    generator = DiffusionGenerator(str(pipelines["sd"]), steps=2, prompt="a photo of a sales manager",
                                   negative_prompt="blurry", guidance=3.0)
    meta = generator.generate([0]).records[0].meta
    assert (meta["prompt"], meta["negative_prompt"], meta["template"], meta["guidance"]) == (
        "a photo of a sales manager", "blurry", None, 3.0)
    assert not np.array_equal(generator.generate([0]).images, sd.generate([0]).images)


def test_templates_are_deterministic_and_named(pipelines):
    assert draw_fields(11) == draw_fields(11) and TEMPLATES["linkedin"].fill(11) == TEMPLATES["linkedin"].fill(11)
    assert {draw_fields(s)["role"] for s in range(60)} >= {"Growth Manager", "Account Executive"}
    generator = DiffusionGenerator(str(pipelines["sd"]), steps=1, template="casual")
    assert generator.generate([2]).records[0].meta["prompt"] == TEMPLATES["casual"].fill(2)[0]
    with pytest.raises(DiffusionError, match="unknown prompt template 'nope'; built-in templates: headshot"):
        DiffusionGenerator(str(pipelines["sd"]), template="nope")
    with pytest.raises(DiffusionError, match="prompt or template, not both"):
        DiffusionGenerator(str(pipelines["sd"]), template="casual", prompt="x")


@pytest.mark.parametrize("kind, name, cls", [("sd", "euler", "EulerDiscreteScheduler"), ("ddpm", "ddim", "DDIMScheduler")])
def test_scheduler_swap_by_name(pipelines, kind, name, cls, request):
    default = request.getfixturevalue(kind)
    swapped = DiffusionGenerator(str(pipelines[kind]), scheduler=name, steps=default.steps)
    batch = swapped.generate([0])
    assert batch.records[0].meta["scheduler"] == cls and swapped.config()["scheduler"] == name
    assert not np.array_equal(batch.images, default.generate([0]).images)


def test_unknown_and_unfit_schedulers_are_refused(pipelines):
    with pytest.raises(DiffusionError, match=r"unknown scheduler 'warp'; known: ddim, ddpm, .*euler_a"):
        DiffusionGenerator(str(pipelines["sd"]), scheduler="warp")
    with pytest.raises(DiffusionError, match="scales the noise by sigma, and DDPMPipeline does not"):
        DiffusionGenerator(str(pipelines["ddpm"]), scheduler="euler")


def pipeline_copy(pipelines, tmp_path, kind="sd") -> Path:
    return Path(shutil.copytree(pipelines[kind], tmp_path / kind))


@pytest.mark.parametrize("damage, message", [
    (lambda p: shutil.rmtree(p), "does not exist"),
    (lambda p: (p / "model_index.json").unlink(), "has no model_index.json, so it is not a diffusers pipeline"),
    (lambda p: shutil.rmtree(p / "text_encoder"), r"component 'text_encoder' \(CLIPTextModel\): its folder text_encoder/ is missing"),
    (lambda p: (p / "unet" / "diffusion_pytorch_model.safetensors").unlink(), r"component 'unet' .*no weights file"),
    (lambda p: (p / "vae" / "config.json").unlink(), "vae/config.json is missing"),
    (lambda p: (p / "scheduler" / "scheduler_config.json").unlink(), "scheduler/ holds none of scheduler_config.json"),
    (lambda p: shutil.rmtree(p / "tokenizer") or (p / "tokenizer").mkdir(), "tokenizer/ holds none of tokenizer.json"),
    (lambda p: (p / "model_index.json").write_text("{}"), "no _class_name naming the pipeline class"),
    (lambda p: (p / "model_index.json").write_text(json.dumps({"_class_name": "NoSuchPipeline"})), "NoSuchPipeline.*failed to load"),
])
def test_a_broken_pipeline_folder_gives_one_line_naming_what_is_missing(pipelines, tmp_path, damage, message):
    path = pipeline_copy(pipelines, tmp_path)
    damage(path)
    with pytest.raises(DiffusionError, match=message) as error:
        DiffusionGenerator(str(path))
    assert "\n" not in str(error.value)


def test_a_model_folder_or_a_file_is_not_a_pipeline(pipelines, tmp_path):
    with pytest.raises(DiffusionError, match="one model, not a whole pipeline"):
        DiffusionGenerator(str(pipelines["sd"] / "unet"))
    with pytest.raises(DiffusionError, match="is a file"):
        DiffusionGenerator(str(pipelines["sd"] / "model_index.json"))


def test_parameters_are_checked(pipelines):
    path = str(pipelines["sd"])
    for params, message in [
        ({"dtype": "float16"}, "float16 needs a GPU"),
        ({"dtype": "int8"}, "dtype must be one of float32, float16, bfloat16"),
        ({"height": 30}, "height must be a multiple of 8"),
        ({"steps": 0}, "steps must be a positive integer"),
        ({"guidance": -1}, "guidance must be a number >= 0"),
    ]:
        with pytest.raises(DiffusionError, match=message):
            DiffusionGenerator(path, **params)
    with pytest.raises(DiffusionError, match="DDPMPipeline is unconditional: it takes no prompt, guidance"):
        DiffusionGenerator(str(pipelines["ddpm"]), prompt="a face", guidance=2.0)
    with pytest.raises(DiffusionError, match="DDPMPipeline takes no height"):
        DiffusionGenerator(str(pipelines["ddpm"]), height=32)


@pytest.mark.parametrize("kind", ["ddpm", "sd"])
def test_bfloat16_on_the_cpu(pipelines, kind):
    from packaging.version import Version

    if kind == "ddpm" and Version(diffusers.__version__) < Version("0.41"):
        pytest.skip("DDPMPipeline hands back tensors (which bfloat16 needs) from diffusers 0.41 on")
    batch = DiffusionGenerator(str(pipelines[kind]), steps=1, dtype="bfloat16").generate([0, 1])
    assert batch.images.dtype == np.uint8 and batch.images.shape[-1] == 3 and batch.records[0].meta["dtype"] == "bfloat16"


def test_height_width_and_artifacts(pipelines):
    generator = DiffusionGenerator(str(pipelines["sd"]), steps=1, height=16, width=24, artifacts="upsampling:0.5")
    batch = generator.generate([0, 1])
    assert batch.images.shape == (4, 16, 24, 3)
    assert [r.id for r in batch.records][:2] == ["diffusion-00000000-fake", "diffusion-00000001-fake"]
    assert batch.records[2].pair == "diffusion-00000000" and "upsampling" in batch.records[2].artifacts


def test_step_timing_is_reported_and_kept_out_of_records(pipelines):
    generator = DiffusionGenerator(str(pipelines["sd"]), steps=3, batch_size=2)
    assert generator.timing_summary() == {}
    batch = generator.generate([0, 1, 2])
    summary = generator.timing_summary()
    # two pipeline calls of 3 steps (PNDM's loop adds a warm-up step to each)
    assert summary["steps_timed"] in (6, 8) and summary["step_timing"] == "callback"
    assert 0 < summary["step_ms_p50"] <= summary["step_ms_p95"]
    assert not any("ms" in key for record in batch.records for key in record.meta)
    unconditional = DiffusionGenerator(str(pipelines["ddpm"]), steps=2)
    unconditional.generate([0])
    assert unconditional.timing_summary()["step_timing"] == "denoiser"


def test_loading_and_drawing_never_touch_the_network(pipelines, monkeypatch):
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args[:2])
        raise AssertionError(f"network access attempted: {args[:2]!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    for module_name, attribute in (("requests", "Session"), ("httpx", "Client"), ("httpx2", "Client")):
        module = sys.modules.get(module_name)
        if module is None:
            try:
                module = __import__(module_name)
            except ImportError:
                continue
        monkeypatch.setattr(getattr(module, attribute), "send", refuse)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for kind in ("sd", "ddpm"):
        generator = DiffusionGenerator(str(pipelines[kind]), steps=1, scheduler="ddim")
        assert len(generator.generate([0, 1])) == 2
    assert os.environ["HF_HUB_OFFLINE"] == "1" and attempts == []


def test_missing_diffusers_says_how_to_install(pipelines, monkeypatch):
    monkeypatch.setitem(sys.modules, "diffusers", None)  # import diffusers now raises ImportError
    with pytest.raises(DiffusionError, match=r"pip install 'facebench\[diffusion\]'"):
        DiffusionGenerator(str(pipelines["ddpm"]))


def test_a_broken_diffusers_install_names_the_root_cause(pipelines, monkeypatch):
    class Broken(types.ModuleType):
        def __getattr__(self, name):
            try:
                raise RuntimeError("operator torchvision::nms does not exist")
            except RuntimeError as exc:
                raise RuntimeError(f"Failed to import diffusers.{name}") from exc

    monkeypatch.setitem(sys.modules, "diffusers", Broken("diffusers"))
    with pytest.raises(DiffusionError, match="diffusers is installed but fails to import: RuntimeError: operator torchvision"):
        DiffusionGenerator(str(pipelines["ddpm"]))


def test_importing_the_plugin_imports_neither_diffusers_nor_transformers():
    code = ("import sys, facebench.generators.diffusion; "
            "assert 'diffusers' not in sys.modules and 'transformers' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


runner = CliRunner()


def test_cli_generate_writes_a_corpus_with_step_timing(pipelines, tmp_path):
    out = tmp_path / "corpus"
    result = runner.invoke(app, ["generate", "diffusion", "-p", f"pipeline={pipelines['sd']}", "--n", "4", "-p", "steps=2",
                                 "-p", "guidance=5", "--batch-size", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "wrote 4 images (0 real, 4 fake)" in result.output
    corpus = Corpus.open(out)
    assert corpus.meta["counts"]["fake"] == 4
    throughput = corpus.meta["throughput"]
    assert throughput["steps_timed"] >= 4 and throughput["step_ms_p50"] > 0  # 2 calls of 2 steps (+ PNDM warm-up)
    prompted = runner.invoke(app, ["generate", "diffusion", "-p", f"pipeline={pipelines['ddpm']}", "--n", "1",
                                   "-p", "prompt=a face", "--out", str(tmp_path / "bad")])
    assert prompted.exit_code != 0 and "DDPMPipeline is unconditional: it takes no prompt" in prompted.output
    missing = runner.invoke(app, ["generate", "diffusion", "-p", f"pipeline={tmp_path / 'nope'}", "--n", "1",
                                  "--out", str(tmp_path / "bad2")])
    assert missing.exit_code != 0 and "does not exist" in missing.output


def test_registry_lists_and_creates_it(pipelines):
    assert "diffusion" in registry.available("generator")
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0 and "diffusion" in result.output
    generator = registry.create("generator", "diffusion", pipeline=str(pipelines["ddpm"]), steps=1)
    assert generator.generate([0]).images.shape == (1, 16, 16, 3)
    with pytest.raises(registry.PluginError, match="did you mean 'steps'"):
        registry.create("generator", "diffusion", pipeline=str(pipelines["ddpm"]), step=1)


def test_the_documented_suite_runs_on_a_tiny_pipeline_and_photos(pipelines, tmp_path):
    from PIL import Image

    from facebench.harness.run.runner import check_suite, run_suite
    from facebench.harness.data.suite import load_suite

    documented = ROOT / "benchmarks" / "suites" / "examples" / "stable-diffusion-vs-photos.toml"
    check_suite(load_suite(documented))
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(photos / f"{i}.png")
    text = documented.read_text()
    for old, new in (("/path/to/stable-diffusion-v1-5", str(pipelines["sd"])), ("/path/to/real-photos", str(photos)),
                     ('device = "cuda"', 'device = "cpu"'), ('dtype = "float16"', 'dtype = "float32"'),
                     ("count = 200", "count = 6"), ("steps = 25", "steps = 2"), ("height = 512", "height = 32"),
                     ("width = 512", "width = 32"), ("resolution = 512", "resolution = 32")):
        assert old in text
        text = text.replace(old, new)
    suite_file = tmp_path / "suite.toml"
    suite_file.write_text(text)
    result = run_suite(load_suite(suite_file), tmp_path / "results", show_progress=False)
    assert result.errors == []
    (generated,) = [t for t in result.throughput if t["kind"] == "generator"]
    assert generated["images"] == 6
    (corpus_dir,) = (tmp_path / "results" / "corpora").iterdir()
    corpus = Corpus.open(corpus_dir)
    assert corpus.meta["counts"] == {"images": 12, "real": 6, "fake": 6}
    assert corpus.meta["throughput"]["step_timing"] == "callback"
