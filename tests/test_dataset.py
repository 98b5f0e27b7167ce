"""The ``dataset`` source: each layout read into one corpus per subset and run end to end, the
shortcut guard on real-JPEG/fake-PNG trees, and bad input refused in one line with nothing written."""

from __future__ import annotations

import io
import json
import os
import tomllib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from typer.testing import CliRunner

from facebench.generators.dataset import DatasetError, read_dataset
from facebench.generators.dataset.facts import estimate_quality, parse_harmonise
from facebench.generators.dataset.generator import DatasetGenerator
from facebench.generators.dataset.suite import suite_text
from facebench.harness.cli import app
from facebench.harness.data.corpus import Corpus
from facebench.harness.data.shortcuts import run_shortcuts
from facebench.harness.data.suite import parse_suite
from facebench.harness.report.html import render_report
from facebench.harness.report.text import build_leaderboard, print_leaderboard, to_markdown
from facebench.harness.run.runner import run_suite

SIZES = [(40, 48), (56, 40), (64, 64)]  # (width, height): mixed sizes in every class


def picture(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    """A smooth random picture with some noise, of ``size`` (width, height)."""
    width, height = size
    coarse = rng.integers(0, 256, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BILINEAR), np.int16)
    noisy = smooth + rng.integers(-6, 7, smooth.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def save(image: Image.Image, path: Path, fmt: str, quality: int = 92) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "jpg":
        image.save(path.with_suffix(".jpg"), quality=quality)
        return path.with_suffix(".jpg")
    image.save(path.with_suffix(".png"))
    return path.with_suffix(".png")


def fill(folder: Path, n: int, seed: int, formats=("jpg", "png")) -> list[Path]:
    """``n`` pictures in ``folder``, sizes and formats taking turns."""
    rng = np.random.default_rng(seed)
    return [save(picture(rng, SIZES[i % len(SIZES)]), folder / f"{i:03d}", formats[i % len(formats)]) for i in range(n)]


def cnndetection_tree(root: Path) -> Path:
    """progan with two categories; stylegan without categories."""
    for i, folder in enumerate(["progan/car", "progan/cat", "stylegan"]):
        fill(root / folder / "0_real", 6, 10 * i)
        fill(root / folder / "1_fake", 6, 10 * i + 1)
    return root


def genimage_tree(root: Path) -> Path:
    for i, generator in enumerate(["imagenet_ai_0419_biggan", "imagenet_midjourney"]):
        for split in ("train", "val"):
            fill(root / generator / split / "nature", 8 if split == "val" else 2, 20 * i)
            fill(root / generator / split / "ai", 8 if split == "val" else 2, 20 * i + 1)
    return root


def synthbuster_tree(root: Path) -> Path:
    fill(root / "RAISE", 10, 30)
    fill(root / "dalle2", 8, 31)
    fill(root / "midjourney-v5", 8, 32)
    return root


def list_tree(root: Path, suffix: str = ".csv") -> Path:
    """A list of images in a sibling folder, with generator and group columns."""
    rows = []
    for i, path in enumerate(fill(root / "images" / "real", 12, 40)):
        rows.append({"path": f"images/real/{path.name}", "label": "real", "generator": "coco", "group": f"g{i // 3}"})
    for generator, seed in (("sd14", 41), ("glide", 42)):
        for i, path in enumerate(fill(root / "images" / generator, 8, seed)):
            rows.append({"path": f"images/{generator}/{path.name}", "label": 1, "generator": generator, "group": f"{generator}{i // 2}"})
    listing = root / f"list{suffix}"
    if suffix == ".csv":
        listing.write_text("path,label,generator,group\n" + "".join(f"{r['path']},{r['label']},{r['generator']},{r['group']}\n"
                                                                    for r in rows))
    else:
        listing.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return listing


def parquet_tree(root: Path, with_images: bool = True) -> Path:
    """A Hugging Face-style Parquet folder: image struct {bytes, path}, ClassLabel label, generator column."""
    rng = np.random.default_rng(50)
    images, labels, generators = [], [], []
    for i in range(24):
        buffer = io.BytesIO()
        picture(rng, SIZES[i % 3]).save(buffer, format="JPEG" if i % 2 else "PNG", quality=90)
        images.append({"bytes": buffer.getvalue(), "path": f"{i}.img"})
        labels.append(i % 2 if i < 16 else [1, 0][i % 2])  # ClassLabel names below: 0 = fake, 1 = real
        generators.append("sdxl" if (i // 3) % 2 else "dalle3")
    columns = {"label": pa.array(labels, pa.int64()), "generator": pa.array(generators)}
    if with_images:
        columns = {"image": pa.array(images, pa.struct([("bytes", pa.binary()), ("path", pa.string())])), **columns}
    table = pa.table(columns)
    features = {"info": {"features": {"label": {"names": ["fake", "real"], "_type": "ClassLabel"}}}}
    table = table.replace_schema_metadata({b"huggingface": json.dumps(features).encode()})
    (root / "data").mkdir(parents=True, exist_ok=True)
    pq.write_table(table.slice(0, 12), root / "data" / "train-00000-of-00002.parquet", row_group_size=5)
    pq.write_table(table.slice(12), root / "data" / "train-00001-of-00002.parquet", row_group_size=5)
    return root


LAYOUT_TREES = {
    "cnndetection": (cnndetection_tree, {"progan", "stylegan"}),
    "genimage": (genimage_tree, {"imagenet_ai_0419_biggan", "imagenet_midjourney"}),
    "synthbuster": (synthbuster_tree, {"dalle2", "midjourney-v5"}),
    "list": (list_tree, {"sd14", "glide"}),
    "parquet": (parquet_tree, {"sdxl", "dalle3"}),
}


def run_scanned(tmp_path: Path, dataset_path: Path, **params) -> tuple:
    """``facebench dataset scan``'s suite (spectrum only, no timing) run end to end."""
    text = suite_text(read_dataset(dataset_path), {"resolution": 32, **params})
    data = tomllib.loads(text)
    data["detectors"] = [{"name": "spectrum"}]
    data["throughput"] = {"measure": False}
    data["bootstrap"] = {"resamples": 0}
    suite = parse_suite(data, "scanned.toml")
    return suite, run_suite(suite, tmp_path / "results", show_progress=False)


@pytest.mark.parametrize("layout", sorted(LAYOUT_TREES))
def test_each_layout_runs_end_to_end_with_one_row_per_generator(tmp_path, layout):
    build, subsets = LAYOUT_TREES[layout]
    dataset_path = build(tmp_path / "data")
    dataset = read_dataset(dataset_path)
    assert dataset.layout == layout
    assert set(dataset.subsets()) == subsets
    suite, result = run_scanned(tmp_path, dataset_path)
    assert not result.errors, result.errors
    assert {g.label for g in suite.generators} == subsets
    assert {m["corpus"] for m in result.metrics} == subsets  # per-generator rows
    for spec in suite.generators:
        corpus = Corpus.open(next(Path(c.path) for c in result.corpora if c.label == spec.label))
        labels = corpus.labels
        assert len(corpus) == spec.count and 0 < labels.sum() < len(labels)  # both classes, every image
        meta = [r.meta for r in corpus.records()]
        assert {m["layout"] for m in meta} == {layout} and {m["subset"] for m in meta} == {spec.label}
        assert all(m["file"]["format"] in ("jpeg", "png") and m["file"]["width"] > 0 and m["source_path"] for m in meta)
        assert {(m["file"]["width"], m["file"]["height"]) for m in meta} == set(SIZES)  # mixed native sizes read
        assert corpus.load_images(corpus.rows()[:2]).shape == (2, 32, 32, 3)


def test_a_native_dataset_corpus_keeps_every_image_at_its_own_size(tmp_path):
    dataset_path = cnndetection_tree(tmp_path / "data")
    suite, result = run_scanned(tmp_path, dataset_path, resolution="native")
    assert not result.errors, result.errors
    assert {m["corpus"] for m in result.metrics} == {"progan", "stylegan"}
    assert set(result.run["info"]["sensitivity_not_applicable"]) == {"progan", "stylegan"}  # no twins: said, not NaN
    for spec in suite.generators:
        corpus = Corpus.open(next(Path(c.path) for c in result.corpora if c.label == spec.label))
        stored = {(r["width"], r["height"]) for r in corpus.rows()}
        assert stored == set(SIZES)  # no crop, no resize: the sizes read are the sizes stored
        for record, image in zip(corpus.records(), corpus.load_image_list(corpus.rows())):
            assert image.shape[1::-1] == (record.meta["file"]["width"], record.meta["file"]["height"])
    with pytest.raises(DatasetError, match="or 'native'"):
        DatasetGenerator(str(dataset_path), subset="progan", resolution="huge")


def test_labels_follow_the_layout(tmp_path):
    root = cnndetection_tree(tmp_path / "cnn")
    generator = DatasetGenerator(str(root), subset="progan", resolution=32)
    batch = generator.generate(range(generator.count()))
    for record in batch.records:
        folder = record.meta["source_path"].split("/")[-2]
        assert record.label == {"0_real": 0, "1_fake": 1}[folder]
        assert record.meta["category"] in ("car", "cat")
    assert [r.label for r in batch.records[:4]] == [0, 1, 0, 1]  # reals and fakes alternate
    assert len({r.pair for r in batch.records}) == len(batch)  # no twins: a pair per image
    parquet = DatasetGenerator(str(parquet_tree(tmp_path / "pq")), subset="dalle3", resolution=32)
    # ClassLabel names say 0 = fake: the first 16 rows alternate fake/real by index
    records = parquet.generate(range(parquet.count())).records
    for record in records:
        row = int(record.meta["source_path"].rsplit(":", 1)[1]) + 5 * int(record.meta["source_path"].split("#")[1].split(":")[0])
        index = row + (12 if "00001" in record.meta["source_path"] else 0)
        expected = (index % 2) if index < 16 else [1, 0][index % 2]
        assert record.label == 1 - expected


def test_a_group_shares_one_pair_so_the_split_keeps_it_together(tmp_path):
    listing = list_tree(tmp_path / "data", ".jsonl")
    generator = DatasetGenerator(str(listing), subset="sd14", resolution=32)
    records = generator.generate(range(generator.count())).records
    by_group: dict[str, set[str]] = {}
    for record in records:
        by_group.setdefault(record.meta["group"], set()).add(record.pair)
    assert len(by_group) == 4 + 4  # coco's four groups of three reals (shared), sd14's four pairs of fakes
    assert all(len(pairs) == 1 for pairs in by_group.values())
    assert len({next(iter(p)) for p in by_group.values()}) == len(by_group)
    assert sum(r.label == 0 for r in records) == 12  # the coco reals are shared by every generator's subset


def test_quality_estimate_and_harmonise_spec(tmp_path):
    rng = np.random.default_rng(0)
    for quality in (50, 75, 92, 95):
        path = save(picture(rng, (64, 64)), tmp_path / f"q{quality}", "jpg", quality)
        with Image.open(path) as opened:
            assert estimate_quality(opened.quantization[0]) == quality
    assert parse_harmonise("") is None and parse_harmonise("JPEG:95") == 95
    for bad in ("png", "jpeg:0", "jpeg:101", "jpeg:x"):
        with pytest.raises(ValueError, match="jpeg:Q"):
            parse_harmonise(bad)


def format_shortcut_tree(root: Path) -> Path:
    """Reals JPEG q92, fakes PNG, mixed sizes alike in both classes."""
    fill(root / "RAISE", 12, 60, formats=("jpg",))
    fill(root / "gen", 12, 61, formats=("png",))
    return root


def test_the_guard_fires_on_jpeg_reals_and_png_fakes_and_is_silent_after_harmonise(tmp_path):
    root = format_shortcut_tree(tmp_path / "data")
    _, result = run_scanned(tmp_path / "plain", root)
    findings = run_shortcuts(result.run)["gen"]
    assert findings == ["reals are JPEG q~92, fakes are PNG: a detector can score on format alone"]
    board = build_leaderboard(result.run, result.metrics, result.throughput, result.errors)
    from rich.console import Console

    console = Console(record=True, width=200)
    print_leaderboard(board, console)
    assert "shortcut warning: corpus gen: reals are JPEG q~92, fakes are PNG" in console.export_text()
    assert "## Format shortcuts" in to_markdown(board)
    assert "reals are JPEG q~92, fakes are PNG: a detector can score on format alone" in render_report(result)
    stored = CliRunner().invoke(app, ["leaderboard", "--results", str(tmp_path / "plain" / "results")], terminal_width=200)
    assert "shortcut warning: corpus gen: reals are JPEG q~92, fakes are PNG" in stored.output  # read back from the store

    _, too_fine = run_scanned(tmp_path / "q95", root, harmonise="jpeg:95")
    assert "harmonise at jpeg:75 or lower" in run_shortcuts(too_fine.run)["gen"][0]
    _, harmonised = run_scanned(tmp_path / "q75", root, harmonise="jpeg:75")
    assert run_shortcuts(harmonised.run) == {}
    assert "Format shortcuts" not in render_report(harmonised) and "## Format shortcuts" not in to_markdown(
        build_leaderboard(harmonised.run, harmonised.metrics))


def test_spectrum_null_check_drops_to_chance_after_harmonising(tmp_path):
    """Identical pictures, reals JPEG q92 and fakes PNG: the spectrum detector scores on the format,
    and no longer after both are re-encoded at jpeg:75 (figures in benchmarks/shortcut_null.py)."""
    from sklearn.metrics import roc_auc_score

    from facebench.detectors.spectrum import SpectrumDetector

    rng = np.random.default_rng(7)
    for i in range(80):
        image = picture(rng, (64, 64))
        save(image, tmp_path / "data" / "RAISE" / f"{i:03d}", "jpg", 92)
        save(image, tmp_path / "data" / "gen" / f"{i:03d}", "png")
    auc = {}
    for harmonise in ("", "jpeg:75"):
        generator = DatasetGenerator(str(tmp_path / "data"), resolution=64, harmonise=harmonise)
        batch = generator.generate(range(generator.count()))
        labels = np.array([r.label for r in batch.records])
        train = np.arange(len(labels)) % 4 < 2  # pictures 2k (real and fake) train, the others test
        detector = SpectrumDetector()
        detector.fit(batch.images[train], labels[train])
        auc[harmonise] = roc_auc_score(labels[~train], detector.score(batch.images[~train]))
    assert auc[""] > 0.95, auc
    assert abs(auc["jpeg:75"] - 0.5) < 0.2, auc


# --------------------------------------------------------------------------- bad input


def refused(tmp_path: Path, params: dict[str, str], match: str) -> None:
    """``facebench generate dataset`` fails in one line matching ``match`` and writes nothing."""
    out = tmp_path / "out" / "corpus"
    args = ["generate", "dataset", "--out", str(out), "--n", "4"]
    for key, value in params.items():
        args += ["-p", f"{key}={value}"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and match in lines[0], result.output
    assert not out.exists() and (not out.parent.exists() or not os.listdir(out.parent))
    with pytest.raises(DatasetError, match=match):
        DatasetGenerator(**params)


def test_an_empty_class_folder_is_refused(tmp_path):
    root = cnndetection_tree(tmp_path / "cnn")
    for path in (root / "progan" / "cat" / "1_fake").iterdir():
        path.unlink()
    refused(tmp_path, {"path": str(root), "subset": "progan"}, "holds no images")
    DatasetGenerator(str(root), subset="stylegan")  # the other generator's folders are whole


def test_a_layout_with_one_class_is_refused(tmp_path):
    fill(tmp_path / "only" / "gen" / "1_fake", 4, 0)
    refused(tmp_path, {"path": str(tmp_path / "only")}, "no real images")


def test_a_list_naming_a_missing_file_is_refused(tmp_path):
    listing = list_tree(tmp_path / "data")
    listing.write_text(listing.read_text() + "images/nowhere.png,fake,sd14,\n")
    refused(tmp_path, {"path": str(listing), "subset": "sd14"}, "images/nowhere.png', which does not exist")


def test_parquet_without_an_image_column_is_refused(tmp_path):
    root = parquet_tree(tmp_path / "pq", with_images=False)
    refused(tmp_path, {"path": str(root), "subset": "sdxl"}, "has no image column")


def test_unknown_layout_subset_and_several_subsets_are_one_line(tmp_path):
    root = cnndetection_tree(tmp_path / "cnn")
    with pytest.raises(DatasetError, match="pass subset=NAME"):
        DatasetGenerator(str(root))
    with pytest.raises(DatasetError, match="has no subset 'biggan'; pass subset= one of: progan, stylegan"):
        DatasetGenerator(str(root), subset="biggan")
    (tmp_path / "plain" / "x").mkdir(parents=True)
    with pytest.raises(DatasetError, match="cannot tell the layout"):
        DatasetGenerator(str(tmp_path / "plain"))
    pooled = DatasetGenerator(str(root), subset="all", resolution=16)
    assert pooled.count() == 36


def test_a_file_changed_after_the_scan_is_refused(tmp_path):
    root = synthbuster_tree(tmp_path / "sb")
    generator = DatasetGenerator(str(root), subset="dalle2", resolution=16)
    changed = Path(generator.dataset.root / generator.entries[1].path)
    changed.write_bytes(changed.read_bytes() + b"\0")
    with pytest.raises(DatasetError, match="changed since the dataset was scanned"):
        generator.generate([1])


def test_scan_prints_a_runnable_suite(tmp_path):
    root = genimage_tree(tmp_path / "gi")
    result = CliRunner().invoke(app, ["dataset", "scan", str(root), "--resolution", "32", "--harmonise", "jpeg:75"])
    assert result.exit_code == 0, result.output
    assert "# " + str(root.resolve()) + ": layout genimage, 2 subset(s)" in result.output
    suite = parse_suite(tomllib.loads(result.output), "scan")
    assert [(g.label, g.count, g.params["subset"], g.params["harmonise"], g.params["split"]) for g in suite.generators] == [
        ("imagenet_ai_0419_biggan", 16, "imagenet_ai_0419_biggan", "jpeg:75", "val"),
        ("imagenet_midjourney", 16, "imagenet_midjourney", "jpeg:75", "val")]


def test_the_example_suite_runs_on_trees_in_its_layouts(tmp_path):
    example = Path(__file__).parents[1] / "benchmarks" / "suites" / "examples" / "dataset-per-generator.toml"
    text = example.read_text()
    text = text.replace("/path/to/CNNDetection/test", str(cnndetection_tree(tmp_path / "cnn")))
    text = text.replace("/path/to/synthbuster", str(synthbuster_tree(tmp_path / "sb")))
    data = tomllib.loads(text.replace('subset = "dalle3"', 'subset = "dalle2"'))
    for table in data["generators"]:
        table["count"] = 12  # the trees are small
        table["params"]["resolution"] = 32
    data["detectors"] = data["detectors"][:1]
    data["throughput"], data["bootstrap"] = {"measure": False}, {"resamples": 0}
    result = run_suite(parse_suite(data, str(example)), tmp_path / "results", show_progress=False)
    assert not result.errors, result.errors
    assert {m["corpus"] for m in result.metrics} == {"progan", "stylegan", "dalle3"}
