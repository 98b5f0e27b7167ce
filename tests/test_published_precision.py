"""The published detectors' ``precision`` parameter: float16 and bfloat16 run (on the CPU here; the
CUDA path is the same code with device="cuda") and agree with float32; an unusable precision is refused.

Tolerances on the fixture networks' logits (measured with torch 2.13 on the CPU, 3x or more below
these): float16 within 1e-2 (measured at most 2.6e-3, Fusing), bfloat16 within 5e-2 (at most 9.1e-3, UnivFD).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from facebench.detectors import published
from facebench.detectors.cnndetection import CNNDetectionDetector
from facebench.detectors.fusing import FusingDetector
from facebench.detectors.npr import NPRDetector
from facebench.detectors.patchcraft import PatchCraftDetector
from facebench.detectors.published import check_precision, runs_in
from facebench.detectors.rine import RINEDetector
from facebench.detectors.univfd import UnivFDDetector

sys.path.insert(0, str(Path(__file__).parent))
import test_published_detectors as fixtures  # noqa: E402 - the weight-file helpers of the parity tests
import test_published_fusing as fusing_fixtures  # noqa: E402
import test_published_patchcraft as patchcraft_fixtures  # noqa: E402

CLIP = fixtures.FIXTURES / "clip_vit_tiny.pt"
TOLERANCE = {"float16": 1e-2, "bfloat16": 5e-2}


def npr(tmp_path, precision):
    data = fixtures.fixture("npr")
    return NPRDetector(weights=str(fixtures.npr_file(tmp_path, data)), precision=precision), data["images"].numpy()


def cnndetection(tmp_path, precision):
    data = fixtures.fixture("cnndetection")
    path = fixtures.cnndetection_file(tmp_path, data)
    return CNNDetectionDetector(weights=str(path), precision=precision), data["images"].numpy()


def univfd(tmp_path, precision):
    data = fixtures.fixture("univfd")
    path = fixtures.univfd_fc_file(tmp_path, data["seed"])
    return UnivFDDetector(weights=str(path), clip=str(CLIP), precision=precision), data["groups"][0].numpy()


def rine(tmp_path, precision):
    data = fixtures.fixture("rine")
    path = fixtures.rine_file(tmp_path, data)
    return RINEDetector(weights=str(path), clip=str(CLIP), precision=precision), data["groups"][0].numpy()


def patchcraft(tmp_path, precision):
    data = patchcraft_fixtures.fixture()
    path = patchcraft_fixtures.patchcraft_file(tmp_path, data["seed"])
    return PatchCraftDetector(weights=str(path), precision=precision), data["groups"][0].numpy()


def fusing(tmp_path, precision):
    data = fusing_fixtures.fixture()
    path = fusing_fixtures.fusing_file(tmp_path, data)
    return FusingDetector(weights=str(path), precision=precision), fusing_fixtures.images_of(data)[0]


MAKERS = {"npr": npr, "cnndetection": cnndetection, "univfd": univfd, "rine": rine, "patchcraft": patchcraft, "fusing": fusing}


@pytest.mark.parametrize("precision", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", list(MAKERS))
def test_reduced_precision_agrees_with_float32(tmp_path, name, precision):
    if not runs_in(published.PRECISIONS[precision], "cpu"):
        pytest.skip(f"torch {torch.__version__} cannot run {precision} on the CPU (the refusal is tested below)")
    reference, images = MAKERS[name](tmp_path, "float32")
    detector, _ = MAKERS[name](tmp_path, precision)
    dtype = published.PRECISIONS[precision]
    network = detector.model.clip if name == "rine" else detector.model
    assert {p.dtype for p in network.parameters()} == {dtype}
    if name == "rine":
        assert {p.dtype for p in detector.model.head.parameters()} == {torch.float32}  # as the reference
    ours, theirs = detector.logits(images), reference.logits(images)
    difference = float((ours - theirs).abs().max())
    print(f"{name} {precision}: max abs logit difference to float32 {difference:.3g}")
    assert ours.dtype == torch.float64 and ours.shape == theirs.shape
    assert 0.0 < difference <= TOLERANCE[precision]  # not 0: the reduced path really ran
    assert detector.precision == precision


def test_a_precision_torch_cannot_run_is_refused_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(published, "runs_in", lambda dtype, device: dtype == torch.float32)
    with pytest.raises(ValueError) as exc:
        npr(tmp_path, "float16")
    text = str(exc.value)
    assert "\n" not in text and "npr" in text and "precision 'float16'" in text and 'precision="float32"' in text
    detector, _ = npr(tmp_path, "float32")  # float32 is never probed
    assert detector.dtype == torch.float32


def test_an_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="precision must be one of float32, float16, bfloat16, got 'float64'"):
        check_precision("npr", "float64", "cpu")
    assert check_precision("npr", "float32", "cpu") is torch.float32
