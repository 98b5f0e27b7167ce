"""The ``parametric`` generator plug-in: needs no weights and no data."""

from __future__ import annotations

import cmath
import math
from dataclasses import replace
from typing import Sequence

import numpy as np

from ..artifacts import (
    ARTIFACTS,
    REGION_NAMES,
    ArtifactError,
    EyesFixedArtifact,
    FakeSpec,
    SceneArtifact,
    copy_fakes,
    null_fakes,
    null_source_seed,
    parse_fake_specs,
)
from ..artifacts.base import mark
from ..artifacts.sensor import has_camera_route
from .camera import capture
from .face import FaceParams, face_landmarks, render_faces, sample_face_params
from ...harness.contracts.seeding import rng_for
from ...harness.contracts.ids import pair_id, record_id
from ...harness.contracts.types import FAKE, REAL, Batch, Record


class ParametricGenerator:
    """Procedural faces: for every seed a real photo-like image and one fake per artifact spec.

    The real image is the rendered face "photographed" (sensor pattern, shot and read noise,
    Bayer demosaicking, JPEG). A fake is made from the same scene and the same capture, with
    its artifacts put in at the stage where each belongs: the framing and scene edits before
    rendering (``eyes_fixed``, pupils, highlights, irises, earrings), camera artifacts in the
    capture (noise, JPEG), pixel artifacts on the photograph, where a generator's own traces
    would sit. So a pair differs only by the artifacts recorded on the fake; a pixel
    artifact's fake equals its real outside the artifact's mask, and a scene artifact's mask
    is every pixel of the clean render that the edit changed.

    Parameters:
        resolution: image side in pixels (64..1024).
        artifacts: which fakes to make per seed, e.g. ``"upsampling:0.5,eyes_fixed"``; ``"all"`` one
            per built-in artifact. Two controls: ``"none"`` makes each fake a byte copy of its real;
            ``"null"`` makes it the real of seed ``seed + NULL_SEED_OFFSET`` (same generator and
            camera, never an image of the corpus).
        camera: simulate the camera on every image; False renders clean pixels.
    """

    name = "parametric"
    version = "0.3.0"  # 0.3.0: the null control; none fakes are marked "none"

    def __init__(self, resolution: int = 256, artifacts: str = "upsampling,eyes_fixed", camera: bool = True):
        if not isinstance(resolution, int) or not 64 <= resolution <= 1024:
            raise ValueError(f"resolution must be an integer in 64..1024, got {resolution!r}")
        self.resolution = resolution
        self.artifacts = artifacts
        self.camera = camera
        self.fake_specs: list[FakeSpec] = parse_fake_specs(artifacts)
        if not camera:
            for spec in self.fake_specs:
                for name, _ in spec.artifacts:
                    if has_camera_route(ARTIFACTS[name]):
                        raise ArtifactError(f"artifact {name!r} changes the camera pipeline; it needs camera=True")

    def config(self) -> dict:
        return {"resolution": self.resolution, "artifacts": self.artifacts, "camera": self.camera}

    def render(self, seeds: Sequence[int], params: Sequence[FaceParams] | None = None) -> Batch:
        """Clean renders (before the camera) with real records: landmarks and region masks."""
        params = params or [sample_face_params(int(s)) for s in seeds]
        render = render_faces(params, self.resolution)
        records = [
            Record(
                id=record_id(self.name, seed, "real"),
                label=REAL,
                source=self.name,
                source_version=self.version,
                seed=int(seed),
                pair=pair_id(self.name, seed),
                landmarks=_landmarks_of(render, i),
                masks={name: render.masks[name][i] for name in REGION_NAMES},
            )
            for i, seed in enumerate(seeds)
        ]
        return Batch(render.images, records)

    def photograph(self, batch: Batch, settings: dict | None = None) -> Batch:
        """``batch`` through the camera (unchanged when ``camera`` is off)."""
        if not self.camera:
            return batch
        settings = settings or {}
        images = np.stack([capture(image, record.seed, **settings) for image, record in zip(batch.images, batch.records)])
        return Batch(images, batch.records)

    def generate(self, seeds: Sequence[int]) -> Batch:
        seeds = [int(s) for s in seeds]
        faces = [sample_face_params(s) for s in seeds]
        clean = self.render(seeds, faces)
        reals = self.photograph(clean)
        batches = [reals]
        for spec in self.fake_specs:
            if spec.control == "none":
                batches.append(copy_fakes(reals))
            elif spec.control == "null":
                batches.append(self.null_fakes(reals))
            else:
                batches.append(self.fakes(seeds, faces, clean, spec))
        return Batch.concat(batches)

    def null_fakes(self, reals: Batch) -> Batch:
        """The null control's fakes of ``reals``: the photographed reals of ``seed + NULL_SEED_OFFSET``."""
        sources = [null_source_seed(r.seed) for r in reals.records]
        return null_fakes(reals, self.photograph(self.render(sources)))

    def fakes(self, seeds: Sequence[int], faces: Sequence[FaceParams], clean: Batch, spec: FakeSpec) -> Batch:
        """The fakes of one spec, photographed."""
        staged = [(_stage(artifact), artifact, strength) for artifact, strength in spec.build()]
        records = [r.with_changes(id=f"{r.id.removesuffix('-real')}-{spec.slug}", label=FAKE) for r in clean.records]
        fake = Batch(clean.images, records)
        faces = list(faces)
        for stage, artifact, strength in staged:  # framing first: everything else happens in the new frame
            if stage == "frame":
                faces = [self._aligned(seed, face, artifact, strength) for seed, face in zip(seeds, faces)]
                fake = self._rerender(seeds, faces, fake, artifact, strength, with_mask=False)
        for stage, artifact, strength in staged:
            if stage == "scene":
                faces = [artifact.edit(face, strength, rng_for(seed, f"artifact:{artifact.name}")) for seed, face in zip(seeds, faces)]
                fake = self._rerender(seeds, faces, fake, artifact, strength, with_mask=True)
        settings: dict = {}
        for stage, artifact, strength in staged:
            if stage == "camera":
                settings.update(artifact.camera_settings(strength))
                fake = Batch(fake.images, [mark(r, artifact.name, strength, artifact.params()) for r in fake.records])
        fake = self.photograph(fake, settings)
        for stage, artifact, strength in staged:  # pixel artifacts act on the photo, as a generator's output would
            if stage == "pixel":
                fake = artifact.apply(fake, strength)
        return fake

    def _aligned(self, seed: int, face: FaceParams, artifact: EyesFixedArtifact, strength: float) -> FaceParams:
        left, right = artifact.targets(self.resolution, self.resolution, strength, rng_for(seed, f"artifact:{artifact.name}"))
        return align_eyes(face, self.resolution, left, right)

    def _rerender(self, seeds, faces, fake: Batch, artifact, strength: float, *, with_mask: bool) -> Batch:
        """``fake`` rendered again from ``faces``: new pixels, landmarks and region masks, the artifact marked.

        With ``with_mask`` the artifact's mask is every pixel the new render changed.
        """
        render = self.render(seeds, faces)
        records = []
        for i, (record, new) in enumerate(zip(fake.records, render.records)):
            masks = {**record.masks, **new.masks}
            if with_mask:
                masks[artifact.name] = np.any(render.images[i] != fake.images[i], axis=-1)
            changed = record.with_changes(landmarks=new.landmarks, masks=masks)
            records.append(mark(changed, artifact.name, strength, artifact.params()))
        return Batch(render.images, records)


def _stage(artifact) -> str:
    """Where the parametric pipeline puts ``artifact``: frame, scene, camera or pixel."""
    if isinstance(artifact, EyesFixedArtifact):
        return "frame"
    if isinstance(artifact, SceneArtifact):
        return "scene"
    return "camera" if has_camera_route(artifact) else "pixel"


def _landmarks_of(render, i: int) -> dict[str, tuple[float, float]]:
    return {key: (float(values[i][0]), float(values[i][1])) for key, values in render.landmarks.items()}


def align_eyes(params: FaceParams, resolution: int, left: complex, right: complex) -> FaceParams:
    """``params`` reframed (scale, roll, shift) so the eye centres land on ``left`` and ``right`` (pixels)."""
    marks = face_landmarks(params, resolution)
    eye_left, eye_right = complex(*marks["eye_left"]), complex(*marks["eye_right"])
    change = (right - left) / (eye_right - eye_left)  # framing is a similarity: z -> a z + b
    turned = replace(params, scale=params.scale * abs(change), roll=params.roll + math.degrees(cmath.phase(change)))
    shift = (left - complex(*face_landmarks(turned, resolution)["eye_left"])) / resolution
    return replace(turned, tx=turned.tx + shift.real, ty=turned.ty + shift.imag)
