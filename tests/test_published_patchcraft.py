"""PatchCraft: parity with SIDBench's RPTC (model and preprocessing), seeded patch draws, strict loading.

tests/fixtures/published/patchcraft.pt was made by make_patchcraft.py there: the reference network
with seeded weights (and its own filter bank), run by the reference's ``rptc_processing`` with the
global torch generator seeded before each image. Here the same weights are rebuilt with our own
filter bank, saved as the reference saves them (``{"netC": state_dict}``) and read by our detector.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from facebench.detectors.npr import NPRDetector
from facebench.detectors.patchcraft import (
    DRAWS,
    PatchCraftDetector,
    PatchCraftNet,
    composites,
    high_pass_bank,
    patch_corners,
)
from facebench.detectors.published import WeightsError, seeded_weights

FIXTURES = Path(__file__).parent / "fixtures" / "published"
TOLERANCE = 1e-4


def fixture() -> dict:
    return torch.load(FIXTURES / "patchcraft.pt", map_location="cpu", weights_only=True)


def patchcraft_state(seed: int) -> dict[str, torch.Tensor]:
    """Seeded weights for every key but the filter bank, which is our own (as a real RPTC.pth holds it)."""
    template = PatchCraftNet().state_dict()
    state = seeded_weights({k: v for k, v in template.items() if k != "group1.hpf.weight"}, seed)
    state["group1.hpf.weight"] = high_pass_bank()
    return state


def patchcraft_file(tmp_path: Path, seed: int, wrap: str | None = "netC") -> Path:
    path = tmp_path / "RPTC.pth"
    state = patchcraft_state(seed)
    torch.save({wrap: state} if wrap else state, path)
    return path


def assert_parity(name: str, ours: torch.Tensor, reference: torch.Tensor) -> None:
    difference = float((ours.double() - reference.double()).abs().max())
    print(f"{name}: max abs logit difference to the reference {difference:.3g}")
    assert ours.shape == reference.shape
    assert difference <= TOLERANCE


@pytest.mark.parametrize("patch_seed", [0, 7])
def test_patchcraft_matches_reference(tmp_path, patch_seed):
    data = fixture()
    detector = PatchCraftDetector(weights=str(patchcraft_file(tmp_path, data["seed"])), seed=patch_seed, batch_size=2)
    for group, reference in zip(data["groups"], data[f"logits_seed{patch_seed}"]):
        images = group.numpy()
        assert_parity(f"patchcraft (seed {patch_seed}, {images.shape[1]}x{images.shape[2]})", detector.logits(images), reference)


@pytest.mark.parametrize("patch_seed", [0, 7])
def test_patchcraft_composites_match_the_reference_cell_by_cell(patch_seed):
    # the logits of random weights move little between images; the composites' per-cell sums
    # show that every patch was drawn at the same place and put in the same cell
    data = fixture()
    for group, reference in zip(data["groups"], data[f"cells_seed{patch_seed}"]):
        x = torch.stack([composites(image, patch_seed) for image in group.numpy()]).double()
        ours = x.reshape(len(x), 2, 3, 8, 28, 8, 28).sum(dim=(2, 4, 6))
        assert float((ours - reference).abs().max()) < 1e-9


def test_filter_bank_equals_the_reference_bank():
    assert torch.equal(high_pass_bank(), fixture()["hpf"])


def test_scores_do_not_depend_on_the_batch(tmp_path):
    data = fixture()
    images = data["groups"][0].numpy()
    detector = PatchCraftDetector(weights=str(patchcraft_file(tmp_path, data["seed"])), batch_size=3)
    # the composites are the same bits whatever else is in the batch (the network's sums may round differently)
    alone = torch.cat([detector.prepare(images[i : i + 1]) for i in reversed(range(len(images)))]).flip(0)
    assert torch.equal(detector.prepare(images), alone)
    together = detector.logits(images)
    assert torch.allclose(together, torch.cat([detector.logits(images[i : i + 1]) for i in range(len(images))]), atol=1e-6)
    other_seed = PatchCraftDetector(weights=str(patchcraft_file(tmp_path, data["seed"])), seed=1).logits(images)
    assert not torch.equal(together, other_seed)


def test_patch_draws_follow_random_crop():
    generator = torch.Generator().manual_seed(3)
    corners = patch_corners(40, 30, generator)
    assert len(corners) == DRAWS and all(0 <= top <= 12 and 0 <= left <= 2 for top, left in corners)
    # one patch-sized image: no draws at all, every patch is the whole image
    generator = torch.Generator().manual_seed(3)
    assert patch_corners(28, 28, generator) == [(0, 0)] * DRAWS
    assert torch.equal(generator.get_state(), torch.Generator().manual_seed(3).get_state())


@pytest.mark.parametrize("wrap", [None, "model"])
def test_patchcraft_reads_a_bare_or_wrapped_state_dict(tmp_path, wrap):
    data = fixture()
    path = patchcraft_file(tmp_path, data["seed"], wrap=wrap)
    detector = PatchCraftDetector(weights=str(path), batch_size=2)
    assert_parity("patchcraft (other file layout)", detector.logits(data["groups"][0].numpy()), data["logits_seed0"][0])


def test_patchcraft_strips_a_data_parallel_prefix(tmp_path):
    data = fixture()
    path = tmp_path / "RPTC.pth"
    torch.save({"netC": {f"module.{k}": v for k, v in patchcraft_state(data["seed"]).items()}}, path)
    detector = PatchCraftDetector(weights=str(path), batch_size=2)
    assert_parity("patchcraft (module. prefix)", detector.logits(data["groups"][1].numpy()), data["logits_seed0"][1])


# -- bad input: one line naming the file and the problem -------------------------------------


def one_line(exc: pytest.ExceptionInfo, path: Path) -> str:
    text = str(exc.value)
    assert "\n" not in text
    assert str(path) in text
    return text


def test_patchcraft_refuses_npr_weights(tmp_path):
    from facebench.detectors.npr import NPRNet

    path = tmp_path / "NPR.pth"
    torch.save(seeded_weights(NPRNet((1, 1)).state_dict(), 0), path)
    with pytest.raises(WeightsError) as exc:
        PatchCraftDetector(weights=str(path))
    text = one_line(exc, path)
    assert "missing keys: group1.hpf.weight" in text and "looks like npr" in text


def test_npr_refuses_patchcraft_weights(tmp_path):
    path = patchcraft_file(tmp_path, 0)
    with pytest.raises(WeightsError) as exc:
        NPRDetector(weights=str(path))
    assert "looks like patchcraft" in one_line(exc, path)


def test_patchcraft_extra_key_and_wrong_shape(tmp_path):
    state = patchcraft_state(0)
    state["fc3.weight"] = torch.zeros(1, 32)
    path = tmp_path / "RPTC.pth"
    torch.save({"netC": state}, path)
    with pytest.raises(WeightsError) as exc:
        PatchCraftDetector(weights=str(path))
    assert "1 unexpected keys: fc3.weight" in one_line(exc, path)

    state = patchcraft_state(0)
    state["group1.hpf.weight"] = torch.zeros(30, 3, 5, 5)
    torch.save({"netC": state}, path)
    with pytest.raises(WeightsError) as exc:
        PatchCraftDetector(weights=str(path))
    assert "group1.hpf.weight (file [30, 3, 5, 5], model [30, 1, 5, 5])" in one_line(exc, path)


def test_patchcraft_truncated_file(tmp_path):
    path = patchcraft_file(tmp_path, 0)
    path.write_bytes(path.read_bytes()[:20_000])
    with pytest.raises(WeightsError) as exc:
        PatchCraftDetector(weights=str(path))
    assert "not a PyTorch weights file" in one_line(exc, path)


def test_patchcraft_parameters():
    with pytest.raises(ValueError, match="patchcraft detector needs weights"):
        PatchCraftDetector()
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        PatchCraftDetector(weights="RPTC.pth", seed=-1)


def test_tiny_images_are_resized_to_one_patch():
    image = np.random.default_rng(0).integers(0, 256, (20, 50, 3), dtype=np.uint8)
    x = composites(image, 0)
    assert x.shape == (2, 3, 224, 224)
    # every patch is the whole (resized) image: both composites are one tile repeated
    tile = x[0, :, :28, :28]
    assert torch.equal(x[0], tile.repeat(1, 8, 8)) and torch.equal(x[1], x[0])


def test_score_prints_a_patchcraft_score_per_image(tmp_path):
    from facebench.harness.cli import app
    from PIL import Image
    from typer.testing import CliRunner

    images = fixture()["groups"][0].numpy()
    folder = tmp_path / "photos"
    folder.mkdir()
    for index, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{index}.png")
    weights = patchcraft_file(tmp_path, 18)
    result = CliRunner().invoke(app, ["score", "patchcraft", str(folder), "-p", f"weights={weights}", "-p", "seed=7"])
    assert result.exit_code == 0, result.output
    printed = [float(line.split("\t")[0]) for line in result.stdout.strip().splitlines()]
    expected = PatchCraftDetector(weights=str(weights), seed=7).score(images)
    assert np.allclose(printed, expected, atol=1e-6) and len(printed) == len(images)
