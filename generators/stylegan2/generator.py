"""The ``stylegan2`` generator plug-in: faces from a StyleGAN2(-ADA) network the user has.

Image k depends only on seed k: ``z = numpy.random.RandomState(seed).randn(1, z_dim)``, as the
official generate script draws it, so a seed gives the face the official code would draw.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from .. import face_records
from ..artifacts import FakeSpec, make_fakes, parse_fake_specs, refuse_null
from .loading import NetworkError, file_digest, load_network, network_family
from .networks import NOISE_MODES
from ...harness.contracts.ids import pair_id, record_id
from ...harness.contracts.types import FAKE, Batch, Record


class StyleGAN2Generator:
    """Fakes drawn by a StyleGAN2(-ADA) network from a local ``.pkl`` or ``.safetensors`` file.

    Parameters:
        network: path of the network (an official pickle is read without running its code).
        truncation_psi: truncation (1 = none; 0.5-0.7 gives typical "profile photo" faces).
        truncation_cutoff: apply truncation to the first this many ws only (None = all).
        noise_mode: "const" (deterministic), "random" (seeded per image) or "none".
        class_idx: the class of a class-conditional model (one-hot ``c``).
        device: "cpu" or "cuda" (or "cuda:N").
        batch_size: images per forward pass.
        compile: run the synthesis through ``torch.compile``.
        resolution: resize the images to this side (Lanczos), e.g. to match real photos; None keeps
            the network's resolution.
        artifacts: pixel artifacts to add on top, one extra fake per spec (e.g. "blob,size");
            "" adds none. Those that need landmarks or face/hair/background masks (``eyes_fixed``,
            ``background_blur``, ``hair_bleed``) get them from face analysis (see ``faces``).
        faces: "auto" (analyse every image's face, :mod:`~facebench.generators.faces` with the
            ``faces`` extra, where an artifact needs landmarks or regions: the records then carry
            landmarks, masks and ``meta["face"]``), "on" (on every image; one with no face found
            gets none) or "off" (never: such artifacts fail). Without the extra, or where no face
            is found and an artifact needs one, an error of one line.
    """

    name = "stylegan2"
    version = "0.1.0"
    #: The network family this plug-in draws from (the other family's plug-in is named in the refusal).
    family = "stylegan2"

    def __init__(self, network: str, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                 noise_mode: str = "const", class_idx: int | None = None, device: str = "cpu", batch_size: int = 8,
                 compile: bool = False, resolution: int | None = None, artifacts: str = "", faces: str = "auto"):
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {', '.join(NOISE_MODES)}, got {noise_mode!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if resolution is not None and not 16 <= resolution <= 2048:
            raise ValueError(f"resolution must be in 16..2048 (or None), got {resolution}")
        self.resolution = resolution
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError("device 'cuda' asked for, but torch sees no GPU here; use device=cpu")
        self.network = str(Path(network).expanduser().resolve())
        self.truncation_psi = float(truncation_psi)
        self.truncation_cutoff = truncation_cutoff
        self.noise_mode = noise_mode
        self.class_idx = class_idx
        self.device = device
        self.batch_size = batch_size
        self.compile = compile
        self.artifacts = artifacts
        self.faces = face_records.check_faces_mode(faces)
        self.fake_specs: list[FakeSpec] = parse_fake_specs(artifacts) if artifacts else []
        refuse_null(self.fake_specs, f"{self.name} (its images are all fakes)")
        self.G = load_network(self.network, device)
        if network_family(self.G) != self.family:
            other = network_family(self.G)
            raise NetworkError(f"{network}: this is a {other.replace('stylegan', 'StyleGAN')} network; "
                               f"draw from it with the {other} generator (facebench generate {other} --network ...)")
        self.network_sha256 = file_digest(self.network)
        if self.G.c_dim > 0:
            if class_idx is None or not 0 <= class_idx < self.G.c_dim:
                raise NetworkError(f"{network}: a class-conditional model ({self.G.c_dim} classes) "
                                   f"needs class_idx in 0..{self.G.c_dim - 1}")
        elif class_idx is not None:
            raise NetworkError(f"{network}: class_idx given, but the model is not class-conditional")
        self._synthesis = torch.compile(self.G.synthesis) if compile else self.G.synthesis

    def config(self) -> dict:
        return {
            "network": self.network, "network_sha256": self.network_sha256, "truncation_psi": self.truncation_psi,
            "truncation_cutoff": self.truncation_cutoff, "noise_mode": self.noise_mode, "class_idx": self.class_idx,
            "resolution": self.resolution, "artifacts": self.artifacts,
            **face_records.faces_config(self.faces),  # only when set: earlier corpora keep their keys
        }

    def latents(self, seeds: Sequence[int]) -> np.ndarray:
        """z for each seed, [N, z_dim] float64, as the official generate script draws it."""
        return np.concatenate([np.random.RandomState(int(seed)).randn(1, self.G.z_dim) for seed in seeds])

    @torch.no_grad()
    def images(self, seeds: Sequence[int]) -> np.ndarray:
        """uint8 [N, H, W, 3] images for ``seeds`` (random noise, if asked for, is seeded per image)."""
        out = []
        for start in range(0, len(seeds), self.batch_size):
            chunk = list(seeds)[start : start + self.batch_size]
            z = torch.from_numpy(self.latents(chunk)).to(self.device)
            c = None
            if self.G.c_dim:
                c = torch.zeros([len(chunk), self.G.c_dim], device=self.device)
                c[:, self.class_idx] = 1
            ws = self.G.mapping(z, c, truncation_psi=self.truncation_psi, truncation_cutoff=self.truncation_cutoff)
            if self.noise_mode == "random":
                images = []
                devices = [next(self.G.parameters()).device] if self.device.startswith("cuda") else []
                for i, seed in enumerate(chunk):  # random noise per image from its own seed
                    with torch.random.fork_rng(devices=devices):
                        seed_noise(int(seed), devices)
                        images.append(self._synthesis(ws[i : i + 1], noise_mode="random"))
                image = torch.cat(images)
            else:
                image = self._synthesis(ws, noise_mode=self.noise_mode)
            out.append(to_uint8(image))
        images = np.concatenate(out)
        if self.resolution is not None and self.resolution != images.shape[1]:
            size = (self.resolution, self.resolution)
            images = np.stack([np.asarray(Image.fromarray(image).resize(size, Image.LANCZOS)) for image in images])
        return images

    def generate(self, seeds: Sequence[int]) -> Batch:
        images = self.images(seeds)
        if images.shape[-1] != 3:
            raise NetworkError(f"{self.network}: the model draws {images.shape[-1]}-channel images; facebench needs RGB")
        meta = self.record_meta()
        records = [
            Record(id=record_id(self.name, seed, "fake"), label=FAKE, source=self.name, source_version=self.version,
                   seed=int(seed), pair=pair_id(self.name, seed), meta=meta)
            for seed in seeds
        ]
        if face_records.analyses_faces(self.faces, self.fake_specs):
            needing = face_records.artifacts_needing_faces(self.fake_specs)
            records = [face_records.with_faces(image, record, f"{self.name} seed {record.seed}", needing,
                                               images=f"{self.name} images", fix="draw other seeds, or drop the artifact")
                       for image, record in zip(images, records)]
        base = Batch(images, records)
        return Batch.concat([base, *(make_fakes(base, spec) for spec in self.fake_specs)])

    def record_meta(self) -> dict:
        """The settings every image's record carries."""
        meta = {"truncation_psi": self.truncation_psi, "truncation_cutoff": self.truncation_cutoff,
                "noise_mode": self.noise_mode, "network_sha256": self.network_sha256}
        if self.class_idx is not None:
            meta["class_idx"] = self.class_idx
        return meta


def seed_noise(seed: int, cuda_devices: Sequence[torch.device]) -> None:
    """Seed the generator that draws the noise, and no other: the CPU's, or the network's GPU's
    (``torch.manual_seed`` would also reseed every other GPU, which ``fork_rng`` does not restore)."""
    if not cuda_devices:
        torch.default_generator.manual_seed(seed)
    for device in cuda_devices:
        with torch.cuda.device(device):
            torch.cuda.manual_seed(seed)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """The official conversion: NCHW float -> ``(x * 127.5 + 128).clamp(0, 255)`` -> uint8 NHWC."""
    return (image.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).cpu().numpy()
