"""The face renderer's pixels, pinned: sha256 digests of renders covering every face option.

The digests were recorded before generators/parametric/face.py was split into stages (params,
layout, canvas, painters), so any refactor of the renderer must keep them. A deliberate change
to the pictures (or a numpy/scipy/Pillow upgrade that moves a rounding) changes them: check the
pictures, then print the new table with ``python tests/test_face_pixels.py`` (with :data:`AVX2_PATHS`
in the environment) and paste it below.

The digests are those of numpy's AVX2 code paths and OpenBLAS's Haswell kernels. Numpy's AVX-512
paths round some results differently in the last bit (on an AMD EPYC with AVX-512, 6 of the 23
digests changed with no change to the renderer), so the cases are computed in a child process with
those paths turned off. Bit-exact pixels are a property of one code path, not of every CPU.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import platform
import subprocess
import sys

import numpy as np
import pytest

from facebench.generators.parametric import ParametricGenerator
from facebench.generators.parametric.face import (
    BACKGROUND_STYLES,
    EARRINGS,
    GLASSES,
    HAIR_STYLES,
    NECKLINES,
    OUTDOOR_SCENES,
    WALL_PATTERNS,
    FaceParams,
    Render,
    render_faces,
    sample_face_params,
)

#: Environment that keeps numpy on its AVX2 paths and OpenBLAS on its Haswell kernels (names of
#: numpy 1.26's and 2.x's AVX-512 targets; a name a numpy does not dispatch on is ignored).
AVX2_PATHS = {
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL "
                                "AVX512_KNL AVX512_KNM",
    "OPENBLAS_CORETYPE": "Haswell",
}

CAMERA_FREE = ("upsampling,hf_smooth,hf_excess,periodic,eyes_fixed,irregular_pupils,highlight_mismatch,"
               "iris_mismatch,earring_single,background_blur,hair_bleed,blob,size")


def _option_faces() -> dict[str, list[FaceParams]]:
    """Faces that between them set every option of FaceParams to each of its kinds."""
    base = sample_face_params(5)
    backgrounds = [dataclasses.replace(base, bg_style=BACKGROUND_STYLES.index(style), bg_variant=variant)
                   for style, variants in (("studio", 1), ("bokeh", 1), ("room", 1),
                                           ("wall", len(WALL_PATTERNS)), ("outdoor", len(OUTDOOR_SCENES)))
                   for variant in range(variants)]
    return {
        "defaults": [FaceParams(seed=0)],
        "hair": [dataclasses.replace(base, hair_style=i, fringe=f) for i in range(len(HAIR_STYLES)) for f in (0.0, 0.7)],
        "background": backgrounds,
        "neckline": [dataclasses.replace(base, neckline=i) for i in range(len(NECKLINES))],
        "earrings": [dataclasses.replace(base, earring_left=i, earring_right=j, earring_size_left=s)
                     for i in range(len(EARRINGS)) for j in range(len(EARRINGS)) for s in (1.0, 0.0, 0.6)],
        "glasses": [dataclasses.replace(base, glasses=i, glasses_size=s)
                    for i in range(len(GLASSES)) for s in (1.0, 1.15)],
        "eyes": [
            dataclasses.replace(base, pupil_wobble_left=((0.1, 0.3), (0.05, 1.0)), pupil_aspect_right=0.6),
            dataclasses.replace(base, highlight_shift_left=(0.3, -0.2), iris_right=(0.3, 0.48, 0.72)),
            dataclasses.replace(base, gaze=(0.5, -0.3), eye_tilt=-3.0, lashes=1.0, smile=-0.15),
        ],
        "framing": [dataclasses.replace(base, roll=8.0, yaw=-10.0, scale=1.6, tx=0.08, ty=-0.06),
                    dataclasses.replace(base, roll=-8.0, yaw=10.0, scale=0.85, tx=-0.08, ty=0.06)],
    }


def _digest_render(render: Render) -> str:
    h = hashlib.sha256(render.images.tobytes())
    for name in sorted(render.landmarks):
        h.update(name.encode() + render.landmarks[name].tobytes())
    for name in sorted(render.masks):
        h.update(name.encode() + np.packbits(render.masks[name]).tobytes())
    return h.hexdigest()


def _digest_batch(batch) -> str:
    h = hashlib.sha256(batch.images.tobytes())
    for record in batch.records:
        h.update(f"{record.id}|{record.label}|{sorted(record.artifacts.items())}|{sorted((record.landmarks or {}).items())}".encode())
        for name in sorted(record.masks):
            h.update(name.encode() + np.packbits(record.masks[name]).tobytes())
    return h.hexdigest()


def _cases() -> dict[str, object]:
    """Case name -> a function giving its digest."""
    cases: dict[str, object] = {}
    cases["sampled-params-500"] = lambda: hashlib.sha256(repr([sample_face_params(s) for s in range(500)]).encode()).hexdigest()
    for res in (64, 128, 256):
        cases[f"sampled-{res}"] = lambda res=res: _digest_render(render_faces([sample_face_params(s) for s in range(16)], res))
    for name, faces in _option_faces().items():
        cases[f"option-{name}-128"] = lambda faces=faces: _digest_render(render_faces(faces, 128))
    cases["option-glasses-64"] = lambda: _digest_render(render_faces(_option_faces()["glasses"], 64))
    for res in (64, 128, 256):
        for artifacts in ("all", "none", "null"):
            cases[f"generator-{artifacts}-{res}"] = lambda res=res, artifacts=artifacts: _digest_batch(
                ParametricGenerator(resolution=res, artifacts=artifacts).generate([0, 1, 2]))
    cases["generator-clean-128"] = lambda: _digest_batch(
        ParametricGenerator(resolution=128, artifacts=CAMERA_FREE, camera=False).generate([3, 4]))
    return cases


PINNED = {
    "sampled-params-500": "7af50001c332d37e72d59df277f2d6ddd0da9283d29966c5d0572ad022c60549",
    "sampled-64": "0ea33239497baf9cca974809feeb7e0afe7924231e949cba1945d889214e1deb",
    "sampled-128": "c4d8223ed1eb2f032acc6af6c44644f2b3e337b1fc4e269c36a0be260d615796",
    "sampled-256": "f6cbc99f170b573172defcc2095045743d25075d9896f6013134a5567fcaecec",
    "option-defaults-128": "5da9e939118a35b0c17baa87b1b17dbfe0a8d7f79bee1da0e36b7071c7eb578c",
    "option-hair-128": "6b739f013cf1bd21ec4aa49aaac54b9bb4e753cea4f0b2956498f52813f636ad",
    "option-background-128": "3a28f3c33b6f7205b8d7435a7dd5af37da36e5b15b2a6e85f5246d37516835f9",
    "option-neckline-128": "1393508c88fc8e51ba30ac15943f6bb191c99b70d139bac72459270270216b67",
    "option-earrings-128": "90a17848a56ddf6334bbfb0eddca0acb124b4d71540349e17e8f7aa0f4720ae9",
    "option-glasses-128": "7f469c85c11ac01dc890776d466e89fe7d1c25077ada1b2feeb7a26a3a62c82d",
    "option-eyes-128": "3a657413fb5dc08ede10736802bddf4e08959ca00089f17d17bc94489047b97e",
    "option-framing-128": "664d0bd02d31f784c2b4ffd78c2124535aed2770e46b437b890e05a66cf95c5c",
    "option-glasses-64": "c7f78214a9f4b8d7b85c1046358ef75ed8ac52568944259f69d6767059a617f7",
    "generator-all-64": "c79db61a65a917ec3d47a2eef2ddb53d2d123ac53a437b1038000117df0d4e5b",
    "generator-none-64": "be15adbf8def2abdedfd3cfc9bfe62961fa87ac9cdc71e9dc1c171d351e16691",
    "generator-null-64": "5da7dd847886122521168e630650c045cda669a9709b57ffbc7b06e9c7365e2f",
    "generator-all-128": "c999ca363b9b0933904c3896752db69dead1c154278fe913882804000cb9259b",
    "generator-none-128": "d11c7ab05fb6ddcd751bf2461231c5291ae5d5e088ee6ef150195664fa9e7e0b",
    "generator-null-128": "891f58034fe31b5228bfb5225efb4dfcb58cb98c60ec320a9f6f8447af753d1f",
    "generator-all-256": "129f2224eb6c1b0b89bd82010b8bc52ebb89191afdf1f03af60d1011b3983c42",
    "generator-none-256": "d98ac2fc83e30eab8d474f7e9cff59422808bc485a74a4580e2be29f79b6bae4",
    "generator-null-256": "8bc894b5012d42006d185adf85f575231c9334176aa0a7b6d6706ae850ece0ac",
    "generator-clean-128": "5654a4a71b6c03ca3e425f6a02bf704904776797c8a6df68260061c72393ebff",
}


@pytest.fixture(scope="module")
def digests() -> dict[str, str]:
    """Every case's digest, computed in a child process on the AVX2 paths (:data:`AVX2_PATHS`)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip(f"the digests are pinned on x86-64's AVX2 code paths; this is {platform.machine()}")
    child = subprocess.run([sys.executable, __file__], env={**os.environ, **AVX2_PATHS}, capture_output=True,
                           text=True, timeout=600)
    assert child.returncode == 0, child.stderr
    table = {}
    for line in child.stdout.splitlines():
        name, digest = line.strip().rstrip(",").split(": ")
        table[name.strip('"')] = digest.strip('"')
    return table


@pytest.mark.parametrize("case", sorted(PINNED))
def test_pixels_are_pinned(case, digests):
    assert digests[case] == PINNED[case], f"{case}: the renderer's output changed"


def test_every_case_is_pinned():
    assert set(PINNED) == set(_cases())


if __name__ == "__main__":
    for name, digest in _cases().items():
        print(f'    "{name}": "{digest()}",')
