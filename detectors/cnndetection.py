"""CNNDetection: Wang et al.'s ResNet-50 real/fake classifier (CVPR 2020) under its own name and card."""

from __future__ import annotations

import numpy as np
import torch

from .checkpoint import PRESETS, Bottleneck, ResNet, preprocess
from ..harness.contracts.detector import check_device, integer

from .published import (
    PublishedDetector,
    block_counts,
    check_weights_path,
    load_strict,
    read_weights,
)

#: Blocks per stage of ResNet-50.
RESNET50_BLOCKS = (3, 4, 6, 3)


class CNNDetectionDetector(PublishedDetector):
    """CNNDetection (Wang et al., "CNN-generated images are surprisingly easy to spot... for now",
    CVPR 2020); needs no fit.

    Card:
        Paper: arXiv 1912.11035; reference code github.com/PeterWang512/CNNDetection.
        Network: torchvision's ResNet-50 with a one-logit ``fc``; the blocks per stage are read
            from the file (the published files have 3, 4, 6, 3).
        Input policy: ``any`` (or ``centre_crop:N`` with ``crop=N``): no resize (the reference
            evaluates at native size), optional centre crop
            (``crop``, e.g. 224, the training crop; the reference demo's ``-c``), ImageNet
            mean/std. The network was trained on 224 px crops of 256 px LSUN images: on small
            faces (under 256 px) its scores collapse towards 0, which is the method's, not a
            loading fault.
        Weights: ``blur_jpg_prob0.5.pth`` or ``blur_jpg_prob0.1.pth``, ``{"model": state_dict}``
            (a bare state dict is accepted too), loaded strictly (``torch.load(weights_only=True)``,
            or ``.safetensors``).
        Score: sigmoid of the logit, the probability that the image is CNN-generated.

    Parameters:
        weights: path to the CNNDetection weight file.
        crop: centre crop side in pixels, or None for the whole image.
        device: "cpu", "cuda" or "cuda:N".
        batch_size: images per forward pass.
        precision: the network's arithmetic, "float32" (default), "float16" or "bfloat16"
            (half precision is for CUDA; on the CPU it is refused when this torch cannot run it).
    """

    name = "cnndetection"
    version = "0.1.0"
    input_policy = "any"  # "centre_crop:N" with crop=N

    def __init__(self, weights: str | None = None, crop: int | None = None, device: str = "cpu", batch_size: int = 32,
                 precision: str = "float32"):
        self.weights = check_weights_path("cnndetection", "weights", weights)
        self.crop = None if crop is None else integer()("crop", crop)
        self.input_policy = "any" if self.crop is None else f"centre_crop:{self.crop}"
        self.device = check_device(device)
        self.batch_size = integer()("batch_size", batch_size)
        state = read_weights(self.weights, "cnndetection")
        depths = block_counts(state, ("layer1", "layer2", "layer3", "layer4"), RESNET50_BLOCKS)
        model = ResNet(Bottleneck, depths, num_classes=1)  # type: ignore[arg-type]
        load_strict(model, state, self.weights, "cnndetection")
        self.model = self.place(model, precision)

    def prepare(self, images: np.ndarray) -> torch.Tensor:
        return preprocess(images, PRESETS["wang2020"], self.crop, self.device)
