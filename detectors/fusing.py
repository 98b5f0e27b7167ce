"""Fusing: global and local features of a ResNet-50 fused by self-attention (Ju et al., ICIP 2022)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..harness.contracts.detector import check_device, integer
from .checkpoint import PRESETS, Bottleneck, ResNet, preprocess
from .cnndetection import RESNET50_BLOCKS
from .published import (
    PublishedDetector,
    block_counts,
    check_weights_path,
    load_strict,
    read_weights,
)

#: Side of the global crop and of every local window the ResNet reads.
SIDE = 224
#: The local windows: (score window on the feature map, windows picked, their side in pixels).
WINDOWS = ((3, 3, 224), (2, 3, 112))
EMBEDDING = 128


class AttentionLayer(nn.Module):
    """Multi-head self-attention, add and LayerNorm, then a residual two-layer MLP and LayerNorm."""

    def __init__(self, width: int = EMBEDDING, heads: int = 4):
        super().__init__()
        self.mha = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln1 = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)
        self.ln2 = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attended, _ = self.mha(x, x, x, need_weights=False)
        x = self.ln1(x + attended)
        return self.ln2(x + self.fc2(torch.relu(self.fc1(x))))


def centre_crop(x: torch.Tensor, side: int) -> torch.Tensor:
    """torchvision's CenterCrop of ``[N, C, H, W]`` (offsets rounded half to even, as ``round``)."""
    height, width = x.shape[2:]
    top, left = int(round((height - side) / 2.0)), int(round((width - side) / 2.0))
    return x[:, :, top : top + side, left : left + side]


def windows(feature_map: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """int64 ``[N, 6, 4]`` (top, left, bottom, right) of the local windows on the full image, from
    the ResNet's last feature map of the centre crop: for each kind in :data:`WINDOWS`, the
    feature map summed over channels and averaged over the score window; the best position is
    taken, its 3x3 neighbourhood of equal maxima cleared, three times. A position maps to the
    centre of the image's central square, scaled; windows are shifted inside the image (and cut
    where the image is smaller than the window)."""
    n, _, map_height, map_width = feature_map.shape
    size = torch.tensor([[height, width]] * n, device=feature_map.device)
    short = size.min(dim=1, keepdim=True)[0]
    base = (size - short) // 2
    found = []
    with torch.no_grad():
        for window, count, side in WINDOWS:
            score = nn.functional.avg_pool2d(feature_map, window, stride=1).sum(dim=1, keepdim=True)
            score_height, score_width = score.shape[2:]
            for _ in range(count):
                best, index = score.reshape(n, -1).max(dim=1)
                row, col = index // score_width, index % score_width
                neighbourhood = nn.functional.max_pool2d(score, 3, stride=1, padding=1)
                score = score * (neighbourhood != best.view(-1, 1, 1, 1)).float()
                rate = torch.stack(((2 * row + map_height - score_height + 1) / (2 * map_height),
                                    (2 * col + map_width - score_width + 1) / (2 * map_width)), dim=1)
                centre = (base + short * rate).long()
                top_left = centre - side // 2
                bottom_right = centre + side // 2 + side % 2
                below = top_left.clamp(max=0)
                top_left, bottom_right = top_left - below, bottom_right - below
                over = (bottom_right - size).clamp(min=0)
                top_left, bottom_right = (top_left - over).clamp(min=0), bottom_right - over
                found.append(torch.cat((top_left, bottom_right), dim=1))
    return torch.stack(found, dim=1)


def cut_windows(images: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """``[N * 6, C, SIDE, SIDE]``: each box of each image, resized to ``SIDE`` (bilinear,
    ``align_corners=True``) unless it already has that size."""
    out = []
    for image, image_boxes in zip(images, boxes):
        for top, left, bottom, right in image_boxes.tolist():
            patch = image[:, top:bottom, left:right]
            if patch.shape[1:] != (SIDE, SIDE):
                patch = nn.functional.interpolate(patch[None], size=(SIDE, SIDE), mode="bilinear", align_corners=True)[0]
            out.append(patch)
    return torch.stack(out)


class FusingNet(nn.Module):
    """A ResNet-50 (``resnet``, torchvision layout; its ``fc`` is kept in the file but unused) reads
    the 224 px centre crop and six local windows chosen on its feature map; ``fc1`` + ReLU brings
    each 2048-d embedding to 128; three attention layers over (windows, crop); ``fc`` on the
    crop's token gives the logit. Input: the whole normalised image."""

    def __init__(self, depths: tuple[int, int, int, int] = RESNET50_BLOCKS, classes: int = 1000):
        super().__init__()
        self.resnet = ResNet(Bottleneck, depths, num_classes=classes)
        self.mha_list = nn.Sequential(*(AttentionLayer() for _ in range(3)))
        self.fc1 = nn.Linear(self.resnet.fc.in_features, EMBEDDING)
        self.fc = nn.Linear(EMBEDDING, 1)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(last feature map, its global average) of the ResNet."""
        r = self.resnet
        x = r.maxpool(r.relu(r.bn1(r.conv1(x))))
        fm = r.layer4(r.layer3(r.layer2(r.layer1(x))))
        return fm, torch.flatten(r.avgpool(fm), 1)

    def embed(self, embedding: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc1(embedding))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        n, _, height, width = images.shape
        fm, whole = self.features(centre_crop(images, SIDE))
        boxes = windows(fm.float(), height, width)
        _, local = self.features(cut_windows(images, boxes))
        tokens = torch.cat((self.embed(local).reshape(n, -1, EMBEDDING), self.embed(whole)[:, None]), dim=1)
        return self.fc(self.mha_list(tokens)[:, -1])


class FusingDetector(PublishedDetector):
    """Fusing (Ju, Jia, Ke, Xue, Nagano and Lyu, "Fusing Global and Local Features for Generalized
    AI-Synthesized Image Detection", ICIP 2022; "PSM" in its code); needs no fit.

    Card:
        Paper: arXiv 2203.13964; reference code github.com/littlejuyan/FusingGlobalandLocal
            (as packaged by SIDBench, models/PSM.py, and AIGCDetectBenchmark, Patch5Model.py).
        Network: ResNet-50 on the 224 px centre crop; on its last feature map, three windows
            of 224 px (3x3 score window) and three of 112 px (2x2), each best position
            cleared with its neighbourhood before the next; the six windows are cut from the
            whole image (bilinear to 224 px with corners aligned where needed) and read by the
            same ResNet; 2048 -> 128 (``fc1``, ReLU); three self-attention layers (4 heads);
            ``fc`` on the centre crop's token to one logit. Blocks per stage read from the file.
        Input policy: native size, no resize; images must be at least 224 px on each side (the
            centre crop), ImageNet mean/std. Windows are placed on the image's central square.
        Weights: ``PSM.pth``, ``{"model": state_dict}`` (a bare state dict is accepted too),
            loaded strictly (``torch.load(weights_only=True)``, or ``.safetensors``); the
            ResNet's unused ImageNet ``fc`` is part of the file.
        Score: sigmoid of the logit, the probability that the image is generated.

    Parameters:
        weights: path to the Fusing weight file.
        device: "cpu", "cuda" or "cuda:N".
        batch_size: images per forward pass.
        precision: the network's arithmetic, "float32" (default), "float16" or "bfloat16"
            (half precision is for CUDA; on the CPU it is refused when this torch cannot run it).
    """

    name = "fusing"
    version = "0.1.0"

    def __init__(self, weights: str | None = None, device: str = "cpu", batch_size: int = 16, precision: str = "float32"):
        self.weights = check_weights_path("fusing", "weights", weights)
        self.device = check_device(device)
        self.batch_size = integer()("batch_size", batch_size)
        state = read_weights(self.weights, "fusing")
        depths = block_counts({k.removeprefix("resnet."): v for k, v in state.items()},
                              ("layer1", "layer2", "layer3", "layer4"), RESNET50_BLOCKS)
        fc = state.get("resnet.fc.weight")
        classes = int(fc.shape[0]) if fc is not None and fc.ndim == 2 else 1000
        model = FusingNet(depths, classes)  # type: ignore[arg-type]
        load_strict(model, state, self.weights, "fusing")
        self.model = self.place(model, precision)

    def prepare(self, images: np.ndarray) -> torch.Tensor:
        """The whole image, ImageNet-normalised; the crop and the windows are cut by the network."""
        height, width = images.shape[1:3]
        if min(height, width) < SIDE:
            raise ValueError(f"fusing: images of {height}x{width} are smaller than its {SIDE} px centre crop; "
                             f"use images of at least {SIDE} px a side")
        return preprocess(images, PRESETS["wang2020"], None, self.device)
