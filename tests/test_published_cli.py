"""The published detectors from the outside: facebench score, info cards, the example suite, provenance."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from facebench.detectors.checkpoint import Bottleneck, ResNet
from facebench.detectors.fusing import FusingNet
from facebench.detectors.npr import NPRDetector, NPRNet
from facebench.detectors.patchcraft import PatchCraftNet
from facebench.detectors.published import seeded_weights
from facebench.detectors.rine import RINEHead
from facebench.detectors.univfd import UnivFDDetector
from facebench.harness.cli import app
from facebench.harness.run.provenance import param_files
from PIL import Image
from typer.testing import CliRunner

ROOT = Path(__file__).parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "published"
EXAMPLE = ROOT / "benchmarks" / "suites" / "examples" / "published-detectors.toml"
runner = CliRunner()


@pytest.fixture
def weights(tmp_path) -> dict[str, Path]:
    """Tiny weight files of the six detectors, in their published layouts."""
    folder = tmp_path / "weights"
    folder.mkdir()
    paths = {"npr": folder / "NPR.pth", "cnndetection": folder / "blur_jpg_prob0.5.pth",
             "fc": folder / "fc_weights.pth", "clip": FIXTURES / "clip_vit_tiny.pt"}
    torch.save(seeded_weights(NPRNet((1, 1)).state_dict(), 1), paths["npr"])
    torch.save({"model": seeded_weights(ResNet(Bottleneck, (1, 1, 1, 1), num_classes=1).state_dict(), 2)}, paths["cnndetection"])
    torch.save(seeded_weights({"weight": torch.zeros(1, 32), "bias": torch.zeros(1)}, 3), paths["fc"])
    paths["rine"] = folder / "model_tiny_trainable.pth"
    torch.save(seeded_weights(RINEHead(2, 64, 2, 16).state_dict(), 4), paths["rine"])
    paths["patchcraft"] = folder / "RPTC.pth"
    torch.save({"netC": seeded_weights(PatchCraftNet().state_dict(), 5)}, paths["patchcraft"])
    paths["fusing"] = folder / "PSM.pth"
    torch.save({"model": seeded_weights(FusingNet((1, 1, 1, 1)).state_dict(), 6)}, paths["fusing"])
    return paths


def write_images(folder: Path, count: int, size: tuple[int, int], seed: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        path = folder / f"{index:03d}.png"
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def test_score_prints_one_score_per_image_and_writes_csv_and_json(tmp_path, weights):
    images = write_images(tmp_path / "photos", 3, (40, 36), 0) + write_images(tmp_path / "other", 1, (30, 30), 1)
    out_csv, out_json = tmp_path / "scores.csv", tmp_path / "scores.json"
    result = runner.invoke(app, ["score", "npr", str(tmp_path / "photos"), str(images[-1]), "-p", f"weights={weights['npr']}",
                                 "-o", str(out_csv)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert [line.split("\t")[1] for line in lines] == [str(p) for p in images]
    printed = np.array([float(line.split("\t")[0]) for line in lines])
    detector = NPRDetector(weights=str(weights["npr"]))
    expected = np.concatenate([detector.score(np.stack([np.array(Image.open(p)) for p in images[:3]])),
                               detector.score(np.array(Image.open(images[3]))[None])])
    assert np.allclose(printed, expected, atol=1e-6)
    with out_csv.open() as file:
        rows = list(csv.DictReader(file))
    assert [float(r["score"]) for r in rows] == pytest.approx(expected, abs=1e-12)
    assert rows[3]["height"] == "30"

    result = runner.invoke(app, ["score", "univfd", str(tmp_path / "photos"), "-p", f"weights={weights['fc']}",
                                 "-p", f"clip={weights['clip']}", "-o", str(out_json)])
    assert result.exit_code == 0, result.output
    record = json.loads(out_json.read_text())
    assert record["detector"] == "univfd" and len(record["scores"]) == 3
    assert {Path(name).name for name in record["files"]} == {"fc_weights.pth", "clip_vit_tiny.pt"}
    assert all(0.0 <= row["score"] <= 1.0 for row in record["scores"])


def test_score_refuses_a_detector_that_must_be_fitted(tmp_path):
    write_images(tmp_path / "photos", 1, (32, 32), 0)
    result = runner.invoke(app, ["score", "spectrum", str(tmp_path / "photos")])
    assert result.exit_code == 2
    assert "requires_fit" in result.output


def test_score_with_the_wrong_weight_file_is_one_line(tmp_path, weights):
    write_images(tmp_path / "photos", 1, (32, 32), 0)
    result = runner.invoke(app, ["score", "npr", str(tmp_path / "photos"), "-p", f"weights={weights['cnndetection']}"])
    assert result.exit_code == 2
    (line,) = [line for line in result.output.splitlines() if line.strip()]
    assert str(weights["cnndetection"]) in line and "looks like cnndetection" in line


def test_score_rejects_an_output_that_is_not_csv_or_json(tmp_path, weights):
    write_images(tmp_path / "photos", 1, (32, 32), 0)
    result = runner.invoke(app, ["score", "npr", str(tmp_path / "photos"), "-p", f"weights={weights['npr']}", "-o", "x.txt"])
    assert result.exit_code == 2 and ".csv or .json" in result.output


@pytest.mark.parametrize("name", ["npr", "cnndetection", "univfd", "rine", "patchcraft", "fusing"])
def test_info_shows_the_card(name):
    result = runner.invoke(app, ["info", name])
    assert result.exit_code == 0, result.output
    for part in ("Card:", "Paper:", "Input policy:", "Weights:", "Score:"):
        assert part in result.stdout


def test_weight_files_go_into_the_task_cache_key(tmp_path, weights):
    params = {"weights": str(weights["fc"]), "clip": str(weights["clip"])}
    files = param_files(UnivFDDetector, params)
    assert {Path(p).name for p in files} == {"fc_weights.pth", "clip_vit_tiny.pt"}
    import hashlib

    digest = hashlib.sha256(weights["fc"].read_bytes()).hexdigest()
    assert any(entry["sha256"] == digest for entry in files.values())
    other = tmp_path / "other_fc.pth"
    torch.save(seeded_weights({"weight": torch.zeros(1, 32), "bias": torch.zeros(1)}, 4), other)
    changed = param_files(UnivFDDetector, {**params, "weights": str(other)})
    assert sorted(e["sha256"] for e in changed.values()) != sorted(e["sha256"] for e in files.values())


def test_the_example_suite_runs_end_to_end_on_tiny_weights(tmp_path, weights):
    from facebench.harness.data.store import Store
    from facebench.harness.data.suite import load_suite
    from facebench.harness.run.runner import run_suite

    write_images(tmp_path / "fakes", 8, (224, 224), 5)
    write_images(tmp_path / "photos", 8, (224, 224), 6)
    text = EXAMPLE.read_text()
    substitutions = {
        "/path/to/fake-images": tmp_path / "fakes", "/path/to/real-photos": tmp_path / "photos",
        "/path/to/NPR.pth": weights["npr"], "/path/to/blur_jpg_prob0.5.pth": weights["cnndetection"],
        "/path/to/fc_weights.pth": weights["fc"], "/path/to/ViT-L-14.pt": weights["clip"],
        "/path/to/model_4class_trainable.pth": weights["rine"], "/path/to/RPTC.pth": weights["patchcraft"],
        "/path/to/PSM.pth": weights["fusing"],
        "count = 200": "count = 8", "resolution = 256": "resolution = 224",  # Fusing crops 224 px
        'perturbations = ["default"]': "perturbations = []",
        "resamples = 1000": "resamples = 50", "batch_sizes = [1, 16]": "measure = false",  # timing is the benchmark's business
    }
    for old, new in substitutions.items():
        assert old in text, old
        text = text.replace(old, str(new))
    suite_path = tmp_path / "published.toml"
    suite_path.write_text(text)
    result = run_suite(load_suite(suite_path), tmp_path / "results", show_progress=False)
    assert result.errors == []
    rows = Store(tmp_path / "results" / "facebench.sqlite").metrics(result.run["run_id"])
    detectors = {row["detector"] for row in rows if row["metric"] == "auc"}
    assert detectors == {"npr", "cnndetection", "univfd", "rine", "patchcraft", "fusing"}
    # the run's record names every weight file each detector loaded, with its sha256
    recorded = result.run["info"]["detector_files"]
    assert set(recorded) == {"npr", "cnndetection", "univfd", "rine", "patchcraft", "fusing"}
    npr_files = recorded["npr"]
    assert npr_files[str(Path(weights["npr"]).resolve())]["sha256"] == hashlib.sha256(Path(weights["npr"]).read_bytes()).hexdigest()
    assert len(recorded["univfd"]) == 2  # the CLIP backbone and the linear head
