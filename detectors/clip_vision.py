"""CLIP's ViT image encoder (Radford et al. 2021), built from OpenAI's weight files without their code.

Files read (:func:`read_clip_visual`):

- OpenAI's released ``ViT-L-14.pt`` (and the other ViT ``.pt`` files): a TorchScript archive,
  a zip holding ``<name>/data.pkl`` (the module tree, pickled), ``<name>/data/<key>`` (the raw
  tensor storages) and ``<name>/code/`` (the TorchScript code). Its code is never run and
  ``torch.jit.load`` is never called: ``data.pkl`` is read by a restricted unpickler that
  accepts only tensor rebuilding, storage types, ``OrderedDict`` and the ``__torch__.*`` module
  classes, and turns each module into a plain attribute record; a tensor is made from its
  storage's bytes with ``torch.frombuffer``. Any other global in the pickle is refused.
- a state dict in OpenAI's key layout (``visual.conv1.weight``, ...): ``.pth``/``.pt`` through
  ``torch.load(weights_only=True)``, or ``.safetensors``.
- a transformers-format CLIP folder (what ``CLIPModel.save_pretrained`` writes: ``config.json``
  and ``model.safetensors`` or ``pytorch_model.bin``): its ``vision_model.*`` and
  ``visual_projection`` tensors are renamed to OpenAI's layout (q, k and v projections joined
  into ``in_proj``; ``proj`` is ``visual_projection.weight`` transposed); heads come from the
  config, whose activation must be quick_gelu (OpenAI's CLIPs) and LayerNorm epsilon 1e-5.

The network (:class:`ClipVision`) has OpenAI's module names (``conv1``, ``class_embedding``,
``positional_embedding``, ``ln_pre``, ``transformer.resblocks.N.{ln_1,attn,ln_2,mlp}``,
``ln_post``, ``proj``), so the file's ``visual.*`` keys load strictly. Sizes come from the
shapes: width (``conv1``), patch size, input resolution (patch x grid of the positional
embedding), blocks, output width (``proj``); heads are width / 64, OpenAI's rule (no key says
it). The MLP uses quick-GELU ``x * sigmoid(1.702 x)``, not GELU.
"""

from __future__ import annotations

import math
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..harness.contracts.storages import STORAGE_DTYPES
from ..harness.contracts.detector import check_device, integer
from .published import PublishedDetector, WeightsError, check_weights_path, listed, load_strict, read_weights

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
HEAD_WIDTH = 64


# -- reading OpenAI's TorchScript archives without running them -----------------------------


class ScriptModuleRecord:
    """A TorchScript module from ``data.pkl``: only its attributes, kept as a dict."""

    def __init__(self, *args: Any) -> None:
        self.attributes: dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        self.attributes = dict(state) if isinstance(state, dict) else {}


class StorageType:
    def __init__(self, dtype: torch.dtype):
        self.dtype = dtype


def rebuild_tensor(storage: torch.Tensor, offset: int, size, stride, *unused: Any) -> torch.Tensor:
    """A tensor over a flat storage (what ``torch._utils._rebuild_tensor_v2`` makes), copied."""
    if len(size) == 0:
        return storage[offset].clone()
    return torch.as_strided(storage, tuple(size), tuple(stride), offset).clone()


class ArchiveUnpickler(pickle.Unpickler):
    """Unpickles a TorchScript ``data.pkl`` accepting nothing but tensors and module records."""

    def __init__(self, file, archive: zipfile.ZipFile, prefix: str, path: str):
        super().__init__(file)
        self.archive, self.prefix, self.path = archive, prefix, path

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return rebuild_tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return StorageType(STORAGE_DTYPES[name])
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "__torch__" or module.startswith("__torch__."):
            return ScriptModuleRecord
        raise WeightsError(f"CLIP weights {self.path!r}: refused: the archive's data.pkl names {module}.{name}, "
                           "not a tensor or a module (nothing in it was run)")

    def persistent_load(self, pid: Any) -> torch.Tensor:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], StorageType)):
            raise WeightsError(f"CLIP weights {self.path!r}: unknown storage reference {pid!r:.80} in data.pkl")
        dtype, key, numel = pid[1].dtype, str(pid[2]), int(pid[4])
        try:
            raw = self.archive.read(f"{self.prefix}data/{key}")
        except KeyError:
            raise WeightsError(f"CLIP weights {self.path!r}: storage {key} is missing from the archive (truncated?)") from None
        element = torch.empty(0, dtype=dtype).element_size()
        if len(raw) < numel * element:
            raise WeightsError(f"CLIP weights {self.path!r}: storage {key} holds {len(raw)} bytes, {numel * element} expected")
        if numel == 0:
            return torch.empty(0, dtype=dtype)
        return torch.frombuffer(bytearray(raw[: numel * element]), dtype=dtype)


def is_torchscript_archive(path: Path) -> bool:
    """True for a zip with a ``code/`` folder and ``data.pkl`` (what ``torch.jit.save`` writes)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    return any("/code/" in name for name in names) and any(name.endswith("/data.pkl") for name in names)


def flatten_records(record: ScriptModuleRecord, prefix: str = "") -> dict[str, torch.Tensor]:
    """Every tensor attribute under ``record``, by dotted name (as ``state_dict`` names them)."""
    out: dict[str, torch.Tensor] = {}
    for name, value in record.attributes.items():
        if isinstance(value, torch.Tensor):
            out[prefix + name] = value
        elif isinstance(value, ScriptModuleRecord):
            out.update(flatten_records(value, f"{prefix}{name}."))
    return out


def read_torchscript_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a TorchScript archive by dotted name, without running any of its code."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [name for name in archive.namelist() if name.endswith("/data.pkl") and name.count("/") == 1]
            if len(pickles) != 1:
                raise WeightsError(f"CLIP weights {str(path)!r}: not a TorchScript archive (no single <name>/data.pkl)")
            prefix = pickles[0][: -len("data.pkl")]
            byteorder = archive.read(prefix + "byteorder").decode().strip() if prefix + "byteorder" in archive.namelist() else "little"
            if byteorder != "little":
                raise WeightsError(f"CLIP weights {str(path)!r}: {byteorder}-endian tensors are not supported")
            with archive.open(pickles[0]) as file:
                root = ArchiveUnpickler(file, archive, prefix, str(path)).load()
    except WeightsError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, pickle.UnpicklingError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"CLIP weights {str(path)!r}: unreadable TorchScript archive ({type(exc).__name__}: {exc})") from None
    if not isinstance(root, ScriptModuleRecord):
        raise WeightsError(f"CLIP weights {str(path)!r}: the archive holds a {type(root).__name__}, not a module")
    return flatten_records(root)


def read_clip_visual(path: str | Path, detector: str) -> dict[str, torch.Tensor]:
    """The image encoder's weights (``visual.*`` keys, prefix removed) in an OpenAI CLIP file."""
    path = Path(path)
    if path.is_dir():
        return read_transformers_visual(path, detector)[0]
    if not path.is_file():
        raise WeightsError(f"{detector} CLIP weights {str(path)!r}: no such file or folder")
    if is_torchscript_archive(path):
        state = read_torchscript_tensors(path)
    else:
        state = read_weights(path, detector)
    visual = {key[len("visual."):]: value for key, value in state.items() if key.startswith("visual.")}
    if not visual:
        raise WeightsError(f"{detector} CLIP weights {str(path)!r}: no visual.* keys ({listed(sorted(state))}); "
                           "expected OpenAI's CLIP file, e.g. ViT-L-14.pt")
    if "proj" not in visual or "conv1.weight" not in visual:
        raise WeightsError(f"{detector} CLIP weights {str(path)!r}: not a ViT image encoder (no visual.proj or visual.conv1.weight)")
    return visual


def read_transformers_visual(folder: Path, detector: str) -> tuple[dict[str, torch.Tensor], int]:
    """OpenAI-layout image encoder weights and the head count of a transformers CLIP folder."""
    import json

    where = f"{detector} CLIP folder {str(folder)!r}"
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{where}: no readable config.json ({type(exc).__name__}: {exc})") from None
    vision = config.get("vision_config", config)
    activation, eps = vision.get("hidden_act", "quick_gelu"), float(vision.get("layer_norm_eps", 1e-5))
    if activation != "quick_gelu" or eps != 1e-5:
        raise WeightsError(f"{where}: hidden_act {activation!r} and layer_norm_eps {eps} in config.json; "
                           "only OpenAI's CLIPs (quick_gelu, 1e-5) are supported")
    heads = vision.get("num_attention_heads")
    if not isinstance(heads, int) or heads < 1:
        raise WeightsError(f"{where}: config.json has no num_attention_heads for the image encoder")
    files = [folder / name for name in ("model.safetensors", "pytorch_model.bin") if (folder / name).is_file()]
    if not files:
        raise WeightsError(f"{where}: neither model.safetensors nor pytorch_model.bin (sharded folders are not supported)")
    state = read_weights(files[0], detector)
    return transformers_to_openai(state, str(files[0]), detector), heads


#: transformers' names inside an encoder layer -> OpenAI's (q, k, v are joined separately).
LAYER_NAMES = {"layer_norm1": "ln_1", "layer_norm2": "ln_2", "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj",
               "self_attn.out_proj": "attn.out_proj"}
TOP_NAMES = {"embeddings.class_embedding": "class_embedding", "embeddings.patch_embedding.weight": "conv1.weight",
             "embeddings.position_embedding.weight": "positional_embedding", "pre_layrnorm.weight": "ln_pre.weight",
             "pre_layrnorm.bias": "ln_pre.bias", "post_layernorm.weight": "ln_post.weight", "post_layernorm.bias": "ln_post.bias"}


def transformers_to_openai(state: dict[str, torch.Tensor], path: str, detector: str) -> dict[str, torch.Tensor]:
    """``vision_model.*`` and ``visual_projection.weight`` renamed to OpenAI's visual keys; the text tower is left out;
    a vision key with no OpenAI name is kept under its own name, so the strict load reports it."""
    if "visual_projection.weight" not in state:
        raise WeightsError(f"{detector} CLIP weights {path!r}: no visual_projection.weight, so not a CLIP model "
                           "with an image projection (CLIPModel or CLIPVisionModelWithProjection)")
    out = {"proj": state["visual_projection.weight"].t().contiguous()}
    joined: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        if not key.startswith("vision_model.") or key == "vision_model.embeddings.position_ids":
            continue
        name = key[len("vision_model."):]
        if name in TOP_NAMES:
            out[TOP_NAMES[name]] = value
            continue
        parts = name.split(".")
        if parts[:2] == ["encoder", "layers"] and len(parts) >= 4:
            block, rest = parts[2], ".".join(parts[3:])
            if rest.startswith("self_attn.") and rest.split(".")[1] in ("q_proj", "k_proj", "v_proj"):
                joined.setdefault(f"{block}.{rest.split('.')[-1]}", {})[rest.split(".")[1]] = value
                continue
            module, _, leaf = rest.rpartition(".")
            if module in LAYER_NAMES:
                out[f"transformer.resblocks.{block}.{LAYER_NAMES[module]}.{leaf}"] = value
                continue
        out[name] = value  # unknown: reported by the strict load
    for key, projections in joined.items():
        block, leaf = key.split(".")
        if set(projections) != {"q_proj", "k_proj", "v_proj"}:
            raise WeightsError(f"{detector} CLIP weights {path!r}: block {block} lacks some of its q/k/v_proj.{leaf}")
        target = "in_proj_weight" if leaf == "weight" else "in_proj_bias"
        q_k_v = [projections["q_proj"], projections["k_proj"], projections["v_proj"]]
        out[f"transformer.resblocks.{block}.attn.{target}"] = torch.cat(q_k_v)
    return out


def read_clip_encoder(path: str | Path, detector: str) -> ClipVision:
    """The image encoder in ``path`` (an OpenAI file or a transformers folder), loaded strictly."""
    path = Path(path)
    if path.is_dir():
        visual, heads = read_transformers_visual(path, detector)
        return ClipVision.from_state(visual, str(path), detector, heads)
    return ClipVision.from_state(read_clip_visual(path, detector), str(path), detector)


# -- the network ----------------------------------------------------------------------------


class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class SelfAttention(nn.Module):
    """Multi-head self-attention with ``nn.MultiheadAttention``'s parameter names, batch first."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * width))
        self.out_proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        split = [t.reshape(batch, length, self.heads, width // self.heads).transpose(1, 2) for t in (q, k, v)]
        y = F.scaled_dot_product_attention(*split)
        return self.out_proj(y.transpose(1, 2).reshape(batch, length, width))


class MLP(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.c_fc = nn.Linear(width, 4 * width)
        self.gelu = QuickGELU()
        self.c_proj = nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(self.gelu(self.c_fc(x)))


class ResidualBlock(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = SelfAttention(width, heads)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = MLP(width)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The block's output, and its ``ln_2`` output (the MLP's input) for every token."""
        x = x + self.attn(self.ln_1(x))
        normed = self.ln_2(x)
        return x + self.mlp(normed), normed


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int):
        super().__init__()
        self.resblocks = nn.Sequential(*[ResidualBlock(width, heads) for _ in range(layers)])


class ClipVision(nn.Module):
    """CLIP's ViT image encoder; sizes from a ``visual.*`` state dict via :meth:`from_state`."""

    def __init__(self, width: int, layers: int, patch: int, grid: int, output_dim: int, heads: int | None = None):
        super().__init__()
        if heads is None and width % HEAD_WIDTH:
            raise ValueError(f"CLIP width {width} is not a multiple of {HEAD_WIDTH} (heads are width / {HEAD_WIDTH})")
        heads = heads or width // HEAD_WIDTH
        if width % heads:
            raise ValueError(f"CLIP width {width} is not a multiple of its {heads} heads")
        self.resolution = patch * grid
        self.conv1 = nn.Conv2d(3, width, patch, stride=patch, bias=False)
        self.class_embedding = nn.Parameter(torch.zeros(width))
        self.positional_embedding = nn.Parameter(torch.zeros(grid * grid + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, layers, heads)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(torch.zeros(width, output_dim))

    @classmethod
    def from_state(cls, visual: dict[str, torch.Tensor], path: str, detector: str, heads: int | None = None) -> ClipVision:
        """The encoder shaped by ``visual`` (``visual.`` prefix removed), with those weights loaded strictly;
        ``heads`` defaults to width / 64, OpenAI's rule."""
        conv = visual["conv1.weight"]
        width, patch = int(conv.shape[0]), int(conv.shape[-1])
        positions = int(visual["positional_embedding"].shape[0]) if "positional_embedding" in visual else 1
        grid = math.isqrt(positions - 1)
        if grid * grid + 1 != positions:
            raise WeightsError(f"{detector} CLIP weights {path!r}: {positions} positions is not a square grid plus the class token")
        layers = len({key.split(".")[2] for key in visual if key.startswith("transformer.resblocks.")})
        if (heads and width % heads) or (not heads and width % HEAD_WIDTH):
            raise WeightsError(f"{detector} CLIP weights {path!r}: width {width} is not a multiple of {heads or HEAD_WIDTH}")
        model = cls(width, layers, patch, grid, int(visual["proj"].shape[1]), heads)
        load_strict(model, visual, path, f"{detector} CLIP")
        return model.eval()

    @property
    def output_dim(self) -> int:
        return int(self.proj.shape[1])

    @property
    def width(self) -> int:
        return int(self.proj.shape[0])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The image features ``[N, output_dim]`` and each block's ``ln_2`` class token ``[N, layers, width]``."""
        x = self.conv1(x).flatten(2).transpose(1, 2)  # [N, grid*grid, width]
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = self.ln_pre(torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype))
        tokens = []
        for block in self.transformer.resblocks:
            x, normed = block(x)
            tokens.append(normed[:, 0])
        return self.ln_post(x[:, 0]) @ self.proj, torch.stack(tokens, dim=1)


def clip_preprocess(images: np.ndarray, side: int, device: str | torch.device = "cpu") -> torch.Tensor:
    """torchvision's ``CenterCrop(side)``, ``ToTensor``, ``Normalize(CLIP mean/std)`` on uint8 ``[N, H, W, 3]``.

    As ``CenterCrop``, an image smaller than ``side`` is first padded with black, the extra pixel of an
    odd difference going right/bottom; the crop's corner is ``round((H - side) / 2)`` (Python's rounding).
    """
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2).float().div_(255.0)
    height, width = x.shape[2:]
    if height < side or width < side:
        pad_w, pad_h = max(side - width, 0), max(side - height, 0)
        x = F.pad(x, (pad_w // 2, (pad_w + 1) // 2, pad_h // 2, (pad_h + 1) // 2), value=0.0)
        height, width = x.shape[2:]
    top, left = round((height - side) / 2.0), round((width - side) / 2.0)  # Python's round, as torchvision
    x = x[:, :, top : top + side, left : left + side]
    mean = torch.tensor(CLIP_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=x.device).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous()


class ClipDetector(PublishedDetector):
    """A published detector on a CLIP image encoder (UnivFD, RINE): its head file and the user's
    CLIP weights, CLIP's centre crop and normalisation."""

    weights: str
    clip: str
    resolution: int
    #: torchvision's CenterCrop to the encoder's resolution (224 for ViT-L/14; read from the weights).
    input_policy = "crop_or_pad:224"

    def read_clip(self, weights: str | None, clip: str | None, device: str, batch_size: int) -> ClipVision:
        """Check and keep the common parameters, and read the CLIP image encoder from ``clip``."""
        self.weights = check_weights_path(self.name, "weights", weights)
        self.clip = check_weights_path(self.name, "clip", clip)
        self.device = check_device(device)
        self.batch_size = integer()("batch_size", batch_size)
        encoder = read_clip_encoder(self.clip, self.name)
        self.resolution = encoder.resolution
        self.input_policy = f"crop_or_pad:{self.resolution}"
        return encoder

    def prepare(self, images: np.ndarray) -> torch.Tensor:
        return clip_preprocess(images, self.resolution, self.device)
