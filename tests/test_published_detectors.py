"""The published detectors: parity with their reference code, strict loading, bad input.

The fixtures under tests/fixtures/published/ were made by make_fixtures.py there: the reference
networks (small) with seeded weights, run by the reference code on fixed images. Here the same
seeded weights are saved in the reference's file layout and read by our detectors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from facebench.detectors.cnndetection import CNNDetectionDetector
from facebench.detectors.checkpoint import Bottleneck, ResNet
from facebench.detectors.npr import NPRDetector, NPRNet
from facebench.detectors.published import WeightsError, seeded_weights

FIXTURES = Path(__file__).parent / "fixtures" / "published"
TOLERANCE = 1e-4


def fixture(name: str) -> dict:
    return torch.load(FIXTURES / f"{name}.pt", map_location="cpu", weights_only=True)


def npr_file(tmp_path: Path, data: dict) -> Path:
    template = NPRNet(tuple(data["blocks"])).state_dict()
    path = tmp_path / "NPR.pth"
    torch.save(seeded_weights(template, data["seed"]), path)  # a bare state dict, as NPR.pth
    return path


def cnndetection_file(tmp_path: Path, data: dict) -> Path:
    template = ResNet(Bottleneck, tuple(data["blocks"]), num_classes=1).state_dict()
    path = tmp_path / "blur_jpg_prob0.5.pth"
    torch.save({"model": seeded_weights(template, data["seed"])}, path)
    return path


def assert_parity(name: str, ours: torch.Tensor, reference: torch.Tensor) -> None:
    difference = float((ours.double() - reference.double()).abs().max())
    print(f"{name}: max abs logit difference to the reference {difference:.3g}")
    assert ours.shape == reference.shape
    assert difference <= TOLERANCE


# -- npr ------------------------------------------------------------------------------------


def test_npr_matches_reference(tmp_path):
    data = fixture("npr")
    detector = NPRDetector(weights=str(npr_file(tmp_path, data)), batch_size=2)
    images = data["images"].numpy()
    assert_parity("npr", detector.logits(images), data["logits"])
    scores = detector.score(images)
    assert np.allclose(scores, torch.sigmoid(data["logits"][:, 0]).numpy(), atol=1e-5)


def test_npr_odd_sizes_drop_the_last_row_and_column(tmp_path):
    data = fixture("npr")
    detector = NPRDetector(weights=str(npr_file(tmp_path, data)))
    images = data["images"].numpy()
    odd = np.concatenate([images, images[:, :1]], axis=1)[:, :, :47]  # 65 x 47
    assert odd.shape[1] % 2 and odd.shape[2] % 2
    assert np.allclose(detector.score(odd), detector.score(odd[:, :64, :46]), atol=1e-7)


def test_npr_residual_equals_nearest_interpolation():
    x = torch.randn(2, 3, 10, 8)
    nearest = torch.nn.functional.interpolate
    down_up = nearest(nearest(x, scale_factor=0.5, mode="nearest", recompute_scale_factor=True),
                      scale_factor=2.0, mode="nearest", recompute_scale_factor=True)
    from facebench.detectors.cnn import npr_residual

    assert torch.equal(npr_residual(x), x - down_up)


# -- cnndetection ---------------------------------------------------------------------------


@pytest.mark.parametrize("crop", [None, 48])
def test_cnndetection_matches_reference(tmp_path, crop):
    data = fixture("cnndetection")
    detector = CNNDetectionDetector(weights=str(cnndetection_file(tmp_path, data)), crop=crop, batch_size=2)
    assert_parity(f"cnndetection crop={crop}", detector.logits(data["images"].numpy()), data[f"logits_crop{crop or 0}"])


# -- bad input: one line naming the file and the problem ------------------------------------


def one_line(exc: pytest.ExceptionInfo, path: Path) -> str:
    text = str(exc.value)
    assert "\n" not in text
    assert str(path) in text
    return text


def test_npr_refuses_cnndetection_weights(tmp_path):
    path = cnndetection_file(tmp_path, fixture("cnndetection"))
    with pytest.raises(WeightsError) as exc:
        NPRDetector(weights=str(path))
    text = one_line(exc, path)
    assert "missing keys: fc1.weight" in text and "unexpected keys" in text and "looks like cnndetection" in text


def test_cnndetection_refuses_npr_weights(tmp_path):
    path = npr_file(tmp_path, fixture("npr"))
    with pytest.raises(WeightsError) as exc:
        CNNDetectionDetector(weights=str(path))
    text = one_line(exc, path)
    assert "unexpected keys: fc1.bias" in text and "looks like npr" in text


def test_truncated_weight_file(tmp_path):
    path = npr_file(tmp_path, fixture("npr"))
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(WeightsError) as exc:
        NPRDetector(weights=str(path))
    assert "not a PyTorch weights file" in one_line(exc, path)


def test_extra_key(tmp_path):
    data = fixture("npr")
    state = seeded_weights(NPRNet(tuple(data["blocks"])).state_dict(), data["seed"])
    state["fc2.weight"] = torch.zeros(1, 512)
    path = tmp_path / "NPR.pth"
    torch.save(state, path)
    with pytest.raises(WeightsError) as exc:
        NPRDetector(weights=str(path))
    assert "1 unexpected keys: fc2.weight" in one_line(exc, path)


def test_wrong_shape(tmp_path):
    data = fixture("cnndetection")
    state = seeded_weights(ResNet(Bottleneck, tuple(data["blocks"]), num_classes=1).state_dict(), data["seed"])
    state["fc.weight"] = torch.zeros(2, 2048)
    state["fc.bias"] = torch.zeros(2)
    path = tmp_path / "two_classes.pth"
    torch.save({"model": state}, path)
    with pytest.raises(WeightsError) as exc:
        CNNDetectionDetector(weights=str(path))
    assert "fc.weight (file [2, 2048], model [1, 2048])" in one_line(exc, path)


def test_file_with_code_is_refused(tmp_path):
    path = tmp_path / "NPR.pth"
    torch.save({"model": NPRNet((1, 1))}, path)  # a whole pickled module, not a state dict
    with pytest.raises(WeightsError) as exc:
        NPRDetector(weights=str(path))
    assert "refused" in one_line(exc, path)


def test_missing_weights_parameter():
    with pytest.raises(ValueError, match="npr detector needs weights"):
        NPRDetector()
