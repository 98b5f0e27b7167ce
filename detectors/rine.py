"""RINE: trainable projections of CLIP's intermediate encoder blocks (Koutlis and Papadopoulos, ECCV 2024)."""

from __future__ import annotations

import torch
from torch import nn

from .clip_vision import ClipDetector, ClipVision

from .published import (
    WeightsError,
    load_strict,
    looks_like,
    read_weights,
)


def projection(first: int, width: int, layers: int) -> nn.Sequential:
    """Dropout, then ``layers`` x (Linear, ReLU, Dropout): the reference's layout, so Linear ``i`` is at index 1 + 3i."""
    modules: list[nn.Module] = [nn.Dropout()]
    for index in range(layers):
        modules += [nn.Linear(first if index == 0 else width, width), nn.ReLU(), nn.Dropout()]
    return nn.Sequential(*modules)


class RINEHead(nn.Module):
    """What RINE trains on top of the frozen encoder: ``proj1`` on each block's class token,
    a softmax over blocks of ``alpha`` (per feature) to weigh them, ``proj2``, and a three-layer ``head``."""

    def __init__(self, blocks: int, width: int, layers: int, features: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(1, blocks, features))
        self.proj1 = projection(width, features, layers)
        self.proj2 = projection(features, features, layers)
        self.head = nn.Sequential(nn.Linear(features, features), nn.ReLU(), nn.Dropout(),
                                  nn.Linear(features, features), nn.ReLU(), nn.Dropout(), nn.Linear(features, 1))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        g = self.proj1(tokens)  # [N, blocks, features]
        z = (torch.softmax(self.alpha, dim=1) * g).sum(dim=1)
        return self.head(self.proj2(z))


def head_sizes(state: dict[str, torch.Tensor], path: str) -> tuple[int, int, int, int]:
    """(blocks, encoder width, projection layers, features) read from a RINE head file's shapes."""
    alpha, first = state.get("alpha"), state.get("proj1.1.weight")
    if alpha is None or first is None or alpha.ndim != 3 or first.ndim != 2:
        owner = looks_like(state)
        hint = f"; the file looks like {owner}" if owner else ""
        raise WeightsError(f"rine weights {path!r}: no alpha [1, blocks, features] and proj1.1.weight, so not a RINE "
                           f"head file (model_*_trainable.pth){hint}")
    layers = len([key for key in state if key.startswith("proj1.") and key.endswith(".weight")])
    return int(alpha.shape[1]), int(first.shape[1]), layers, int(alpha.shape[2])


class RINENet(nn.Module):
    def __init__(self, clip: ClipVision, head: RINEHead):
        super().__init__()
        self.clip, self.head = clip, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, tokens = self.clip(x)
        return self.head(tokens.to(self.head.alpha.dtype))


class RINEDetector(ClipDetector):
    """RINE (Koutlis and Papadopoulos, "Leveraging Representations from Intermediate Encoder-blocks
    for Synthetic Image Detection", ECCV 2024); needs no fit.

    Card:
        Paper: arXiv 2402.19091; reference code github.com/mever-team/rine.
        Network: OpenAI CLIP's ViT-L/14 image encoder (frozen); from each of its blocks the
            class token of the block's second LayerNorm output (``ln_2``, the MLP's input, where
            the reference hooks), through ``proj1``, weighed over blocks by a softmax of
            ``alpha``, summed, through ``proj2`` and a three-layer head to one logit. The number
            of blocks, projection layers and widths are read from the file's shapes (the
            published files differ: 1class/4class/ldm use 1024 features, 2class 128).
        Input policy: ``crop_or_pad:224``: centre crop to the encoder's resolution (224 px for ViT-L/14), no resize,
            padded with black when smaller (torchvision's CenterCrop), CLIP mean/std; float32 by
            default. (The reference runs CLIP in half precision on CUDA and in float32 on the
            CPU: ``precision="float16"`` with ``device="cuda"`` is its CUDA path.)
        Weights: ``model_1class_trainable.pth``, ``model_2class_trainable.pth``,
            ``model_4class_trainable.pth`` or ``model_ldm_trainable.pth`` (``alpha``, ``proj1.*``,
            ``proj2.*``, ``head.*``; the published files hold CUDA tensors, read onto the CPU)
            for ``weights``; OpenAI's ``ViT-L-14.pt`` (or a transformers CLIP folder) for ``clip``.
            Both loaded strictly;
            nothing is downloaded.
        Score: sigmoid of the logit, the probability that the image is generated.

    Parameters:
        weights: path to RINE's trained head, e.g. model_4class_trainable.pth.
        clip: path to OpenAI's CLIP ViT-L/14 weights, ViT-L-14.pt, or a transformers CLIP folder
            (e.g. a saved openai/clip-vit-large-patch14).
        device: "cpu", "cuda" or "cuda:N".
        batch_size: images per forward pass.
        precision: CLIP's arithmetic, "float32" (default), "float16" (the reference's CUDA path)
            or "bfloat16"; the head stays float32. On the CPU it is refused when this torch
            cannot run it.
    """

    name = "rine"
    version = "0.1.0"

    def __init__(self, weights: str | None = None, clip: str | None = None, device: str = "cpu", batch_size: int = 16,
                 precision: str = "float32"):
        encoder = self.read_clip(weights, clip, device, batch_size)
        state = read_weights(self.weights, "rine")
        blocks, width, layers, features = head_sizes(state, self.weights)
        layer_count = len(encoder.transformer.resblocks)
        if (blocks, width) != (layer_count, encoder.width):
            raise WeightsError(f"rine weights {self.weights!r} read {blocks} blocks of width {width}, but CLIP weights "
                               f"{self.clip!r} have {layer_count} of width {encoder.width}; use the CLIP model they "
                               "were trained on (ViT-L/14: 24 blocks of width 1024)")
        head = RINEHead(blocks, width, layers, features)
        load_strict(head, state, self.weights, "rine")
        self.model = self.place(RINENet(encoder, head), precision)
        self.model.head.float()  # the reference runs only CLIP in half precision, its head in float32
