"""What the published detectors (npr, cnndetection, univfd, rine, patchcraft, fusing) share: reading the user's weight
files, loading them strictly, telling which detector a wrong file belongs to, and seeded random
weights that stand in for the real files in tests and benchmarks.

Reading never runs code from a file: ``torch.load(weights_only=True)`` or safetensors (through
:func:`facebench.detectors.checkpoint.read_state_dict`); OpenAI's TorchScript CLIP archives are
read by :mod:`facebench.detectors.clip_vision` without running their code.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..harness.contracts.types import check_images
from ..harness.contracts.errors import FacebenchError
from .checkpoint import CheckpointError, key_mismatches, listed, read_state_dict  # noqa: F401 - listed: re-exported


class WeightsError(FacebenchError, ValueError):
    """A weight file does not fit the detector that was asked to read it."""


def check_weights_path(detector: str, parameter: str, value) -> str:
    """``value`` as a path string, or ValueError saying which parameter needs a file."""
    if value is None or not isinstance(value, (str, Path)) or not str(value):
        raise ValueError(f"the {detector} detector needs {parameter}: the path of a local weight file")
    return str(value)


def read_weights(path: str | Path, detector: str) -> dict[str, torch.Tensor]:
    """The state dict in ``path`` (a ``"model"``/``"state_dict"`` wrapper is unwrapped); errors name ``detector``."""
    try:
        return read_state_dict(path)
    except CheckpointError as exc:
        raise WeightsError(str(exc).replace("checkpoint weights", f"{detector} weights", 1)) from None


#: A key only one detector's files hold, to name the detector a wrong file belongs to.
SIGNATURES: tuple[tuple[str, str], ...] = (
    ("fc1.weight", "npr (NPR.pth)"),
    ("layer4.0.conv1.weight", "cnndetection (blur_jpg_prob0.5.pth)"),
    ("visual.conv1.weight", "a CLIP image encoder (ViT-L-14.pt)"),
    ("alpha", "rine (model_4class_trainable.pth)"),
    ("group1.hpf.weight", "patchcraft (RPTC.pth)"),
    ("mha_list.0.mha.in_proj_weight", "fusing (PSM.pth)"),
)


def looks_like(state: dict[str, torch.Tensor]) -> str | None:
    """Which published file ``state`` looks like, or None."""
    if set(state) == {"weight", "bias"}:
        return "univfd (fc_weights.pth)"
    for key, owner in SIGNATURES:
        if key in state:
            return owner
    return None


def load_strict(model: nn.Module, state: dict[str, torch.Tensor], path: str | Path, detector: str) -> None:
    """Load ``state`` into ``model``; WeightsError listing missing, unexpected and mis-shaped keys.

    Only BatchNorm ``num_batches_tracked`` counters may be missing (old files lack them; inference never reads them).
    """
    expected = model.state_dict()
    counters, parts = key_mismatches(state, expected)
    if parts:
        owner = looks_like(state)
        hint = f"; the file looks like {owner}" if owner and not owner.startswith(detector) else ""
        raise WeightsError(f"{detector} weights {str(path)!r} do not fit the {detector} network: {'; '.join(parts)}{hint}")
    full = {k: v.to(expected[k].dtype) for k, v in state.items()}
    for key in counters:
        full[key] = expected[key]
    model.load_state_dict(full, strict=True)


def block_counts(state: dict[str, torch.Tensor], layers: tuple[str, ...], default: tuple[int, ...]) -> tuple[int, ...]:
    """Blocks per ResNet stage (``layer1.0``, ``layer1.1``, ...) in ``state``; ``default`` when a stage is absent
    (so a wrong file is reported by the strict loader, key by key)."""
    counts = []
    for layer, fallback in zip(layers, default):
        indices = {key.split(".")[1] for key in state if key.startswith(layer + ".") and key.split(".")[1].isdigit()}
        counts.append(len(indices) if indices else fallback)
    return tuple(counts)


def seeded_weights(template: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    """Random weights shaped like ``template`` (a state dict), the same for the same seed and keys.

    Matrices and kernels ~ N(0, 1/fan_in); 1-D ``weight`` (norm scales) ~ 1 + N(0, 0.1);
    ``running_var`` ~ U(0.5, 1.5); other 1-D tensors ~ N(0, 0.1); integer counters 0. Each key
    draws from its own generator (seed and the key's CRC-32), so a key gets the same values
    whatever other keys the template has and in whatever order.
    """
    out: dict[str, torch.Tensor] = {}
    for key in sorted(template):
        like = template[key]
        if not like.is_floating_point():
            out[key] = torch.zeros_like(like)
            continue
        generator = torch.Generator().manual_seed(seed * 2**32 + zlib.crc32(key.encode()))
        shape = tuple(like.shape)
        if key.endswith("running_var"):
            value = 0.5 + torch.rand(shape, generator=generator)
        elif len(shape) >= 2:
            fan_in = int(np.prod(shape[1:]))
            value = torch.randn(shape, generator=generator) / fan_in ** 0.5
        elif key.endswith("weight"):
            value = 1.0 + 0.1 * torch.randn(shape, generator=generator)
        else:
            value = 0.1 * torch.randn(shape, generator=generator)
        out[key] = value.to(like.dtype)
    return out


#: The arithmetic a published detector's network can run in (its ``precision`` parameter).
PRECISIONS: dict[str, torch.dtype] = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def runs_in(dtype: torch.dtype, device: str) -> bool:
    """Whether this torch runs the operations of the published networks (convolution, BatchNorm,
    pooling, linear, LayerNorm, softmax attention) in ``dtype`` on ``device``: tried on tiny tensors."""
    try:
        with torch.inference_mode():
            x = torch.ones(1, 2, 4, 4, dtype=dtype, device=device)
            y = nn.functional.conv2d(x, torch.ones(2, 2, 3, 3, dtype=dtype, device=device), padding=1)
            stats = torch.ones(2, dtype=dtype, device=device)
            y = nn.functional.batch_norm(y, stats, stats, stats, stats)
            y = nn.functional.avg_pool2d(nn.functional.max_pool2d(y, 2), 2).flatten(1)
            y = nn.functional.layer_norm(nn.functional.linear(y, torch.ones(2, 2, dtype=dtype, device=device)), (2,))
            q = y.reshape(1, 1, 1, 2).expand(1, 1, 3, 2)
            nn.functional.scaled_dot_product_attention(q, q, q).sum().item()
        return True
    except (RuntimeError, NotImplementedError):
        return False


def check_precision(detector: str, value, device: str) -> torch.dtype:
    """The torch dtype of ``precision`` ``value``; ValueError in one line when it is unknown or this torch
    cannot run it on ``device`` (e.g. float16 on the CPU of an old torch)."""
    if value not in PRECISIONS:
        raise ValueError(f"{detector}: precision must be one of {', '.join(PRECISIONS)}, got {value!r}")
    dtype = PRECISIONS[value]
    if dtype != torch.float32 and not runs_in(dtype, device):
        raise ValueError(f"{detector}: torch {torch.__version__} cannot run precision {value!r} on {device}; "
                         f"use precision=\"float32\"{' or a CUDA device' if device == 'cpu' else ''}")
    return dtype


def run_batches(model: nn.Module, images: np.ndarray, batch_size: int, prepare,
                dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """float64 ``[N, outputs]`` of ``model(prepare(batch))`` over ``images`` in batches, on the CPU;
    the prepared batch is cast to ``dtype``, the network's precision."""
    out = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            y = model(prepare(images[start : start + batch_size]).to(dtype))
            out.append(y.reshape(y.shape[0], -1).double().cpu())
    return torch.cat(out) if out else torch.zeros(0, 1, dtype=torch.float64)


def sigmoid_scores(logits: torch.Tensor) -> np.ndarray:
    """Probability of "fake" from a single fake logit per image."""
    if len(logits) == 0:
        return np.zeros(0)
    return np.clip(torch.sigmoid(logits[:, 0]).numpy(), 0.0, 1.0).astype(np.float64)


class PublishedDetector:
    """What every published detector shares: fixed weights (no fit), a model on ``self.device``
    in ``self.batch_size`` batches, its reference preprocessing in :meth:`prepare`, and a single
    fake logit per image whose sigmoid is the score. The network runs in ``self.dtype``
    (:meth:`place`), float32 unless the detector's ``precision`` says otherwise."""

    score_range = (0.0, 1.0)
    requires_fit = False
    inputs = ("pixels",)
    #: What size it takes (facebench.harness.contracts.input_policy); each detector declares its own.
    input_policy = "any"
    name: str  # each detector declares its own
    model: nn.Module
    batch_size: int
    device: str
    precision: str = "float32"
    dtype: torch.dtype = torch.float32

    def place(self, model: nn.Module, precision: str) -> nn.Module:
        """``model`` in eval mode on ``self.device`` in ``precision`` (checked: see :func:`check_precision`)."""
        self.dtype = check_precision(self.name, precision, self.device)
        self.precision = precision
        return model.to(self.device, self.dtype).eval()

    def fit(self, images: np.ndarray, labels: np.ndarray) -> None:
        """Nothing to learn: the weights are fixed."""

    def prepare(self, images: np.ndarray) -> torch.Tensor:  # pragma: no cover - each detector has its own
        raise NotImplementedError

    def logits(self, images: np.ndarray) -> torch.Tensor:
        """float64 ``[N, 1]`` fake logits, on the CPU."""
        check_images(images)
        return run_batches(self.model, images, self.batch_size, self.prepare, self.dtype)

    def score(self, images: np.ndarray) -> np.ndarray:
        return sigmoid_scores(self.logits(images))
