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
from facebench.detectors.checkpoint import Bottleneck, ResNet
from facebench.detectors.clip_vision import (
    ClipVision,
    clip_preprocess,
    read_clip_encoder,
    read_clip_visual,
    read_torchscript_tensors,
)
from facebench.detectors.cnndetection import CNNDetectionDetector
from facebench.detectors.npr import NPRDetector, NPRNet
from facebench.detectors.published import WeightsError, seeded_weights
from facebench.detectors.rine import RINEDetector, RINEHead, head_sizes
from facebench.detectors.univfd import UnivFDDetector

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


# -- univfd ---------------------------------------------------------------------------------


def univfd_fc_file(tmp_path: Path, seed: int, width: int = 32) -> Path:
    path = tmp_path / "fc_weights.pth"
    torch.save(seeded_weights({"weight": torch.zeros(1, width), "bias": torch.zeros(1)}, seed), path)
    return path


def univfd_logits(detector, groups) -> list[torch.Tensor]:
    return [detector.logits(group.numpy()) for group in groups]


def test_univfd_matches_reference_on_openai_torchscript_archive(tmp_path):
    data = fixture("univfd")
    detector = UnivFDDetector(weights=str(univfd_fc_file(tmp_path, data["seed"])),
                              clip=str(FIXTURES / "clip_vit_tiny.pt"), batch_size=1)
    assert detector.resolution == 32
    for index, (ours, reference) in enumerate(zip(univfd_logits(detector, data["groups"]), data["archive_logits"])):
        assert_parity(f"univfd (TorchScript CLIP, group {index})", ours, reference)


def tiny_clip_state_file(tmp_path: Path, data: dict, width: int = 128) -> Path:
    """The two-head encoder of the fixture as a state dict, rounded to half precision where the reference rounds."""
    encoder = ClipVision(width=width, layers=2, patch=8, grid=4, output_dim=32)
    template = {f"visual.{k}": v for k, v in encoder.state_dict().items()}
    state = seeded_weights(template, data["seed"] + 1)
    for key in data["half_keys"]:
        state[key] = state[key].half()
    path = tmp_path / "clip_tiny_state.pth"
    torch.save(state, path)
    return path


def test_univfd_matches_reference_on_a_two_head_state_dict(tmp_path):
    data = fixture("univfd")
    detector = UnivFDDetector(weights=str(univfd_fc_file(tmp_path, data["seed"])), clip=str(tiny_clip_state_file(tmp_path, data)))
    for index, (ours, reference) in enumerate(zip(univfd_logits(detector, data["groups"]), data["state_logits"])):
        assert_parity(f"univfd (two-head CLIP state dict, group {index})", ours, reference)


def test_torchscript_reader_reads_what_torch_jit_load_reads():
    ours = read_torchscript_tensors(FIXTURES / "clip_vit_tiny.pt")
    theirs = torch.jit.load(str(FIXTURES / "clip_vit_tiny.pt"), map_location="cpu").state_dict()  # our own fixture
    assert set(ours) == set(theirs)
    for key, value in theirs.items():
        assert ours[key].dtype == value.dtype and torch.equal(ours[key], value), key


def test_torchscript_reader_refuses_other_globals(tmp_path):
    import zipfile

    source = FIXTURES / "clip_vit_tiny.pt"
    bad = tmp_path / "ViT-L-14.pt"
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(bad, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename.endswith("/data.pkl"):
                data = data.replace(b"collections\nOrderedDict", b"os\nsystem\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n"[:23])
            zout.writestr(item, data)
    with pytest.raises(WeightsError) as exc:
        read_clip_visual(bad, "univfd")
    assert "refused" in one_line(exc, bad) and "os.system" in str(exc.value)


def test_univfd_clip_of_the_wrong_width(tmp_path):
    data = fixture("univfd")
    fc = univfd_fc_file(tmp_path, data["seed"], width=768)
    clip = FIXTURES / "clip_vit_tiny.pt"
    with pytest.raises(WeightsError) as exc:
        UnivFDDetector(weights=str(fc), clip=str(clip))
    text = one_line(exc, fc)
    assert "768-d features" in text and str(clip) in text and "32-d" in text


def test_univfd_refuses_a_resnet_as_fc(tmp_path):
    path = npr_file(tmp_path, fixture("npr"))
    with pytest.raises(WeightsError) as exc:
        UnivFDDetector(weights=str(path), clip=str(FIXTURES / "clip_vit_tiny.pt"))
    assert "looks like npr" in one_line(exc, path)


def test_univfd_refuses_a_resnet_as_clip(tmp_path):
    path = npr_file(tmp_path, fixture("npr"))
    with pytest.raises(WeightsError) as exc:
        UnivFDDetector(weights=str(univfd_fc_file(tmp_path, 0)), clip=str(path))
    assert "no visual.* keys" in one_line(exc, path)


def test_univfd_truncated_clip_archive(tmp_path):
    path = tmp_path / "ViT-L-14.pt"
    path.write_bytes((FIXTURES / "clip_vit_tiny.pt").read_bytes()[:100_000])
    with pytest.raises(WeightsError) as exc:
        UnivFDDetector(weights=str(univfd_fc_file(tmp_path, 0)), clip=str(path))
    one_line(exc, path)


def test_univfd_clip_with_an_extra_key(tmp_path):
    data = fixture("univfd")
    path = tiny_clip_state_file(tmp_path, data)
    state = torch.load(path, weights_only=True)
    state["visual.extra"] = torch.zeros(3)
    torch.save(state, path)
    with pytest.raises(WeightsError) as exc:
        UnivFDDetector(weights=str(univfd_fc_file(tmp_path, 0)), clip=str(path))
    assert "1 unexpected keys: extra" in one_line(exc, path)


# -- rine -----------------------------------------------------------------------------------


def rine_file(tmp_path: Path, data: dict, blocks: int = 2, width: int = 64) -> Path:
    template = RINEHead(blocks, width, data["layers"], data["features"]).state_dict()
    path = tmp_path / "model_tiny_trainable.pth"
    torch.save(seeded_weights(template, data["seed"]), path)
    return path


def test_rine_matches_reference(tmp_path):
    data = fixture("rine")
    detector = RINEDetector(weights=str(rine_file(tmp_path, data)), clip=str(FIXTURES / "clip_vit_tiny.pt"), batch_size=2)
    for index, (group, reference) in enumerate(zip(data["groups"], data["logits"])):
        assert_parity(f"rine (group {index})", detector.logits(group.numpy()), reference)


def test_rine_reads_its_sizes_from_the_published_layout():
    # model_2class_trainable.pth: alpha [1, 24, 128], proj1.1 [128, 1024], four projection layers
    head = RINEHead(24, 1024, 4, 128)
    state = seeded_weights(head.state_dict(), 0)
    assert head_sizes(state, "model_2class_trainable.pth") == (24, 1024, 4, 128)
    assert sorted(k for k in state if k.startswith("proj1.")) == sorted(
        f"proj1.{i}.{p}" for i in (1, 4, 7, 10) for p in ("weight", "bias"))
    assert sorted(k for k in state if k.startswith("head.")) == sorted(f"head.{i}.{p}" for i in (0, 3, 6) for p in ("weight", "bias"))


def test_rine_with_a_clip_of_the_wrong_size(tmp_path):
    data = fixture("rine")
    path = rine_file(tmp_path, data, blocks=24, width=1024)
    with pytest.raises(WeightsError) as exc:
        RINEDetector(weights=str(path), clip=str(FIXTURES / "clip_vit_tiny.pt"))
    assert "24 blocks of width 1024" in one_line(exc, path) and "2 of width 64" in str(exc.value)


def test_rine_refuses_univfd_weights(tmp_path):
    path = univfd_fc_file(tmp_path, 0)
    with pytest.raises(WeightsError) as exc:
        RINEDetector(weights=str(path), clip=str(FIXTURES / "clip_vit_tiny.pt"))
    assert "looks like univfd" in one_line(exc, path)


def test_rine_head_with_an_extra_key(tmp_path):
    data = fixture("rine")
    path = rine_file(tmp_path, data)
    state = torch.load(path, weights_only=True)
    state["head.9.weight"] = torch.zeros(1, 16)
    torch.save(state, path)
    with pytest.raises(WeightsError) as exc:
        RINEDetector(weights=str(path), clip=str(FIXTURES / "clip_vit_tiny.pt"))
    assert "unexpected keys: head.9.weight" in one_line(exc, path)


# -- transformers-format CLIP folders -------------------------------------------------------


def transformers_clip_folder(tmp_path: Path, width: int = 128, heads: int = 2, act: str = "quick_gelu") -> Path:
    transformers = pytest.importorskip("transformers")
    config = transformers.CLIPConfig(
        vision_config={"hidden_size": width, "intermediate_size": 4 * width, "num_attention_heads": heads,
                       "num_hidden_layers": 2, "patch_size": 8, "image_size": 32, "hidden_act": act},
        text_config={"hidden_size": 64, "intermediate_size": 128, "num_attention_heads": 1, "num_hidden_layers": 1,
                     "vocab_size": 50, "max_position_embeddings": 8, "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1},
        projection_dim=32)
    model = transformers.CLIPModel(config).eval()
    model.load_state_dict(seeded_weights(model.state_dict(), 7))
    folder = tmp_path / f"clip-{width}"
    model.save_pretrained(folder)
    return folder


def test_transformers_clip_folder_matches_transformers(tmp_path):
    transformers = pytest.importorskip("transformers")
    folder = transformers_clip_folder(tmp_path)
    reference = transformers.CLIPModel.from_pretrained(folder).eval()
    images = fixture("univfd")["groups"][0].numpy()
    x = clip_preprocess(images, 32)
    with torch.no_grad():
        theirs = reference.get_image_features(pixel_values=x)
        theirs = theirs if isinstance(theirs, torch.Tensor) else theirs.pooler_output
        ours, _ = read_clip_encoder(folder, "univfd")(x)
    assert_parity("CLIP image features (transformers folder, two heads)", ours, theirs)

    detector = UnivFDDetector(weights=str(univfd_fc_file(tmp_path, 0)), clip=str(folder))
    fc = seeded_weights({"weight": torch.zeros(1, 32), "bias": torch.zeros(1)}, 0)
    expected = theirs.double() @ fc["weight"].double().t() + fc["bias"].double()
    assert_parity("univfd (transformers folder)", detector.logits(images), expected)


def test_transformers_clip_folder_of_the_wrong_width(tmp_path):
    folder = transformers_clip_folder(tmp_path)
    fc = univfd_fc_file(tmp_path, 0, width=768)
    with pytest.raises(WeightsError) as exc:
        UnivFDDetector(weights=str(fc), clip=str(folder))
    text = one_line(exc, fc)
    assert str(folder) in text and "768-d features" in text and "width 128" in text


def test_transformers_clip_folder_with_gelu_is_refused(tmp_path):
    folder = transformers_clip_folder(tmp_path, act="gelu")
    with pytest.raises(WeightsError) as exc:
        UnivFDDetector(weights=str(univfd_fc_file(tmp_path, 0)), clip=str(folder))
    assert "hidden_act 'gelu'" in one_line(exc, folder)


def test_transformers_clip_folder_without_weights(tmp_path):
    folder = transformers_clip_folder(tmp_path)
    (folder / "model.safetensors").unlink()
    with pytest.raises(WeightsError) as exc:
        UnivFDDetector(weights=str(univfd_fc_file(tmp_path, 0)), clip=str(folder))
    assert "neither model.safetensors" in one_line(exc, folder)
