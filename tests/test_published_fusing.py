"""Fusing (PSM): parity with SIDBench's PSM model and psm_processing, window placement, strict loading.

tests/fixtures/published/fusing.pt was made by make_fusing.py there: the reference network (one
bottleneck per stage) with seeded weights, run by the reference code on seeded images, which the
test remakes from their recipe (checked by sha256).
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from facebench.detectors.fusing import FusingDetector, FusingNet, windows
from facebench.detectors.published import WeightsError, seeded_weights

FIXTURES = Path(__file__).parent / "fixtures" / "published"
TOLERANCE = 1e-4


def fixture() -> dict:
    return torch.load(FIXTURES / "fusing.pt", map_location="cpu", weights_only=True)


def images_of(data: dict) -> list[np.ndarray]:
    spec = importlib.util.spec_from_file_location("make_fusing", FIXTURES / "make_fusing.py")
    maker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(maker)
    groups = [maker.seeded_images(*recipe) for recipe in data["groups"]]
    assert [hashlib.sha256(g.tobytes()).hexdigest() for g in groups] == data["sha256"]
    return groups


def fusing_file(tmp_path: Path, data: dict, wrap: bool = True) -> Path:
    template = FusingNet(tuple(data["blocks"])).state_dict()
    state = seeded_weights(template, data["seed"])
    path = tmp_path / "PSM.pth"
    torch.save({"model": state, "total_steps": torch.tensor(3)} if wrap else state, path)
    return path


def test_fusing_matches_reference(tmp_path):
    data = fixture()
    detector = FusingDetector(weights=str(fusing_file(tmp_path, data)), batch_size=2)
    for images, reference in zip(images_of(data), data["logits"]):
        ours = detector.logits(images)
        difference = float((ours - reference).abs().max())
        print(f"fusing ({images.shape[1]}x{images.shape[2]}): max abs logit difference to the reference {difference:.3g}")
        assert ours.shape == reference.shape and difference <= TOLERANCE


def test_fusing_places_its_windows_as_the_reference(tmp_path):
    data = fixture()
    detector = FusingDetector(weights=str(fusing_file(tmp_path, data, wrap=False)))
    for images, reference in zip(images_of(data), data["boxes"]):
        x = detector.prepare(images)
        with torch.no_grad():
            from facebench.detectors.fusing import SIDE, centre_crop

            fm, _ = detector.model.features(centre_crop(x, SIDE))
        assert torch.equal(windows(fm, x.shape[2], x.shape[3]), reference)


def test_fusing_refuses_images_smaller_than_its_crop(tmp_path):
    detector = FusingDetector(weights=str(fusing_file(tmp_path, fixture())))
    with pytest.raises(ValueError, match="200x240 are smaller than its 224 px centre crop"):
        detector.score(np.zeros((1, 200, 240, 3), dtype=np.uint8))


def test_fusing_strict_loading(tmp_path):
    data = fixture()
    state = seeded_weights(FusingNet(tuple(data["blocks"])).state_dict(), 0)
    del state["mha_list.2.ln2.bias"]
    state["fc.weight"] = torch.zeros(2, 128)
    path = tmp_path / "PSM.pth"
    torch.save({"model": state}, path)
    with pytest.raises(WeightsError) as exc:
        FusingDetector(weights=str(path))
    text = str(exc.value)
    assert "\n" not in text and str(path) in text
    assert "1 missing keys: mha_list.2.ln2.bias" in text and "fc.weight (file [2, 128], model [1, 128])" in text


def test_fusing_reads_the_resnet_fc_size_from_the_file(tmp_path):
    data = fixture()
    state = seeded_weights(FusingNet(tuple(data["blocks"]), classes=2).state_dict(), 0)
    path = tmp_path / "PSM.pth"
    torch.save({"model": state}, path)
    assert FusingDetector(weights=str(path)).model.resnet.fc.out_features == 2
