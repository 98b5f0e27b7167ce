"""The ``parametric`` generator plug-in: needs no weights and no data."""

from __future__ import annotations

import cmath
import math
from dataclasses import replace
from typing import Sequence

import numpy as np

from facebench.generators.artifacts import REGION_NAMES, EyesFixedArtifact, FakeSpec, make_fakes, parse_fake_specs
from facebench.generators.parametric.camera import capture
from facebench.generators.parametric.face import FaceParams, face_landmarks, render_faces, sample_face_params
from facebench.harness.seeding import rng_for
from facebench.harness.types import REAL, Batch, Record


class ParametricGenerator:
    """Procedural faces: for every seed a real photo-like image and one fake per artifact spec.

    The real image is the rendered face "photographed" (sensor pattern, shot and read noise).
    A fake is the same render with its artifacts applied before the same capture, so the
    pair differs only by the artifacts recorded on the fake.

    Parameters:
        resolution: image side in pixels (64..1024).
        artifacts: which fakes to make per seed, e.g. ``"upsampling:0.5,eyes_fixed"``; ``"none"``
            makes fakes without any artifact (a control).
        camera: simulate the camera (noise) on every image; False renders clean pixels.
    """

    name = "parametric"
    version = "0.1.0"

    def __init__(self, resolution: int = 256, artifacts: str = "upsampling,eyes_fixed", camera: bool = True):
        if not isinstance(resolution, int) or not 64 <= resolution <= 1024:
            raise ValueError(f"resolution must be an integer in 64..1024, got {resolution!r}")
        self.resolution = resolution
        self.artifacts = artifacts
        self.camera = camera
        self.fake_specs: list[FakeSpec] = parse_fake_specs(artifacts)

    def config(self) -> dict:
        return {"resolution": self.resolution, "artifacts": self.artifacts, "camera": self.camera}

    def render(self, seeds: Sequence[int], params: Sequence[FaceParams] | None = None) -> Batch:
        """Clean renders (before the camera) with real records."""
        params = params or [sample_face_params(int(s)) for s in seeds]
        render = render_faces(params, self.resolution)
        records = [
            Record(
                id=f"{self.name}-{int(seed):08d}-real",
                label=REAL,
                source=self.name,
                source_version=self.version,
                seed=int(seed),
                pair=f"{self.name}-{int(seed):08d}",
                landmarks={key: tuple(map(float, values[i])) for key, values in render.landmarks.items()},
                masks={name: render.masks[name][i] for name in REGION_NAMES},
            )
            for i, seed in enumerate(seeds)
        ]
        return Batch(render.images, records)

    def photograph(self, batch: Batch) -> Batch:
        if not self.camera:
            return batch
        images = np.stack([capture(image, record.seed) for image, record in zip(batch.images, batch.records)])
        return Batch(images, batch.records)

    def generate(self, seeds: Sequence[int]) -> Batch:
        params = [sample_face_params(int(s)) for s in seeds]
        clean = self.render(seeds, params)
        batches = [self.photograph(clean)]
        batches += [self.photograph(self.fakes(seeds, params, clean, spec)) for spec in self.fake_specs]
        return Batch.concat(batches)

    def fakes(self, seeds: Sequence[int], params: Sequence[FaceParams], clean: Batch, spec: FakeSpec) -> Batch:
        """The fakes of one spec.

        ``eyes_fixed`` is rendered with FFHQ framing rather than warped, so the fake is not
        resampled and differs from its real counterpart by the framing alone.
        """
        strengths = dict(spec.artifacts)
        if "eyes_fixed" not in strengths:
            return make_fakes(clean, spec)
        artifact = EyesFixedArtifact()
        strength = strengths["eyes_fixed"]
        aligned = []
        for seed, face in zip(seeds, params):
            rng = rng_for(int(seed), f"artifact:{artifact.name}")
            left, right = artifact.targets(self.resolution, self.resolution, strength, rng)
            aligned.append(align_eyes(face, self.resolution, left, right))
        base = self.render(seeds, aligned)
        rest = FakeSpec(tuple(item for item in spec.artifacts if item[0] != "eyes_fixed"))
        fakes = make_fakes(base, rest, id_suffix=spec.slug)
        recorded = {"eyes_fixed": {"strength": float(strength), **artifact.params()}}
        return Batch(fakes.images, [r.with_changes(artifacts={**recorded, **r.artifacts}) for r in fakes.records])


def align_eyes(params: FaceParams, resolution: int, left: complex, right: complex) -> FaceParams:
    """``params`` reframed (scale, roll, shift) so the eye centres land on ``left`` and ``right`` (pixels)."""
    marks = face_landmarks(params, resolution)
    eye_left, eye_right = complex(*marks["eye_left"]), complex(*marks["eye_right"])
    change = (right - left) / (eye_right - eye_left)  # framing is a similarity: z -> a z + b
    turned = replace(params, scale=params.scale * abs(change), roll=params.roll + math.degrees(cmath.phase(change)))
    shift = (left - complex(*face_landmarks(turned, resolution)["eye_left"])) / resolution
    return replace(turned, tx=turned.tx + shift.real, ty=turned.ty + shift.imag)
