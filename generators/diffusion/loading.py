"""Loading a diffusers pipeline from a local folder: offline, checked first, errors in one line.

Nothing here imports diffusers or transformers at module level: ``facebench list`` and the
rest of facebench work without them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from ...harness.contracts.errors import FacebenchError

INSTALL_HINT = "pip install 'facebench[diffusion]'"

#: Set before diffusers or transformers is imported: the Hugging Face hub is never asked anything.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "DIFFUSERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}

#: Scheduler names (as in common web UIs) -> diffusers class and config overrides.
SCHEDULERS: dict[str, tuple[str, dict[str, Any]]] = {
    "ddim": ("DDIMScheduler", {}),
    "ddpm": ("DDPMScheduler", {}),
    "pndm": ("PNDMScheduler", {"skip_prk_steps": True}),
    "lms": ("LMSDiscreteScheduler", {}),
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "heun": ("HeunDiscreteScheduler", {}),
    "dpm++": ("DPMSolverMultistepScheduler", {}),  # DPM++ 2M
    "dpm++_karras": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True}),
    "dpm++_sde": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"}),
    "dpm_single": ("DPMSolverSinglestepScheduler", {}),
    "deis": ("DEISMultistepScheduler", {}),
    "unipc": ("UniPCMultistepScheduler", {}),
    "kdpm2": ("KDPM2DiscreteScheduler", {}),
    "kdpm2_a": ("KDPM2AncestralDiscreteScheduler", {}),
    "lcm": ("LCMScheduler", {}),
}

#: Files read as weights: fingerprinted (size and sampled bytes) rather than hashed whole.
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".msgpack", ".onnx", ".gguf")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "vocab.txt", "spiece.model")
_SAMPLES, _CHUNK = 16, 1 << 16


class DiffusionError(FacebenchError, ValueError):
    """The pipeline folder, or a diffusion parameter, cannot be used."""


def force_offline() -> None:
    """Turn the Hugging Face hub off for this process, whether or not its libraries are imported yet."""
    os.environ.update(OFFLINE_ENV)
    constants: Any = sys.modules.get("huggingface_hub.constants")
    if constants is not None:  # imported earlier: it read the environment already
        constants.HF_HUB_OFFLINE = True


def import_diffusers():
    """The diffusers module, imported with the hub offline; a clear error if it is not installed."""
    force_offline()
    try:
        import diffusers
    except ImportError as exc:
        raise DiffusionError(f"the diffusion generator needs diffusers ({exc}); {INSTALL_HINT}") from None
    try:
        diffusers.DiffusionPipeline  # noqa: B018 - diffusers imports lazily: this loads torch-side modules
    except Exception as exc:  # installed but broken, e.g. by a torchvision built for another torch
        raise DiffusionError(f"diffusers is installed but fails to import: {root_cause(exc)}") from exc
    return diffusers


def root_cause(exc: BaseException) -> str:
    """The innermost exception behind ``exc`` (diffusers wraps import errors several times), in one line."""
    while (inner := exc.__cause__ or exc.__context__) is not None:
        exc = inner
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


def components(model_index: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(folder, library, class) of each component ``model_index.json`` names; left-out ones skipped."""
    found = []
    for name, value in sorted(model_index.items()):
        if name.startswith("_") or not isinstance(value, list) or len(value) != 2:
            continue
        library, class_name = value
        if library is None or class_name is None:  # an optional component saved as absent, e.g. safety_checker
            continue
        found.append((name, str(library), str(class_name)))
    return found


def check_pipeline_folder(path: Path, variant: str | None = None) -> dict[str, Any]:
    """``model_index.json`` of the pipeline at ``path``, once every component it names is found there."""
    if not path.exists():
        raise DiffusionError(f"diffusion pipeline {str(path)!r} does not exist; pass a folder that holds model_index.json")
    if not path.is_dir():
        raise DiffusionError(
            f"diffusion pipeline {str(path)!r} is a file; pass a diffusers pipeline folder (with model_index.json, "
            "as DiffusionPipeline.save_pretrained writes it); single-file checkpoints are not read"
        )
    index = path / "model_index.json"
    if not index.is_file():
        if (path / "snapshots").is_dir():
            hint = f"this is a hub cache folder: pass {str(path / 'snapshots')!r}/<revision>"
        elif (path / "config.json").is_file():
            hint = "it holds config.json: one model, not a whole pipeline"
        else:
            hint = "pass the folder DiffusionPipeline.save_pretrained wrote"
        raise DiffusionError(f"diffusion pipeline {str(path)!r} has no model_index.json, so it is not a diffusers pipeline; {hint}")
    try:
        model_index = json.loads(index.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise DiffusionError(f"{index}: not valid JSON ({exc})") from None
    if not isinstance(model_index, dict) or not isinstance(model_index.get("_class_name"), str):
        raise DiffusionError(f"{index}: no _class_name naming the pipeline class, so not a diffusers pipeline")
    for name, _, class_name in components(model_index):
        _check_component(path, name, class_name, variant)
    return model_index


def _check_component(path: Path, name: str, class_name: str, variant: str | None) -> None:
    folder = path / name
    what = f"diffusion pipeline {str(path)!r}: component {name!r} ({class_name})"
    if not folder.is_dir():
        raise DiffusionError(f"{what}: its folder {name}/ is missing")
    files = {p.name for p in folder.iterdir() if p.is_file()}
    if class_name.endswith("Scheduler"):
        needed: tuple[str, ...] = ("scheduler_config.json",)
    elif "Tokenizer" in class_name:
        needed = TOKENIZER_FILES
    elif class_name.endswith(("ImageProcessor", "FeatureExtractor")):
        needed = ("preprocessor_config.json",)
    else:  # a model: its config and weights
        if "config.json" not in files:
            raise DiffusionError(f"{what}: {name}/config.json is missing")
        weights = [f for f in files if f.endswith(WEIGHT_SUFFIXES)]
        if variant is not None:
            weights = [f for f in weights if f".{variant}." in f]
        if not weights:
            kind = f"{variant} " if variant else ""
            raise DiffusionError(f"{what}: no {kind}weights file (*.safetensors or *.bin) in {name}/")
        return
    if not files.intersection(needed):
        raise DiffusionError(f"{what}: {name}/ holds none of {', '.join(needed)}")


def config_digest(path: Path, model_index: dict[str, Any]) -> str:
    """sha256 of model_index.json and every component's files: configs and tokenizer files whole,
    weights by size and sampled bytes (see :func:`weight_fingerprint`)."""
    digest = hashlib.sha256(b"model_index.json\0" + (path / "model_index.json").read_bytes())
    for name, _, _ in components(model_index):
        for file in sorted((path / name).rglob("*")):
            relative = file.relative_to(path)
            if not file.is_file() or any(part.startswith(".") for part in relative.parts):
                continue
            digest.update(relative.as_posix().encode() + b"\0")
            digest.update(weight_fingerprint(file) if file.name.endswith(WEIGHT_SUFFIXES) else file.read_bytes())
    return digest.hexdigest()


def weight_fingerprint(file: Path) -> bytes:
    """Size and 16 chunks of 64 KiB spread over the file: cheap on multi-GB weights, and two different
    checkpoints of one architecture differ in every chunk."""
    size = file.stat().st_size
    digest = hashlib.sha256(f"{size}\0".encode())
    with open(file, "rb") as f:
        for i in range(_SAMPLES):
            f.seek(max(0, size - _CHUNK) * i // (_SAMPLES - 1))
            digest.update(f.read(_CHUNK))
    return digest.digest()


def known_schedulers(diffusers) -> list[str]:
    """The names of :data:`SCHEDULERS` whose class the installed diffusers has."""
    return [name for name, (class_name, _) in SCHEDULERS.items() if hasattr(diffusers, class_name)]


def make_scheduler(diffusers, name: str, config: Any) -> Any:
    """Scheduler ``name`` built from the pipeline's scheduler ``config`` (its noise schedule kept)."""
    known = known_schedulers(diffusers)
    if name not in known:
        raise DiffusionError(f"unknown scheduler {name!r}; known: {', '.join(known)}")
    class_name, overrides = SCHEDULERS[name]
    return getattr(diffusers, class_name).from_config(config, **overrides)


def scales_model_inputs(pipe: Any, diffusers) -> bool:
    """Whether the pipeline's loop applies ``init_noise_sigma`` (so sigma-based schedulers fit it)."""
    for cls in type(pipe).__mro__:
        if cls is diffusers.DiffusionPipeline or not issubclass(cls, diffusers.DiffusionPipeline):
            continue
        try:
            if "init_noise_sigma" in inspect.getsource(cls):
                return True
        except (OSError, TypeError):
            return True  # no source to read: assume it does
    return False


@contextmanager
def quiet(diffusers) -> Iterator[None]:
    """diffusers' and transformers' warnings and progress bars off while loading (restored after)."""
    loggers = [diffusers.utils.logging]
    if importlib.util.find_spec("transformers") is not None:
        from transformers.utils import logging as transformers_logging

        loggers.append(transformers_logging)
    saved = [(log, log.get_verbosity(), log.is_progress_bar_enabled()) for log in loggers]
    for log in loggers:
        log.set_verbosity_error()
        log.disable_progress_bar()
    try:
        yield
    finally:
        for log, verbosity, bars in saved:
            log.set_verbosity(verbosity)
            if bars:
                log.enable_progress_bar()


def load_pipeline(path: Path, model_index: dict[str, Any], torch_dtype: Any, variant: str | None) -> Any:
    """The pipeline at ``path`` from local files only; any failure becomes one DiffusionError line."""
    diffusers = import_diffusers()
    libraries = {library for _, library, _ in components(model_index)}
    if "transformers" in libraries and importlib.util.find_spec("transformers") is None:
        raise DiffusionError(f"{model_index['_class_name']} at {str(path)!r} needs transformers; {INSTALL_HINT}")
    # newer diffusers name the argument dtype and warn about torch_dtype; older ones know torch_dtype only
    dtype_key = "dtype" if hasattr(sys.modules[diffusers.DiffusionPipeline.__module__], "_resolve_dtype") else "torch_dtype"
    with quiet(diffusers):
        try:
            pipe = diffusers.DiffusionPipeline.from_pretrained(
                str(path), local_files_only=True, variant=variant, **{dtype_key: torch_dtype},
                low_cpu_mem_usage=importlib.util.find_spec("accelerate") is not None,
            )
        except Exception as exc:
            text = str(exc).strip()
            raise DiffusionError(
                f"diffusion pipeline {str(path)!r} ({model_index['_class_name']}) failed to load: "
                f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"
            ) from exc
    pipe.set_progress_bar_config(disable=True)
    return pipe
