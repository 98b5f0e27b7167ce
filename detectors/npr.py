"""NPR: a small ResNet on neighbouring-pixel residuals (Tan et al., CVPR 2024)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .checkpoint import PRESETS, Bottleneck, add_stages, preprocess
from ..harness.contracts.detector import check_device, integer
from .cnn import npr_residual

from .published import (
    PublishedDetector,
    block_counts,
    check_weights_path,
    load_strict,
    read_weights,
)

#: Blocks in layer1 and layer2 of the published network (ResNet-50's first two stages).
PUBLISHED_BLOCKS = (3, 4)


class NPRNet(nn.Module):
    """The cut-down ResNet-50 of NPR: a 3x3 stride-2 stem, max pool, ResNet-50's layer1 and
    layer2 (bottlenecks, 64 and 128 wide), global average pool and ``fc1`` to one logit, fed
    with ``(x - up(down(x))) * 2/3``. Module names follow the published ``NPR.pth``."""

    def __init__(self, blocks: tuple[int, int] = PUBLISHED_BLOCKS, outputs: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        channels = add_stages(self, Bottleneck, blocks, (64, 128))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Linear(channels, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(npr_residual(x) * (2.0 / 3.0))
        x = self.maxpool(self.relu(self.bn1(x)))
        x = self.layer2(self.layer1(x))
        return self.fc1(torch.flatten(self.avgpool(x), 1))


def even_crop(x: torch.Tensor) -> torch.Tensor:
    """``x`` without its last row and/or column where height or width is odd."""
    height, width = x.shape[-2:]
    return x[..., : height - height % 2, : width - width % 2]


class NPRDetector(PublishedDetector):
    """NPR (Tan et al., "Rethinking the Up-Sampling Operations in CNN-based Generative Network for
    Generalizable Deepfake Detection", CVPR 2024); needs no fit.

    Card:
        Paper: arXiv 2312.10461; reference code github.com/chuangchuangtan/NPR-DeepfakeDetection.
        Network: ResNet-50's stem and first two stages (stem conv 3x3 stride 2), ``fc1`` to one
            logit, on the neighbouring-pixel residual ``x - up(down(x))`` (nearest, factor 2) of
            the ImageNet-normalised image, times 2/3. The number of blocks per stage is read
            from the file (the published file has 3 and 4).
        Input policy: ``even``: native size, no resize and no crop (resizing destroys the
            up-sampling traces NPR reads; the reference resizes only to batch images of mixed
            sizes; here the runner batches by size instead). The residual needs even sizes: the
            reference fails on an odd height or width; here the last row and/or column of such
            an image is dropped (by the runner's policy, and again in ``prepare`` for direct calls).
        Weights: ``NPR.pth`` (or ``model_epoch_last_3090.pth``), a bare state dict, loaded
            strictly (``torch.load(weights_only=True)``, or ``.safetensors``).
        Score: sigmoid of the logit, the probability that the image is generated.

    Parameters:
        weights: path to the NPR weight file.
        device: "cpu", "cuda" or "cuda:N".
        batch_size: images per forward pass.
        precision: the network's arithmetic, "float32" (default), "float16" or "bfloat16"
            (half precision is for CUDA; on the CPU it is refused when this torch cannot run it).
    """

    name = "npr"
    version = "0.1.0"
    input_policy = "even"

    def __init__(self, weights: str | None = None, device: str = "cpu", batch_size: int = 32,
                 precision: str = "float32"):
        self.weights = check_weights_path("npr", "weights", weights)
        self.device = check_device(device)
        self.batch_size = integer()("batch_size", batch_size)
        state = read_weights(self.weights, "npr")
        layer1, layer2 = block_counts(state, ("layer1", "layer2"), PUBLISHED_BLOCKS)
        model = NPRNet((layer1, layer2))
        load_strict(model, state, self.weights, "npr")
        self.model = self.place(model, precision)

    def prepare(self, images: np.ndarray) -> torch.Tensor:
        """ImageNet-normalised float input, odd last row/column dropped."""
        return even_crop(preprocess(images, PRESETS["wang2020"], None, self.device))
