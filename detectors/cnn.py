"""A small CNN on the NPR residual, trained inside the harness (after Tan et al., CVPR 2024).

NPR ("neighbouring pixel relationships"): generators upsample, so the pixels of each 2x2
block of a generated image are tied together in ways a camera's are not. The residual
``x - up(down(x))`` with nearest resampling by 2 (each pixel minus the top-left pixel of its
2x2 block) keeps exactly those relationships and throws most of the image content away. A
few convolution stages on the residual, global average pooling and one linear unit give the
logit; ``score`` is its sigmoid.

One departure from the paper, on by default (``log_residual``): the residual, in grey levels,
is compressed to ``sign(r) * log(1 + |r|)``. Edges leave residuals of tens of levels, sensor
noise one or two; compressed, the noise floor is not drowned. On the parametric mixed corpus
(upsampling, hf_smooth, periodic, missing_camera_noise; 150 train images) this lifts the test
AUC from ~0.86 to ~0.98, mostly on hf_smooth and missing_camera_noise.

Small enough to train on a CPU in seconds to minutes: images are centre-cropped (training:
randomly cropped) to ``input_size`` pixels, at even offsets so the 2x2 grid stays aligned with
the image's. Training is AdamW with a cosine learning rate and class-balanced binary cross
entropy; afterwards the BatchNorm statistics are recomputed on the whole train split so
``score`` (eval mode) sees the statistics of the data, not of the last few batches.

Deterministic on the CPU: the weights start from torch's CPU generator seeded with ``seed`` (the
global torch random state is restored afterwards, and no GPU's is touched), and the data order, crops and augmentation come from
``numpy.random.default_rng(seed)``. On CUDA, cuDNN runs in deterministic mode during ``fit``,
but bit-identical results across machines are not promised.

Optional augmentation as in Wang et al. (CVPR 2020): with probability ``augment`` each, a
Gaussian blur with sigma ~ U[0, 3] and a JPEG round trip with quality ~ U{30..100}.
"""

from __future__ import annotations

import io
import math
import time

import numpy as np
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter
from torch import nn

from ..harness.contracts.detector import (
    DetectorBase,
    all_of,
    check_labels,
    device,
    flag,
    integer,
    non_negative,
    number,
    optional,
    probability,
    require,
)
from ..harness.contracts.types import check_images

#: Smallest image side the network accepts (after cropping to an even size).
MIN_SIDE = 16
#: Wang et al.'s augmentation ranges.
BLUR_SIGMA_MAX = 3.0
JPEG_QUALITY = (30, 100)

_EVEN = "{name} must be even (the NPR residual works on 2x2 blocks), got {value}"


def npr_residual(x: torch.Tensor) -> torch.Tensor:
    """``x - up(down(x))``, nearest resampling by 2, of float images ``[N, C, H, W]`` with even H and W.

    Nearest downsampling by 2 keeps the top-left pixel of each 2x2 block; nearest upsampling
    copies it back over the block. So every pixel loses its block's top-left pixel (those
    pixels become 0). The same as ``F.interpolate`` with mode "nearest", scale 0.5 then 2.
    """
    if x.shape[-1] % 2 or x.shape[-2] % 2:
        raise ValueError(f"npr_residual needs even height and width, got {tuple(x.shape[-2:])}")
    anchor = x[..., ::2, ::2]
    return x - anchor.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)


def crop_side(height: int, width: int, input_size: int | None) -> tuple[int, int]:
    """The (even) crop height and width used for an image of ``height x width``."""
    h = height if input_size is None else min(height, input_size)
    w = width if input_size is None else min(width, input_size)
    h, w = h - h % 2, w - w % 2
    if h < MIN_SIDE or w < MIN_SIDE:
        raise ValueError(f"cnn detector: images of {height}x{width} are too small; need at least {MIN_SIDE}x{MIN_SIDE}")
    return h, w


def centre_offsets(height: int, width: int, h: int, w: int) -> tuple[int, int]:
    """Top-left corner (even) of the centred ``h x w`` crop."""
    return (height - h) // 2 // 2 * 2, (width - w) // 2 // 2 * 2


def network_input(images: np.ndarray, with_image: bool = False, log_residual: bool = True) -> torch.Tensor:
    """float32 ``[N, C, H, W]`` network input of uint8 images ``[N, H, W, 3]`` (even H and W).

    Channels: the NPR residual in grey levels (-255..255), compressed to ``sign(r) * log(1 + |r|)``
    when ``log_residual``; then, when ``with_image``, the image itself scaled to [-0.5, 0.5].
    """
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    residual = npr_residual(x)
    if log_residual:
        residual = torch.sign(residual) * torch.log1p(residual.abs())
    return torch.cat([residual, x / 255.0 - 0.5], dim=1) if with_image else residual


def _to(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    return x.to(device).contiguous(memory_format=torch.channels_last)


class NPRNet(nn.Module):
    """Conv3x3-BN-ReLU layers: a stride-2 stem (aligned with the residual's 2x2 blocks), then
    stages of a stride-2 and a stride-1 conv; global average pooling; one linear unit (the fake logit).

    Channels for ``width`` w: w, 2w | 4w, 4w | 4w, 4w (e.g. 16, 32, 64, 64, 64, 64); the output
    stride is 8, the receptive field 39 pixels.
    """

    def __init__(self, in_channels: int = 3, width: int = 16):
        super().__init__()
        plan = [(width, 2), (2 * width, 1), (4 * width, 2), (4 * width, 1), (4 * width, 2), (4 * width, 1)]
        layers: list[nn.Module] = []
        channels = in_channels
        for out, stride in plan:
            layers += [
                nn.Conv2d(channels, out, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(inplace=True),
            ]
            channels = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3))).squeeze(1)


class CNNDetector(DetectorBase):
    """A small CNN on the NPR residual, trained on the train split; score = sigmoid(logit).

    Parameters:
        epochs: passes over the train split.
        lr: peak AdamW learning rate (cosine decay to 0 over the training).
        weight_decay: AdamW weight decay.
        batch_size: images per training step and per inference batch.
        device: "cpu", "cuda" or "cuda:N".
        seed: seeds the initial weights, data order, crops and augmentation.
        input_size: side of the square crop the network sees (even, >= 16): random crops in
            training, the centre crop when scoring; smaller images are used whole (cropped to
            even sides). ``None`` (or a large value) uses whole images: their size then bounds the time.
        augment: probability, each, of a Gaussian blur (sigma ~ U[0, 3]) and of a JPEG round trip
            (quality ~ U{30..100}) on a training image, as in Wang et al. 2020 (0.1 or 0.5 there);
            0 turns augmentation off.
        width: channels of the first stage (the others have 2x and 4x).
        with_image: also give the network the image itself, beside its residual.
        log_residual: compress the residual (in grey levels) to ``sign(r) * log(1 + |r|)``, so that
            sensor noise (a grey level or two) is not drowned by edges (tens of levels); off gives
            the plain NPR residual.
    """

    name = "cnn"
    score_range = (0.0, 1.0)  # a probability of "fake"; the runner checks it
    version = "0.1.0"
    requires_fit = True
    #: It crops inside (random crops in training, the centre crop when scoring), so it takes any size.
    input_policy = "any"
    #: What the detector reads: pixels only (never records or ground truth).
    inputs = ("pixels",)
    checks = {
        "epochs": integer(),
        "lr": number(),
        "weight_decay": non_negative(),
        "device": device(),
        "seed": integer(0),
        "input_size": optional(all_of(integer(MIN_SIDE), require(lambda side: side % 2 == 0, _EVEN))),
        "augment": probability(),
        "width": integer(1, 256),
        "with_image": flag(),
        "log_residual": flag(),
    }
    epochs: int
    lr: float
    weight_decay: float
    seed: int
    input_size: int | None
    augment: float
    width: int
    with_image: bool
    log_residual: bool

    def __init__(
        self,
        epochs: int = 8,
        lr: float = 2e-3,
        weight_decay: float = 1e-4,
        batch_size: int = 16,
        device: str = "cpu",
        seed: int = 0,
        input_size: int | None = 128,
        augment: float = 0.0,
        width: int = 16,
        with_image: bool = False,
        log_residual: bool = True,
    ):
        super().__init__(epochs=epochs, lr=lr, weight_decay=weight_decay, batch_size=batch_size, device=device,
                         seed=seed, input_size=input_size, augment=augment, width=width, with_image=with_image,
                         log_residual=log_residual)
        self.model: NPRNet | None = None
        #: Seconds the last fit took, and the final epoch's mean training loss.
        self.fit_seconds: float | None = None
        self.final_loss: float | None = None

    # -- data ---------------------------------------------------------------------------

    def _augment(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Wang et al.'s blur then JPEG, each with probability ``augment`` (draws always made, so the
        random stream does not depend on the outcomes)."""
        blur, sigma, jpeg, quality = rng.random(), rng.uniform(0, BLUR_SIGMA_MAX), rng.random(), rng.integers(
            JPEG_QUALITY[0], JPEG_QUALITY[1] + 1
        )
        if blur < self.augment and sigma > 0:
            blurred = gaussian_filter(image.astype(np.float32), sigma=(sigma, sigma, 0), mode="reflect")
            image = np.clip(np.rint(blurred), 0, 255).astype(np.uint8)
        if jpeg < self.augment:
            buffer = io.BytesIO()
            Image.fromarray(image).save(buffer, format="JPEG", quality=int(quality))
            image = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
        return image

    def _train_batch(self, images: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        height, width = images.shape[1:3]
        h, w = crop_side(height, width, self.input_size)
        crops = []
        for image in images:
            top = 2 * int(rng.integers(0, (height - h) // 2 + 1))
            left = 2 * int(rng.integers(0, (width - w) // 2 + 1))
            if self.augment > 0:
                image = self._augment(image, rng)
            crops.append(image[top : top + h, left : left + w])
        return network_input(np.stack(crops), self.with_image, self.log_residual)

    def _eval_input(self, images: np.ndarray) -> torch.Tensor:
        height, width = images.shape[1:3]
        h, w = crop_side(height, width, self.input_size)
        top, left = centre_offsets(height, width, h, w)
        return network_input(images[:, top : top + h, left : left + w], self.with_image, self.log_residual)

    # -- fit / score --------------------------------------------------------------------

    def fit(self, images: np.ndarray, labels: np.ndarray) -> None:
        check_images(images)
        labels = check_labels(self.name, images, labels).astype(np.float32)
        crop_side(images.shape[1], images.shape[2], self.input_size)  # size check before any work
        started = time.perf_counter()
        rng = np.random.default_rng(self.seed)
        device = torch.device(self.device)
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(self.seed)  # the CPU's only: torch.manual_seed would reseed every GPU too
            model = NPRNet(6 if self.with_image else 3, self.width)
        model = model.to(device, memory_format=torch.channels_last)  # ~1.5x faster convolutions on CPUs
        n_fake = float(labels.sum())
        pos_weight = torch.tensor((len(labels) - n_fake) / n_fake, device=device)  # balances the classes
        loss_fn = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
        optimizer = torch.optim.AdamW(model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        steps_per_epoch = math.ceil(len(images) / self.batch_size)
        total = self.epochs * steps_per_epoch
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / total)))
        cudnn = torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True)
        with cudnn:
            model.train()
            for _ in range(self.epochs):
                order = rng.permutation(len(images))
                losses = []
                for start in range(0, len(order), self.batch_size):
                    index = np.sort(order[start : start + self.batch_size])
                    x = _to(self._train_batch(images[index], rng), device)
                    y = torch.from_numpy(labels[index]).to(device)
                    loss = loss_fn(model(x), y)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    schedule.step()
                    losses.append(float(loss.detach()) * len(index))
                self.final_loss = sum(losses) / len(images)
            self._recalibrate_batchnorm(model, images, device)
        model.eval()
        self.model = model
        self.fit_seconds = time.perf_counter() - started

    def _recalibrate_batchnorm(self, model: NPRNet, images: np.ndarray, device: torch.device) -> None:
        """Recompute every BatchNorm's running mean and variance as averages over batches of the train
        split (centre crops), so eval mode does not depend on the last batches' momentum."""
        norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # cumulative average
        model.train()
        with torch.no_grad():
            for start in range(0, len(images), self.batch_size):
                model(_to(self._eval_input(images[start : start + self.batch_size]), device))
        for norm in norms:
            norm.momentum = 0.1

    def score(self, images: np.ndarray) -> np.ndarray:
        if self.model is None:
            raise RuntimeError("cnn detector is not fitted; call fit() first")
        check_images(images)
        if len(images) == 0:
            return np.zeros(0)
        model = self.model
        model.eval()
        with torch.inference_mode():
            scores = self.in_batches(lambda chunk: self._scores_of(model, chunk), images)
        return np.clip(scores, 0.0, 1.0).astype(np.float64)

    def _scores_of(self, model: NPRNet, images: np.ndarray) -> np.ndarray:
        logits = model(_to(self._eval_input(images), torch.device(self.device)))
        return torch.sigmoid(logits.double()).cpu().numpy()
