"""The ``stylegan3`` generator plug-in: faces from a StyleGAN3 (T or R) network the user has.

Image k depends only on seed k: ``z = numpy.random.RandomState(seed).randn(1, z_dim)``, as the
official generate script draws it, and by default every image runs through the network on its
own, so its pixels do not depend on the batch size or on which seeds share its batch.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from PIL import Image

from ..stylegan2.generator import StyleGAN2Generator, to_uint8
from .networks import make_transform


class StyleGAN3Generator(StyleGAN2Generator):
    """Fakes drawn by a StyleGAN3 network from a local ``.pkl`` or ``.safetensors`` file.

    Parameters:
        network: path of the network (an official pickle is read without running its code).
        truncation_psi: truncation (1 = none; 0.5-0.7 gives typical "profile photo" faces).
        truncation_cutoff: apply truncation to the first this many ws only (None = all).
        class_idx: the class of a class-conditional model (one-hot ``c``).
        translate: translate the image by ``"x,y"`` (in image widths), as the official
            ``gen_images.py --translate``; "0,0" for none.
        rotate: rotate the image by this many degrees, as ``gen_images.py --rotate``.
        device: "cpu" or "cuda" (or "cuda:N").
        batch_size: seeds per call.
        batched: run ``batch_size`` images per forward pass (faster on a GPU). The network's
            floats then depend slightly on the batch, so a pixel may differ by one level
            (about 1e-6 before rounding) with the batch size; off (the default), every image
            is drawn on its own and is exactly the same at any batch size.
        compile: run the synthesis through ``torch.compile``.
        resolution: resize the images to this side (Lanczos); None keeps the network's resolution.
        artifacts: pixel artifacts to add on top, one extra fake per spec; "" adds none.
        faces: "auto", "on" or "off": face landmarks and face/hair/background masks on the
            records, for the artifacts that need them, as ``stylegan2``'s ``faces``.
    """

    name = "stylegan3"
    version = "0.1.0"
    family = "stylegan3"

    def __init__(self, network: str, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                 class_idx: int | None = None, translate: str | Sequence[float] = "0,0", rotate: float = 0.0,
                 device: str = "cpu", batch_size: int = 8, batched: bool = False, compile: bool = False,
                 resolution: int | None = None, artifacts: str = "", faces: str = "auto"):
        self.translate = parse_translate(translate)
        self.rotate = float(rotate)
        self.batched = bool(batched)
        super().__init__(network, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                         noise_mode="const", class_idx=class_idx, device=device, batch_size=batch_size,
                         compile=compile, resolution=resolution, artifacts=artifacts, faces=faces)
        transform = make_transform(self.translate, self.rotate)
        with torch.no_grad():
            self.G.synthesis.input.transform.copy_(torch.from_numpy(transform))

    def config(self) -> dict:
        config = super().config()
        del config["noise_mode"]
        config.update(translate=list(self.translate), rotate=self.rotate, batched=self.batched)
        return config

    def _labels(self, count: int) -> torch.Tensor | None:
        if not self.G.c_dim:
            return None
        c = torch.zeros([count, self.G.c_dim], device=self.device)
        c[:, self.class_idx] = 1
        return c

    def _draw(self, seeds: Sequence[int]) -> torch.Tensor:
        z = torch.from_numpy(self.latents(seeds)).to(self.device)
        ws = self.G.mapping(z, self._labels(len(seeds)), truncation_psi=self.truncation_psi,
                            truncation_cutoff=self.truncation_cutoff)
        return self._synthesis(ws)

    @torch.no_grad()
    def images(self, seeds: Sequence[int]) -> np.ndarray:
        """uint8 [N, H, W, 3] images for ``seeds``."""
        seeds = [int(seed) for seed in seeds]
        step = self.batch_size if self.batched else 1
        images = np.concatenate([to_uint8(self._draw(seeds[start : start + step]))
                                 for start in range(0, len(seeds), step)])
        if self.resolution is not None and self.resolution != images.shape[1]:
            size = (self.resolution, self.resolution)
            images = np.stack([np.asarray(Image.fromarray(image).resize(size, Image.LANCZOS)) for image in images])
        return images

    def record_meta(self) -> dict:
        meta = super().record_meta()
        del meta["noise_mode"]  # StyleGAN3 has no noise inputs
        if self.translate != (0.0, 0.0) or self.rotate:
            meta.update(translate=list(self.translate), rotate=self.rotate)
        return meta


def parse_translate(value: str | Sequence[float]) -> tuple[float, float]:
    """``"x,y"`` (or a pair of numbers) -> (x, y)."""
    parts = value.split(",") if isinstance(value, str) else list(value)
    try:
        x, y = (float(part) for part in parts)
    except (TypeError, ValueError):
        raise ValueError(f"translate must be two numbers 'x,y' (in image widths), got {value!r}") from None
    return x, y
