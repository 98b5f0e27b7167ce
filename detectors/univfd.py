"""UnivFD: a linear probe on CLIP ViT-L/14 image features (Ojha et al., CVPR 2023)."""

from __future__ import annotations

import torch
from torch import nn

from .clip_vision import ClipDetector, ClipVision

from .published import (
    WeightsError,
    looks_like,
    read_weights,
)


class UnivFDNet(nn.Module):
    """CLIP's image encoder, then ``fc``: one logit from the projected feature."""

    def __init__(self, clip: ClipVision):
        super().__init__()
        self.clip = clip
        self.fc = nn.Linear(clip.output_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features, _ = self.clip(x)
        return self.fc(features)


def load_fc(fc: nn.Linear, state: dict[str, torch.Tensor], path: str, clip_path: str, clip: ClipVision) -> None:
    """Load UnivFD's ``fc_weights.pth`` (``weight`` [1, D], ``bias`` [1]) strictly; D must be CLIP's output width."""
    keys = sorted(state)
    if keys != ["bias", "weight"]:
        owner = looks_like(state)
        hint = f"; the file looks like {owner}" if owner else ""
        raise WeightsError(f"univfd weights {path!r}: expected exactly the keys bias and weight (fc_weights.pth), "
                           f"found {len(keys)} keys: {', '.join(keys[:5])}{hint}")
    weight, bias = state["weight"], state["bias"]
    if weight.ndim != 2 or weight.shape[0] != 1 or tuple(bias.shape) != (1,):
        raise WeightsError(f"univfd weights {path!r}: weight {list(weight.shape)} and bias {list(bias.shape)} "
                           "are not one logit's linear layer ([1, D] and [1])")
    if weight.shape[1] != clip.output_dim:
        raise WeightsError(f"univfd weights {path!r} take {weight.shape[1]}-d features, but CLIP weights {clip_path!r} "
                           f"give {clip.output_dim}-d ones (width {clip.width}); use the CLIP model they were trained on "
                           "(ViT-L/14: 768-d)")
    fc.load_state_dict({"weight": weight.float(), "bias": bias.float()}, strict=True)


class UnivFDDetector(ClipDetector):
    """UnivFD (Ojha, Li and Lee, "Towards Universal Fake Image Detectors that Generalize Across
    Generative Models", CVPR 2023); needs no fit.

    Card:
        Paper: arXiv 2302.10174; reference code github.com/WisconsinAIVision/UniversalFakeDetect.
        Network: OpenAI CLIP's ViT-L/14 image encoder (frozen; quick-GELU), its projected
            768-d feature, and a linear layer to one logit. Sizes are read from the files.
        Input policy: ``crop_or_pad:224``: centre crop to the encoder's resolution (224 px for ViT-L/14) with no
            resize, as the reference's evaluation; a smaller image is padded with black first,
            as torchvision's ``CenterCrop`` does. CLIP mean/std normalisation. Runs in float32
            by default (the reference's path, on the CPU and on CUDA); ``precision`` lowers it.
        Weights: ``fc_weights.pth`` (``weight`` [1, 768], ``bias`` [1]) for ``weights``; OpenAI's
            ``ViT-L-14.pt`` (a TorchScript archive, whose tensors are read without running its
            code), a state dict in OpenAI's key layout, or a transformers CLIP folder
            (``config.json`` + ``model.safetensors``) for ``clip``. Both loaded strictly.
            Nothing is downloaded.
        Score: sigmoid of the logit, the probability that the image is generated.

    Parameters:
        weights: path to UnivFD's linear layer, fc_weights.pth.
        clip: path to OpenAI's CLIP ViT-L/14 weights, ViT-L-14.pt, or a transformers CLIP folder
            (e.g. a saved openai/clip-vit-large-patch14).
        device: "cpu", "cuda" or "cuda:N".
        batch_size: images per forward pass.
        precision: the network's arithmetic, "float32" (default), "float16" or "bfloat16"
            (half precision is for CUDA; on the CPU it is refused when this torch cannot run it).
    """

    name = "univfd"
    version = "0.1.0"

    def __init__(self, weights: str | None = None, clip: str | None = None, device: str = "cpu", batch_size: int = 16,
                 precision: str = "float32"):
        encoder = self.read_clip(weights, clip, device, batch_size)
        model = UnivFDNet(encoder)
        load_fc(model.fc, read_weights(self.weights, "univfd"), self.weights, self.clip, encoder)
        self.model = self.place(model, precision)
