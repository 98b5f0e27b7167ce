"""A pretrained real/fake classifier loaded from a local weights file (no training, no downloads).

The typical use is Wang et al. (CVPR 2020, "CNN-generated images are surprisingly easy to
spot"): a ResNet-50 whose last layer gives one "fake" logit, trained with blur and JPEG
augmentation. Their ``blur_jpg_prob0.5.pth`` / ``blur_jpg_prob0.1.pth`` hold
``{"model": state_dict}``; with ``arch="resnet50", num_classes=1, preset="wang2020"`` this
detector reproduces their test-time pipeline.

Architectures (``arch``):

- ``resnet18``, ``resnet34``, ``resnet50`` (default), ``resnet101``, ``resnet152``: built in
  (:class:`ResNet`), with exactly torchvision's module names and layout ("ResNet v1.5": the
  stride in the 3x3 conv of a bottleneck), so torchvision state dicts load as they are, and
  torchvision is not needed.
- any other torchvision classification model name (e.g. ``efficientnet_b0``), or
  ``torchvision:<name>`` to use torchvision's own class even for a ResNet: needs torchvision.
- ``timm:<name>``, or a bare name torchvision lacks (e.g. ``convnext_tiny.fb_in1k``): built with
  ``timm.create_model(name, pretrained=False, num_classes=...)``; needs timm. Never downloads.

Weights: ``torch.load(path, map_location="cpu", weights_only=True)``: only tensors and plain
containers are unpickled, so a file that holds other Python objects is refused and no code
from it runs. ``.safetensors`` files are read with safetensors. The file may hold a plain state
dict or one under a ``"model"`` or ``"state_dict"`` key; a ``"module."`` prefix (DataParallel)
is stripped. Keys must match the model exactly (only BatchNorm ``num_batches_tracked``
counters, which old checkpoints lack and inference never reads, may be missing).

Preprocessing presets (pixels are first scaled to [0, 1] floats):

- ``"wang2020"``: no resize, the whole image (or a centre crop of ``crop`` pixels, e.g. 224,
  the training crop), ImageNet mean/std normalisation. Matches Wang et al.'s weights (their
  evaluation uses neither resize nor crop).
- ``"imagenet"``: resize the shorter side to 256 (bilinear, antialiased, on float tensors like
  ``torchvision.transforms.Resize`` after ``ToTensor``), centre crop 224 (``crop`` overrides),
  ImageNet mean/std: torchvision's classification evaluation transform. Matches a torchvision
  ImageNet model fine-tuned as a real/fake classifier, and timm models whose pretrained config
  is 224 px with crop_pct 0.875 and ImageNet mean/std (check ``model.pretrained_cfg``).

Scores: ``num_classes=1``: sigmoid of the single logit (a "fake" logit, as Wang et al.);
``num_classes>=2``: the softmax probability of class ``fake_index``.
"""

from __future__ import annotations

import difflib
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..harness.contracts.detector import DetectorBase, all_of, choice, device, integer, optional, require
from ..harness.contracts.errors import FacebenchError
from ..harness.contracts.types import check_images

TORCHVISION_HINT = "pip install torchvision==0.28.0"
TIMM_HINT = "pip install 'timm>=1.0'"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Keys unwrapped when a checkpoint holds its state dict under them (Wang et al. use "model").
WRAPPER_KEYS = ("model", "state_dict", "netC")  # netC: PatchCraft's RPTC.pth
LISTED_KEYS = 5


class CheckpointError(FacebenchError, ValueError):
    """The weights file cannot be read as a state dict, or does not fit the architecture."""


# -- preprocessing --------------------------------------------------------------------------


@dataclass(frozen=True)
class Preset:
    #: Shorter side after resizing, or None for no resize.
    resize: int | None
    #: Centre crop side, or None for the whole image.
    crop: int | None
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


PRESETS: dict[str, Preset] = {
    "wang2020": Preset(resize=None, crop=None),
    "imagenet": Preset(resize=256, crop=224),
}


def resized_size(height: int, width: int, shorter: int) -> tuple[int, int]:
    """(height, width) with the shorter side ``shorter`` and the aspect ratio kept (torchvision's rounding)."""
    if height <= width:
        return shorter, int(shorter * width / height)
    return int(shorter * height / width), shorter


def preprocess(
    images: np.ndarray, preset: Preset, crop: int | None = None, device: str | torch.device = "cpu"
) -> torch.Tensor:
    """float32 ``[N, 3, h, w]`` network input of uint8 ``[N, H, W, 3]`` images under ``preset``.

    ``crop`` overrides the preset's centre crop. Order: scale to [0, 1], resize, centre crop, normalise.
    """
    check_images(images)
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2).float().div_(255.0)
    if preset.resize is not None:
        size = resized_size(x.shape[2], x.shape[3], preset.resize)
        if size != tuple(x.shape[2:]):
            x = nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    side = crop if crop is not None else preset.crop
    if side is not None:
        height, width = x.shape[2:]
        if height < side or width < side:
            raise ValueError(f"checkpoint detector: images of {height}x{width} (after resizing) are smaller than the {side} px crop")
        top, left = int(round((height - side) / 2.0)), int(round((width - side) / 2.0))
        x = x[:, :, top : top + side, left : left + side]
    mean = torch.tensor(preset.mean, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(preset.std, device=x.device).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous()


# -- built-in ResNets (torchvision's layout and module names) -------------------------------


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_channels: int, width: int, stride: int):
        super().__init__()
        out = width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_channels, out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(y)) + shortcut)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying the stride), 1x1 expand by 4."""

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int):
        super().__init__()
        out = width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_channels, out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        return self.relu(self.bn3(self.conv3(y)) + shortcut)


def _shortcut(in_channels: int, out: int, stride: int) -> nn.Sequential | None:
    if stride == 1 and in_channels == out:
        return None
    return nn.Sequential(nn.Conv2d(in_channels, out, 1, stride=stride, bias=False), nn.BatchNorm2d(out))


def add_stages(module: nn.Module, block: type[BasicBlock] | type[Bottleneck], depths: Sequence[int],
               widths: Sequence[int], channels: int = 64) -> int:
    """Give ``module`` ResNet stages ``layer1``, ``layer2``, ... of ``depths`` blocks ``widths`` wide
    (torchvision's names; the first block of every stage after the first strides 2), fed with
    ``channels``; the channels the last stage gives out."""
    for index, (depth, width) in enumerate(zip(depths, widths)):
        blocks = []
        for position in range(depth):
            blocks.append(block(channels, width, 2 if index > 0 and position == 0 else 1))
            channels = width * block.expansion
        setattr(module, f"layer{index + 1}", nn.Sequential(*blocks))
    return channels


class ResNet(nn.Module):
    """ResNet (He et al. 2016) for 3-channel input, with torchvision's state dict keys."""

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], depths: tuple[int, int, int, int], num_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        channels = add_stages(self, block, depths, (64, 128, 256, 512))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


RESNETS: dict[str, tuple[type[BasicBlock] | type[Bottleneck], tuple[int, int, int, int]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
    "resnet101": (Bottleneck, (3, 4, 23, 3)),
    "resnet152": (Bottleneck, (3, 8, 36, 3)),
}


def resnet(name: str, num_classes: int = 1000) -> ResNet:
    block, depths = RESNETS[name]
    return ResNet(block, depths, num_classes)


def random_resnet(name: str, num_classes: int = 1, seed: int = 0) -> ResNet:
    """A ResNet with seeded random weights and BatchNorm statistics (so eval mode matters), in
    eval mode: a stand-in for a real checkpoint in tests and benchmarks."""
    import torch

    torch.manual_seed(seed)
    model = resnet(name, num_classes)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.1)
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 2.0)
    return model.eval()


# -- optional libraries ---------------------------------------------------------------------


def import_torchvision():
    """torchvision, or CheckpointError naming the install command (also when a build that does not
    match torch fails to import, e.g. "operator torchvision::nms does not exist")."""
    try:
        import torchvision
    except Exception as exc:  # ImportError, or RuntimeError from a build for another torch variant
        raise CheckpointError(
            f"torchvision does not import ({type(exc).__name__}: {_first_line(exc)}); "
            f"{TORCHVISION_HINT} (its build must match torch {torch.__version__}: CPU with CPU, CUDA with CUDA)"
        ) from None
    return torchvision


def import_timm():
    try:
        import timm
    except Exception as exc:
        raise CheckpointError(
            f"timm does not import ({type(exc).__name__}: {_first_line(exc)}); "
            f"{TIMM_HINT} (timm needs torchvision: {TORCHVISION_HINT})"
        ) from None
    return timm


def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."


def build_model(arch: str, num_classes: int) -> nn.Module:
    """An untrained classifier ``arch`` with ``num_classes`` outputs (see the module docstring).

    A bare name is looked up in the built-in ResNets, then torchvision, then timm; a library
    that does not import is skipped (and named in the error if the name is found nowhere).
    """
    library, _, name = arch.rpartition(":")
    if library not in ("", "torchvision", "timm") or not name:
        raise ValueError(f"arch {arch!r}: the prefix must be 'torchvision:' or 'timm:', e.g. 'timm:resnet50'")
    if library == "" and name in RESNETS:
        return resnet(name, num_classes)
    unavailable = []
    if library in ("", "torchvision"):
        try:
            torchvision = import_torchvision()
        except CheckpointError as exc:
            if library == "torchvision":
                raise
            unavailable.append(str(exc))
        else:
            known = torchvision.models.list_models(module=torchvision.models)
            if name in known:
                return torchvision.models.get_model(name, weights=None, num_classes=num_classes)
            if library == "torchvision":
                raise ValueError(f"arch {arch!r}: torchvision has no classification model {name!r}{_did_you_mean(name, known)}")
    if library in ("", "timm"):
        try:
            timm = import_timm()
        except CheckpointError as exc:
            if library == "timm":
                raise
            unavailable.append(str(exc))
        else:
            if timm.is_model(name):
                return timm.create_model(name, pretrained=False, num_classes=num_classes)
            if library == "timm":
                raise ValueError(f"arch {arch!r}: timm has no model {name!r}{_did_you_mean(name, timm.list_models())}")
    searched = "" if not unavailable else "; not searched: " + "; ".join(unavailable)
    raise ValueError(
        f"unknown arch {arch!r}{_did_you_mean(name, list(RESNETS))}; built in: {', '.join(RESNETS)}; "
        f"other names are looked up in torchvision and timm{searched}"
    )


def _did_you_mean(name: str, choices) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


# -- weights --------------------------------------------------------------------------------


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict in ``path`` (unwrapped from "model"/"state_dict"/"netC", "module." stripped); never runs code from it."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint weights {str(path)!r}: no such file")
    if not path.is_file():
        raise CheckpointError(f"checkpoint weights {str(path)!r}: not a file")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            obj: Any = load_file(str(path), device="cpu")
        except Exception as exc:
            raise CheckpointError(f"checkpoint weights {str(path)!r}: not a safetensors file ({_first_line(exc)})") from None
    else:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            # torch names the refused global anywhere in a long message ("Unsupported global: GLOBAL x.y",
            # "unsupported GLOBAL posix.system whose module posix is blocked"): look in all of it
            found = re.search(r"GLOBAL ([\w.]+)", str(exc))
            if found:
                raise CheckpointError(
                    f"checkpoint weights {str(path)!r}: refused: the file holds Python objects besides tensors "
                    f"({found.group(1)}; torch.load weights_only=True, nothing in it was run); save a state dict, "
                    "torch.save(model.state_dict(), path)"
                ) from None
            raise CheckpointError(
                f"checkpoint weights {str(path)!r}: not a PyTorch weights file ({_unpickler_detail(exc)}; nothing in it was run)"
            ) from None
        except Exception as exc:
            raise CheckpointError(
                f"checkpoint weights {str(path)!r}: not a PyTorch weights file ({type(exc).__name__}: {_first_line(exc)})"
            ) from None
    if isinstance(obj, dict):
        for key in WRAPPER_KEYS:
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict):
        raise CheckpointError(f"checkpoint weights {str(path)!r} hold a {type(obj).__name__}, not a state dict")
    if not obj:
        raise CheckpointError(f"checkpoint weights {str(path)!r} hold an empty dict, not a state dict")
    state: dict[str, torch.Tensor] = {}
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f"checkpoint weights {str(path)!r}: not a state dict: entry {key!r} is a {type(value).__name__}, "
                f"not a tensor (keys: {listed(list(map(str, obj)))})"
            )
        state[key.removeprefix("module.")] = value
    return state


def _unpickler_detail(exc: BaseException) -> str:
    """The reason inside torch's long "Weights only load failed" message, e.g. "Unsupported operand 95"."""
    text = str(exc)
    found = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", text)
    if found:
        return found.group(1).strip()
    # skip torch's boilerplate (which suggests weights_only=False: never for a file of unknown origin)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(("Weights only load failed", "Check the documentation",
                                                             "Please file an issue"))]
    line = useful[0] if useful else type(exc).__name__
    return line if len(line) <= 200 else line[:197] + "..."


def listed(keys: list[str]) -> str:
    """The first few of ``keys``, and how many there are in all."""
    shown = ", ".join(keys[:LISTED_KEYS])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > LISTED_KEYS else "")


def key_mismatches(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> tuple[list[str], list[str]]:
    """(the BatchNorm ``num_batches_tracked`` counters ``state`` lacks, which old files may; the
    problems in words: missing, unexpected and mis-shaped keys against ``expected``)."""
    counters = [k for k in expected if k not in state and k.endswith("num_batches_tracked")]
    missing = [k for k in expected if k not in state and k not in counters]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} (file {list(state[k].shape)}, model {list(expected[k].shape)})"
              for k in state if k in expected and state[k].shape != expected[k].shape]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing keys: {listed(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys: {listed(unexpected)}")
    if shapes:
        parts.append(f"{len(shapes)} shape mismatches: {listed(shapes)}")
    return counters, parts


def load_weights(model: nn.Module, state: dict[str, torch.Tensor], path: str | Path, what: str) -> None:
    """Load ``state`` into ``model`` strictly; CheckpointError listing missing, unexpected and mis-shaped keys."""
    expected = model.state_dict()
    counters, parts = key_mismatches(state, expected)
    if parts:
        raise CheckpointError(f"checkpoint weights {str(path)!r} do not fit {what}: {'; '.join(parts)}; check arch and num_classes")
    state = dict(state)
    for key in counters:  # old checkpoints lack them; inference never reads them
        state[key] = expected[key]
    model.load_state_dict(state, strict=True)


# -- the detector ---------------------------------------------------------------------------


def _check_weights(name: str, weights: Any) -> str:
    if weights is None or not isinstance(weights, (str, Path)) or not str(weights):
        raise ValueError("the checkpoint detector needs weights: the path of a local weights file (.pth, .pt, .safetensors)")
    return str(weights)


class CheckpointDetector(DetectorBase):
    """A pretrained classifier from a local weights file; needs no fit. See the module docstring.

    Parameters:
        weights: path to the weights file (.pth/.pt/.bin via torch.load weights_only, or .safetensors).
        arch: "resnet50" (default), "resnet18", "resnet34", "resnet101", "resnet152" (built in),
            another torchvision classifier name, or "timm:<name>".
        num_classes: outputs of the last layer: 1 = a single fake logit (sigmoid), >= 2 = softmax.
        fake_index: with ``num_classes >= 2``, the class whose probability is the score.
        preset: "wang2020" (no resize, ImageNet normalisation) or "imagenet" (resize 256, crop 224).
        crop: centre crop side in pixels, overriding the preset's (e.g. 224 with "wang2020").
        device: "cpu", "cuda" or "cuda:N".
        batch_size: images per forward pass.
    """

    name = "checkpoint"
    score_range = (0.0, 1.0)  # a probability of "fake"; the runner checks it
    version = "0.1.0"
    requires_fit = False
    #: "centre_crop:N" with a crop and no resize; with the imagenet preset it resizes inside, so
    #: the runner hands it images at their own size (batched by size).
    input_policy = "any"
    #: What the detector reads: pixels only (never records or ground truth).
    inputs = ("pixels",)
    checks = {
        "weights": _check_weights,
        "arch": require(lambda arch: isinstance(arch, str) and bool(arch),
                        "{name} must be a model name such as 'resnet50', got {value!r}"),
        "num_classes": integer(),
        "preset": choice(PRESETS),
        "crop": optional(integer()),
        "device": device(),
    }
    weights: str
    arch: str
    num_classes: int
    preset: str
    crop: int | None

    def __init__(
        self,
        weights: str | None = None,
        arch: str = "resnet50",
        num_classes: int = 1,
        fake_index: int = 1,
        preset: str = "wang2020",
        crop: int | None = None,
        device: str = "cpu",
        batch_size: int = 32,
    ):
        super().__init__(weights=weights, arch=arch, num_classes=num_classes, preset=preset, crop=crop, device=device,
                         batch_size=batch_size)
        side = self.crop if self.crop is not None else PRESETS[self.preset].crop
        if PRESETS[self.preset].resize is None and side is not None:
            self.input_policy = f"centre_crop:{side}"
        self.fake_index = 0
        if self.num_classes >= 2:
            classes = self.num_classes
            in_range = require(lambda index: index < classes,
                               f"{{name}} must be in 0..{classes - 1} for num_classes={classes}, got {{value}}")
            self.fake_index = all_of(integer(0), in_range)("fake_index", fake_index)
        model = build_model(arch, self.num_classes)  # an unknown arch is reported before the file is read
        state = read_state_dict(self.weights)
        load_weights(model, state, self.weights, f"arch {arch!r} with num_classes={self.num_classes}")
        self.model = model.to(self.device).eval()

    def fit(self, images: np.ndarray, labels: np.ndarray) -> None:
        """Nothing to learn: the weights are fixed (``requires_fit`` is False)."""

    def logits(self, images: np.ndarray) -> torch.Tensor:
        """float64 ``[N, num_classes]`` raw outputs, on the CPU."""
        check_images(images)
        preset = PRESETS[self.preset]
        out = []
        self.model.eval()
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                x = preprocess(images[start : start + self.batch_size], preset, self.crop, self.device)
                y = self.model(x)
                if isinstance(y, (tuple, list)):  # e.g. auxiliary heads: the main output comes first
                    y = y[0]
                y = y.reshape(len(x), -1)
                if y.shape[1] != self.num_classes:
                    raise CheckpointError(f"{self.arch} gave {y.shape[1]} outputs per image, expected num_classes={self.num_classes}")
                out.append(y.double().cpu())
        return torch.cat(out) if out else torch.zeros(0, self.num_classes, dtype=torch.float64)

    def score(self, images: np.ndarray) -> np.ndarray:
        logits = self.logits(images)
        if len(logits) == 0:
            return np.zeros(0)
        if self.num_classes == 1:
            probs = torch.sigmoid(logits[:, 0])
        else:
            probs = torch.softmax(logits, dim=1)[:, self.fake_index]
        return np.clip(probs.numpy(), 0.0, 1.0).astype(np.float64)
