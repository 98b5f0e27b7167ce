"""PatchCraft: the contrast of rich- and poor-texture patch composites (Zhong et al., arXiv 2311.12397)."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..harness.contracts.detector import check_device, integer
from .published import (
    PublishedDetector,
    check_weights_path,
    load_strict,
    read_weights,
)

#: Side of the composite images the network reads, and patches per side: 8 x 8 patches of 28 px.
COMPOSITE = 224
GRID = 8
PATCH = COMPOSITE // GRID
#: Random patches drawn per image (three times the patches in a composite), as the reference.
DRAWS = 3 * GRID * GRID


# -- the fixed high-pass filter bank ----------------------------------------------------------

#: The eight neighbours of a pixel, clockwise from the top-left (row, column offsets).
CLOCKWISE = ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1))
#: The same eight in raster order (the order of the first-order filters).
RASTER = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))
#: The 3x3 and 5x5 "square" residual kernels of the spatial rich model (KB and KV).
SQUARE_3 = np.array([[-1, 2, -1], [2, -4, 2], [-1, 2, -1]], dtype=np.float64)
SQUARE_5 = np.array([[-1, 2, -2, 2, -1], [2, -6, 8, -6, 2], [-2, 8, -12, 8, -2],
                     [2, -6, 8, -6, 2], [-1, 2, -2, 2, -1]], dtype=np.float64)


def _kernel(taps: dict[tuple[int, int], float]) -> np.ndarray:
    """A 5x5 kernel with ``taps`` (offsets from the centre -> value), zero elsewhere."""
    out = np.zeros((5, 5))
    for (dy, dx), value in taps.items():
        out[2 + dy, 2 + dx] = value
    return out


def _halves(square: np.ndarray) -> list[np.ndarray]:
    """``square`` with its bottom, left, top and right part beyond the centre line zeroed (in that order)."""
    side, mid = len(square), len(square) // 2
    keep_rows = np.arange(side)[:, None]
    keep_cols = np.arange(side)[None, :]
    masks = (keep_rows <= mid, keep_cols >= mid, keep_rows >= mid, keep_cols <= mid)
    return [np.where(np.broadcast_to(mask, square.shape), square, 0.0) for mask in masks]


def _padded(kernel: np.ndarray) -> np.ndarray:
    pad = (5 - len(kernel)) // 2
    return np.pad(kernel, pad)


def high_pass_bank() -> torch.Tensor:
    """The 30 fixed residual filters of the spatial rich model (Fridrich and Kodovsky), each scaled so
    its largest tap is 1, as float32 ``[30, 1, 5, 5]``: 8 first-order, 4 second-order (/2), 8
    third-order (/3), 4 half "edge" 3x3 (/4), 4 half "edge" 5x5 (/12), the 3x3 (/4) and 5x5 (/12) squares."""
    first = [_kernel({(0, 0): -1, offset: 1}) for offset in RASTER]
    second = [_kernel({(0, 0): -2, (dy, dx): 1, (-dy, -dx): 1}) / 2 for dy, dx in RASTER[:4]]
    third = [_kernel({(0, 0): -3, (dy, dx): 3, (2 * dy, 2 * dx): -1, (-dy, -dx): 1}) / 3 for dy, dx in CLOCKWISE]
    edges_3 = [_padded(k) / 4 for k in _halves(SQUARE_3)]
    edges_5 = [k / 12 for k in _halves(SQUARE_5)]
    bank = first + second + third + edges_3 + edges_5 + [_padded(SQUARE_3) / 4, SQUARE_5 / 12]
    return torch.tensor(np.stack(bank), dtype=torch.float32).reshape(30, 1, 5, 5)


# -- the network ------------------------------------------------------------------------------


def conv_bn(inputs: int, outputs: int, activation: nn.Module) -> list[nn.Module]:
    return [nn.Conv2d(inputs, outputs, 3, padding=1), nn.BatchNorm2d(outputs), activation]


def stage(width: int, convs: int, pool: bool) -> nn.Sequential:
    """``convs`` x (3x3 conv, BatchNorm, ReLU), then a 3x3 stride-2 average pool when ``pool``."""
    modules: list[nn.Module] = []
    for _ in range(convs):
        modules += conv_bn(width, width, nn.ReLU())
    if pool:
        modules.append(nn.AvgPool2d(3, stride=2, padding=1))
    return nn.Sequential(*modules)


class HighPass(nn.Module):
    """Each colour channel through the 30 fixed filters: ``[N, 3, H, W]`` -> ``[N, 90, H, W]``
    (channel-major: red's 30 residuals, then green's, then blue's). The bank is a weight of the file."""

    def __init__(self):
        super().__init__()
        self.hpf = nn.Conv2d(1, 30, 5, padding=2, bias=False)
        self.hpf.weight = nn.Parameter(high_pass_bank(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return self.hpf(x.reshape(n * c, 1, h, w)).reshape(n, c * 30, h, w)


class PatchCraftNet(nn.Module):
    """The rich/poor texture contrast network: the fixed filter bank and a shared 90 -> ``width``
    conv block (BatchNorm, hardtanh to [-5, 5]) on each composite, their difference (poor minus
    rich) through four stages of 3x3 convs (4, 2, 2 and 2 convs; the first three end in a stride-2
    average pool), global average pool and ``fc2`` to one logit. Module names follow the
    reference's ``group1``...``group5``; input ``[N, 2, 3, H, W]`` (poor, rich)."""

    def __init__(self, width: int = 32):
        super().__init__()
        self.group1 = HighPass()
        self.group1_b = nn.Sequential(*conv_bn(90, width, nn.Hardtanh(-5.0, 5.0)))
        self.group2 = stage(width, 4, pool=True)
        self.group3 = stage(width, 2, pool=True)
        self.group4 = stage(width, 2, pool=True)
        self.group5 = stage(width, 2, pool=False)
        self.fc2 = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        poor = self.group1_b(self.group1(x[:, 0]))
        rich = self.group1_b(self.group1(x[:, 1]))
        y = self.group5(self.group4(self.group3(self.group2(poor - rich))))
        return self.fc2(torch.flatten(nn.functional.adaptive_avg_pool2d(y, 1), 1))


# -- the test-time preprocessing: patch composites ----------------------------------------------


def texture_richness(patches: torch.Tensor) -> np.ndarray:
    """float64 ``[P]``: per patch (``[P, 3, h, w]`` in [0, 1]) the summed absolute differences of
    neighbouring pixels, vertical, horizontal, diagonal and anti-diagonal; each sum in float32,
    the four added in float64, as the reference."""
    sums = torch.stack([
        (patches[:, :, :-1, :] - patches[:, :, 1:, :]).abs().sum(dim=(1, 2, 3)),
        (patches[:, :, :, :-1] - patches[:, :, :, 1:]).abs().sum(dim=(1, 2, 3)),
        (patches[:, :, :-1, :-1] - patches[:, :, 1:, 1:]).abs().sum(dim=(1, 2, 3)),
        (patches[:, :, :-1, 1:] - patches[:, :, 1:, :-1]).abs().sum(dim=(1, 2, 3)),
    ], dim=1).double()
    return (((sums[:, 0] + sums[:, 1]) + sums[:, 2]) + sums[:, 3]).numpy()


def patch_corners(height: int, width: int, generator: torch.Generator) -> list[tuple[int, int]]:
    """Top-left corners of :data:`DRAWS` random ``PATCH`` squares, drawn as torchvision's
    ``RandomCrop`` draws them (row then column, one ``torch.randint`` each; none when the image
    is exactly one patch)."""
    if (height, width) == (PATCH, PATCH):
        return [(0, 0)] * DRAWS
    corners = []
    for _ in range(DRAWS):
        top = int(torch.randint(0, height - PATCH + 1, (1,), generator=generator))
        left = int(torch.randint(0, width - PATCH + 1, (1,), generator=generator))
        corners.append((top, left))
    return corners


def tile(patches: torch.Tensor) -> torch.Tensor:
    """``[GRID * GRID, 3, PATCH, PATCH]`` laid out row by row into ``[3, COMPOSITE, COMPOSITE]``."""
    grid = patches.reshape(GRID, GRID, 3, PATCH, PATCH).permute(2, 0, 3, 1, 4)
    return grid.reshape(3, COMPOSITE, COMPOSITE)


def at_least_one_patch(image: np.ndarray) -> np.ndarray:
    """``image`` resized to ``PATCH`` x ``PATCH`` (PIL bilinear) when its shorter side is below ``PATCH``, as the reference."""
    if min(image.shape[:2]) >= PATCH:
        return image
    return np.asarray(Image.fromarray(image).resize((PATCH, PATCH), Image.Resampling.BILINEAR))


def composites(image: np.ndarray, seed: int) -> torch.Tensor:
    """float32 ``[2, 3, COMPOSITE, COMPOSITE]`` in [0, 1]: the poor-texture composite (the
    ``GRID * GRID`` least rich of :data:`DRAWS` random patches, least rich first) and the
    rich-texture one (the richest, richest first), each filled row by row. Ties keep draw order."""
    image = at_least_one_patch(image)
    x = torch.from_numpy(np.array(image)).permute(2, 0, 1).float().div(255.0)
    generator = torch.Generator().manual_seed(seed)
    corners = patch_corners(x.shape[1], x.shape[2], generator)
    patches = torch.stack([x[:, top : top + PATCH, left : left + PATCH] for top, left in corners])
    order = np.argsort(texture_richness(patches), kind="stable")
    count = GRID * GRID
    poor = tile(patches[torch.from_numpy(order[:count])])
    rich = tile(patches[torch.from_numpy(order[::-1][:count].copy())])
    return torch.stack([poor, rich])


# -- the detector --------------------------------------------------------------------------------


class PatchCraftDetector(PublishedDetector):
    """PatchCraft (Zhong et al., "PatchCraft: Exploring Texture Patch for Efficient AI-generated
    Image Detection", arXiv 2311.12397; first titled "Rich and Poor Texture Contrast", RPTC); needs no fit.

    Card:
        Paper: arXiv 2311.12397. Reference code: the authors' test code is published on
            ModelScope only; this follows the RPTC model and preprocessing of SIDBench
            (github.com/mever-team/sidbench, models/RPTC.py and rptc_processing), the public
            implementation that loads the authors' RPTC.pth.
        Network: 30 fixed high-pass filters of the spatial rich model on each colour channel,
            a 90 -> 32 conv block (BatchNorm, hardtanh [-5, 5]) shared by both composites, their
            difference through ten 3x3 convs with three average pools, global average pool and
            ``fc2`` to one logit.
        Input policy: native size, no resize (only an image whose shorter side is under 28 px
            is resized to 28 x 28, as the reference does). 192 random 28 px patches are drawn
            per image, ranked by texture richness (summed absolute differences of neighbouring
            pixels in four directions); the 64 poorest and the 64 richest are tiled 8 x 8 into
            two 224 px composites. Pixels in [0, 1], no mean/std. The draws come from a torch
            generator seeded with ``seed`` for every image, so an image's score does not depend
            on the batch or on the images before it (the reference seeds its global generator
            once per run, so its draws depend on the order of the images).
        Weights: ``RPTC.pth``: ``{"netC": state_dict}`` (a bare state dict and a "module."
            prefix are accepted too), loaded strictly (``torch.load(weights_only=True)``, or
            ``.safetensors``). The filter bank is part of the file and is read from it, as
            the reference does.
        Score: sigmoid of the logit, the probability that the image is generated.

    Parameters:
        weights: path to the PatchCraft/RPTC weight file.
        seed: seed of the patch draws (the same for every image).
        device: "cpu", "cuda" or "cuda:N".
        batch_size: images per forward pass.
        precision: the network's arithmetic, "float32" (default), "float16" or "bfloat16"
            (half precision is for CUDA; on the CPU it is refused when this torch cannot run it).
    """

    name = "patchcraft"
    version = "0.1.0"

    def __init__(self, weights: str | None = None, seed: int = 0, device: str = "cpu", batch_size: int = 32,
                 precision: str = "float32"):
        self.weights = check_weights_path("patchcraft", "weights", weights)
        self.seed = integer(minimum=0)("seed", seed)
        self.device = check_device(device)
        self.batch_size = integer()("batch_size", batch_size)
        state = read_weights(self.weights, "patchcraft")
        width = state["fc2.weight"].shape[1] if "fc2.weight" in state and state["fc2.weight"].ndim == 2 else 32
        model = PatchCraftNet(int(width))
        load_strict(model, state, self.weights, "patchcraft")
        self.model = self.place(model, precision)

    def prepare(self, images: np.ndarray) -> torch.Tensor:
        """``[N, 2, 3, 224, 224]``: each image's poor- and rich-texture composites (drawn on the CPU)."""
        return torch.stack([composites(image, self.seed) for image in images]).to(self.device)
