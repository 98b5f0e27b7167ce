"""The ``diffusion`` generator plug-in: fakes from any diffusers pipeline saved on local disk.

Image k depends only on seed k: its starting noise (and any noise the scheduler adds) comes
from its own ``torch.Generator().manual_seed(k)`` on the CPU, as diffusers' docs recommend
for reproducible images, and its prompt (from a template) from ``rng_for(k, "diffusion:prompt")``.
"""

from __future__ import annotations

import inspect
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ..artifacts import FakeSpec, make_fakes, parse_fake_specs, refuse_null
from .loading import (
    DiffusionError,
    check_pipeline_folder,
    config_digest,
    import_diffusers,
    load_pipeline,
    make_scheduler,
    scales_model_inputs,
)
from .prompts import DEFAULT_TEMPLATE, get_template
from ...harness.contracts.devices import synchronize
from ...harness.contracts.ids import pair_id, record_id
from ...harness.contracts.types import FAKE, Batch, Record

DTYPES = ("float32", "float16", "bfloat16")


class DiffusionGenerator:
    """Fakes drawn by a diffusers pipeline (DDPM, DDIM, latent diffusion, Stable Diffusion 1.x/2.x/XL, ...)
    loaded from a local folder, never from the network.

    Parameters:
        pipeline: folder holding ``model_index.json`` and the components (as ``save_pretrained`` writes it).
        scheduler: swap the pipeline's scheduler by name (ddim, ddpm, dpm++, euler, euler_a, pndm, lms,
            unipc, ...); None keeps the pipeline's own.
        steps: denoising steps (None: the pipeline's default, e.g. 50 for Stable Diffusion).
        guidance: classifier-free guidance scale, text pipelines only (None: the pipeline's default).
        height, width: image size in pixels, multiples of 8, text pipelines only (None: the pipeline's default).
        dtype: float32, float16 (GPU only) or bfloat16.
        device: "cpu" or "cuda" (or "cuda:N").
        batch_size: images per pipeline call; image k is the same whatever the batch.
        prompt: one prompt for every image (text pipelines).
        negative_prompt: what to steer away from (None: the template's, or none with ``prompt``).
        template: a built-in prompt template filled per seed (see ``prompts.TEMPLATES``); text pipelines
            given neither prompt nor template use "headshot".
        variant: weights variant to load, e.g. "fp16" for ``*.fp16.safetensors`` files.
        artifacts: pixel artifacts to add on top, one extra fake per spec (e.g. "blob,upsampling:0.5");
            "" adds none.
    """

    name = "diffusion"
    version = "0.1.0"

    def __init__(self, pipeline: str, scheduler: str | None = None, steps: int | None = None,
                 guidance: float | None = None, height: int | None = None, width: int | None = None,
                 dtype: str = "float32", device: str = "cpu", batch_size: int = 4, prompt: str | None = None,
                 negative_prompt: str | None = None, template: str | None = None, variant: str | None = None,
                 artifacts: str = ""):
        if not isinstance(pipeline, (str, Path)):
            raise DiffusionError(f"pipeline must be a folder path, got {pipeline!r}")
        for key, value in (("scheduler", scheduler), ("prompt", prompt), ("negative_prompt", negative_prompt),
                           ("template", template), ("variant", variant), ("device", device)):
            if value is not None and not isinstance(value, str):
                raise DiffusionError(f"{key} must be a string, got {value!r}")
        for key, number in (("steps", steps), ("height", height), ("width", width), ("batch_size", batch_size)):
            if number is not None and (isinstance(number, bool) or not isinstance(number, int) or number < 1):
                raise DiffusionError(f"{key} must be a positive integer, got {number!r}")
        for key, number in (("height", height), ("width", width)):
            if number is not None and number % 8:
                raise DiffusionError(f"{key} must be a multiple of 8, got {number}")
        if guidance is not None and (isinstance(guidance, bool) or not isinstance(guidance, (int, float)) or guidance < 0):
            raise DiffusionError(f"guidance must be a number >= 0, got {guidance!r}")
        if dtype not in DTYPES:
            raise DiffusionError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise DiffusionError("device 'cuda' asked for, but torch sees no GPU here; use device=cpu")
        if dtype == "float16" and not device.startswith("cuda"):
            raise DiffusionError("dtype float16 needs a GPU (device=cuda); on the CPU use float32 or bfloat16")
        if prompt is not None and template is not None:
            raise DiffusionError("give prompt or template, not both")
        if not isinstance(artifacts, str):
            raise DiffusionError(f"artifacts must be a spec string such as 'blob', got {artifacts!r}")
        self.template = get_template(template) if template is not None else None
        self.fake_specs: list[FakeSpec] = parse_fake_specs(artifacts) if artifacts.strip() else []
        refuse_null(self.fake_specs, "diffusion (its images are all fakes)")

        self.path = Path(pipeline).expanduser().resolve()
        model_index = check_pipeline_folder(self.path, variant)
        self.config_sha256 = config_digest(self.path, model_index)
        diffusers = import_diffusers()
        self.diffusers_version = diffusers.__version__
        self.pipe = load_pipeline(self.path, model_index, getattr(torch, dtype), variant)
        self.pipeline_class = type(self.pipe).__name__
        call = inspect.signature(self.pipe.__call__).parameters
        self._call = call
        if "generator" not in call:
            raise DiffusionError(f"{self.pipeline_class} takes no generator, so its images cannot be seeded")
        if "num_inference_steps" not in call:
            raise DiffusionError(f"{self.pipeline_class} takes no num_inference_steps; facebench drives step-wise pipelines only")
        self.conditional = "prompt" in call
        if not self.conditional:
            given = [k for k, v in (("prompt", prompt), ("negative_prompt", negative_prompt), ("template", template),
                                    ("guidance", guidance)) if v is not None]
            if given:
                raise DiffusionError(f"{self.pipeline_class} is unconditional: it takes no {', '.join(given)}")
        for key, option, accepted in (("height", height, "height"), ("width", width, "width"),
                                      ("guidance", guidance, "guidance_scale"),
                                      ("negative_prompt", negative_prompt, "negative_prompt")):
            if option is not None and accepted not in call:
                raise DiffusionError(f"{self.pipeline_class} takes no {key}; drop it")
        if self.conditional and prompt is None and self.template is None:
            self.template = get_template(DEFAULT_TEMPLATE)
        if negative_prompt is None and self.template is not None and "negative_prompt" in call:
            negative_prompt = self.template.negative

        if scheduler is not None:
            scheduler = scheduler.strip().lower()
            swapped = make_scheduler(diffusers, scheduler, self.pipe.scheduler.config)
            if float(getattr(swapped, "init_noise_sigma", 1.0)) != 1.0 and not scales_model_inputs(self.pipe, diffusers):
                raise DiffusionError(
                    f"scheduler {scheduler!r} scales the noise by sigma, and {self.pipeline_class} does not; "
                    "pick one of ddpm, ddim, dpm++, dpm_single"
                )
            self.pipe.scheduler = swapped
        self.pipe.to(device)

        self.pipeline = str(self.path)
        self.scheduler = scheduler
        self.scheduler_class = type(self.pipe.scheduler).__name__
        self.steps = steps if steps is not None else _default(call, "num_inference_steps")
        if self.steps is None:
            raise DiffusionError(f"{self.pipeline_class} has no default number of steps; pass steps")
        self.guidance = float(guidance) if guidance is not None else _default(call, "guidance_scale")
        self.height, self.width = height, width
        self.dtype, self.device, self.batch_size, self.variant = dtype, device, batch_size, variant
        self.prompt, self.negative_prompt, self.artifacts = prompt, negative_prompt, artifacts
        self.clock = StepClock(device)
        self._timed_by = self.clock.attach(self.pipe, uses_callback="callback_on_step_end" in call)

    def config(self) -> dict[str, Any]:
        """The parameters (resolved) plus ``config_sha256``, so a changed pipeline names a new cached corpus."""
        return {
            "pipeline": self.pipeline, "config_sha256": self.config_sha256, "pipeline_class": self.pipeline_class,
            "scheduler": self.scheduler, "scheduler_class": self.scheduler_class, "steps": self.steps,
            "guidance": self.guidance, "height": self.height, "width": self.width, "dtype": self.dtype,
            "variant": self.variant, "prompt": self.prompt, "negative_prompt": self.negative_prompt,
            "template": self.template.name if self.template else None, "artifacts": self.artifacts,
            "diffusers_version": self.diffusers_version,
        }

    def prompt_for(self, seed: int) -> tuple[str | None, dict[str, Any] | None]:
        """The prompt of image ``seed`` and, for a template, the fields drawn for it."""
        if self.template is not None:
            return self.template.fill(seed)
        return self.prompt, None

    def images(self, seeds: Sequence[int]) -> np.ndarray:
        """uint8 [N, H, W, 3] images for ``seeds``, ``batch_size`` per pipeline call."""
        return self._render(seeds)[0]

    def _render(self, seeds: Sequence[int]) -> tuple[np.ndarray, list[bool]]:
        """The images of ``seeds`` and, per image, whether the pipeline's safety checker flagged it."""
        images, flags = [], []
        one_by_one = not self.conditional and "batch_size" not in self._call  # the pipeline cannot batch
        for start in range(0, len(seeds), self.batch_size):
            chunk = list(seeds)[start : start + self.batch_size]
            for part in ([[seed] for seed in chunk] if one_by_one else [chunk]):
                drawn, flagged = self._draw(part)
                images.append(drawn)
                flags += flagged
        return np.concatenate(images), flags

    def generate(self, seeds: Sequence[int]) -> Batch:
        """One fake per seed, then one edited fake per artifact spec."""
        seeds = [int(seed) for seed in seeds]
        if any(seed < 0 for seed in seeds):
            raise DiffusionError(f"seeds must be >= 0, got {min(seeds)}")
        if not seeds:
            return Batch(np.zeros((0, self.height or 0, self.width or 0, 3), np.uint8), [])
        images, flags = self._render(seeds)
        height, width = images.shape[1:3]
        records = []
        for seed, flagged in zip(seeds, flags):
            prompt, fields = self.prompt_for(seed)
            meta = {
                "pipeline": self.pipeline_class, "config_sha256": self.config_sha256, "scheduler": self.scheduler_class,
                "steps": self.steps, "guidance": self.guidance if self.conditional else None, "prompt": prompt,
                "negative_prompt": self.negative_prompt, "template": self.template.name if self.template else None,
                "height": int(height), "width": int(width), "dtype": self.dtype,
            }
            if fields is not None:
                meta["prompt_fields"] = fields
            if flagged:
                meta["nsfw_flagged"] = True  # the pipeline's safety checker blacked the image out
            records.append(Record(id=record_id(self.name, seed, "fake"), label=FAKE, source=self.name,
                                  source_version=self.version, seed=seed, pair=pair_id(self.name, seed), meta=meta))
        base = Batch(images, records)
        return Batch.concat([base, *(make_fakes(base, spec) for spec in self.fake_specs)])

    def timing_summary(self) -> dict[str, Any]:
        """Per-step latency of the denoising loop (one step of a whole batch), for the throughput record."""
        if not self.clock.seconds:
            return {}
        ms = 1000 * np.asarray(self.clock.seconds)
        return {"step_ms_p50": float(np.percentile(ms, 50)), "step_ms_p95": float(np.percentile(ms, 95)),
                "steps_timed": int(ms.size), "step_timing": self._timed_by}

    def _draw(self, seeds: list[int]) -> tuple[np.ndarray, list[bool]]:
        kwargs: dict[str, Any] = {
            "generator": [torch.Generator("cpu").manual_seed(seed) for seed in seeds],
            "num_inference_steps": self.steps,
        }
        if "output_type" in self._call:  # numpy has no bfloat16: such pipelines must hand back tensors
            kwargs["output_type"] = "pt" if self.dtype == "bfloat16" else "np"
        if self.conditional:
            kwargs["prompt"] = [self.prompt_for(seed)[0] for seed in seeds]
            if self.negative_prompt is not None:
                kwargs["negative_prompt"] = [self.negative_prompt] * len(seeds)
            for key, value in (("guidance_scale", self.guidance), ("height", self.height), ("width", self.width)):
                if value is not None and key in self._call:
                    kwargs[key] = value
        elif "batch_size" in self._call:
            kwargs["batch_size"] = len(seeds)
        if len(seeds) == 1 and not self.conditional and "batch_size" not in self._call:
            kwargs["generator"] = kwargs["generator"][0]
        if self._timed_by == "callback":
            kwargs["callback_on_step_end"] = self.clock.on_step_end
        self.clock.begin()
        timed = len(self.clock.seconds)
        start = time.perf_counter()
        try:
            output = self.pipe(**kwargs)
        except TypeError as exc:
            if self.dtype == "bfloat16" and "BFloat16" in str(exc):  # e.g. DDPMPipeline before diffusers 0.41
                raise DiffusionError(f"{self.pipeline_class} cannot hand back bfloat16 images with this diffusers; "
                                     "use dtype float32 or a newer diffusers") from exc
            if self.scheduler is None:
                raise
            raise DiffusionError(f"scheduler {self.scheduler!r} does not work with {self.pipeline_class}: {exc}") from exc
        if len(self.clock.seconds) == timed:  # no hook saw the steps: spread the total evenly
            synchronize(self.device)
            self.clock.seconds += [(time.perf_counter() - start) / self.steps] * self.steps
        flagged = getattr(output, "nsfw_content_detected", None) or [False] * len(seeds)
        return to_uint8(output.images, self.pipeline_class), [bool(f) for f in flagged]


class StepClock:
    """Wall time of each denoising step, from the denoiser's first forward call to the step's end.

    Kept apart from the records: timing differs run to run, records never do.
    """

    def __init__(self, device: str):
        self.device = device
        self.seconds: list[float] = []
        self._start: float | None = None

    def attach(self, pipe: Any, uses_callback: bool) -> str:
        """Hook ``pipe``'s denoiser; returns how steps are timed: callback, denoiser or total/steps."""
        denoiser = next((m for m in (getattr(pipe, "unet", None), getattr(pipe, "transformer", None))
                         if isinstance(m, torch.nn.Module)), None)
        if denoiser is None:
            return "total/steps"
        denoiser.register_forward_pre_hook(lambda module, args: self.start())
        if uses_callback:
            return "callback"
        denoiser.register_forward_hook(lambda module, args, output: self.stop())
        return "denoiser"

    def begin(self) -> None:
        """Forget a step left open (by a pipeline call that failed midway)."""
        self._start = None

    def start(self) -> None:
        if self._start is None:
            synchronize(self.device)
            self._start = time.perf_counter()

    def stop(self) -> None:
        if self._start is not None:
            synchronize(self.device)
            self.seconds.append(time.perf_counter() - self._start)
            self._start = None

    def on_step_end(self, pipe: Any, step: int, timestep: Any, callback_kwargs: dict) -> dict:
        """diffusers' ``callback_on_step_end``: ends the step's clock, changes nothing."""
        self.stop()
        return {}


def _default(call: Mapping[str, inspect.Parameter], name: str) -> Any:
    parameter = call.get(name)
    if parameter is None or parameter.default is inspect.Parameter.empty:
        return None
    return parameter.default


def to_uint8(images: Any, pipeline_class: str) -> np.ndarray:
    """A pipeline's output (float [0, 1] NHWC array, tensor or PIL images) as uint8 RGB [N, H, W, 3]."""
    if isinstance(images, list) and images and hasattr(images[0], "convert"):  # PIL images
        return np.stack([np.asarray(image.convert("RGB"), dtype=np.uint8) for image in images])
    if hasattr(images, "detach"):  # a torch tensor in [0, 1]: NCHW, as diffusers' output_type="pt" is
        images = images.detach().float().cpu().permute(0, 2, 3, 1).numpy()
    images = np.asarray(images)
    if images.dtype != np.uint8:
        if not np.all(np.isfinite(images)):
            raise DiffusionError(f"{pipeline_class} drew NaN or infinite pixels (a float16 overflow?); try dtype float32 or bfloat16")
        images = np.round(np.clip(images, 0, 1) * 255).astype(np.uint8)  # as diffusers' numpy_to_pil rounds
    if images.ndim == 3:
        images = images[..., None]
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise DiffusionError(f"{pipeline_class} drew images of shape {list(images.shape)}; facebench needs RGB")
    return images
