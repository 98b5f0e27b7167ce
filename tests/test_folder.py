"""The folder generator: scanning, decoding, cropping, labels, artifacts, errors, CLI."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from facebench.generators.artifacts import ArtifactError
from facebench.generators.folder import FolderError, FolderGenerator
from facebench.harness.contracts import registry
from facebench.harness.cli import app
from facebench.harness.contracts.errors import FacebenchError
from facebench.harness.contracts.types import FAKE, REAL

RES = 32


def save(path, array, mode=None, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, np.uint8), mode).save(path, **kwargs)


def solid(color, size=(40, 40)):
    return np.broadcast_to(np.array(color, np.uint8), (*size, 3)).copy()


@pytest.fixture
def photos(tmp_path):
    """A folder with six images in various modes plus files that must be skipped."""
    root = tmp_path / "photos"
    save(root / "a.png", solid((200, 30, 30)))
    save(root / "B.JPG", solid((30, 200, 30)), quality=95)
    save(root / "c_grey.png", np.full((40, 40), 90, np.uint8), "L")
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., 2] = 220
    rgba[..., 3] = 255
    save(root / "d_rgba.png", rgba, "RGBA")
    # non-square: left third red, the rest blue; the centre crop keeps only blue
    wide = solid((0, 0, 255), (30, 90))
    wide[:, :30] = (255, 0, 0)
    save(root / "e_wide.png", wide)
    save(root / "sub" / "f.jpeg", solid((120, 120, 0)), quality=95)
    save(root / ".hidden.png", solid((1, 2, 3)))
    save(root / ".cache" / "g.png", solid((1, 2, 3)))
    (root / "notes.txt").write_text("not an image")
    return root


def test_scan_order_count_and_skipped_files(photos):
    gen = FolderGenerator(str(photos), resolution=RES)
    assert gen.count() == 6
    assert [f.relative for f in gen.files] == ["B.JPG", "a.png", "c_grey.png", "d_rgba.png", "e_wide.png", "sub/f.jpeg"]
    assert FolderGenerator(str(photos), recursive=False).count() == 5


def test_batch_shape_dtype_records_and_colours(photos):
    gen = FolderGenerator(str(photos), resolution=RES)
    batch = gen.generate(range(6))
    assert batch.images.shape == (6, RES, RES, 3) and batch.images.dtype == np.uint8
    ids = [r.id for r in batch.records]
    assert ids[0] == "folder-00000000-real" and ids[5] == "folder-00000005-real"
    for seed, record in enumerate(batch.records):
        assert record.label == REAL and record.source == "folder" and record.seed == seed
        assert record.pair == f"folder-{seed:08d}" and record.format == "png"
        assert record.landmarks is None and record.masks == {} and record.artifacts == {}
    mean = batch.images.reshape(6, -1, 3).mean(axis=1)
    assert np.allclose(mean[0], (30, 200, 30), atol=6)  # JPEG, green
    assert np.allclose(mean[1], (200, 30, 30), atol=1)
    assert np.allclose(mean[2], (90, 90, 90), atol=1)  # greyscale to RGB
    assert np.allclose(mean[3], (0, 0, 220), atol=1)  # opaque RGBA keeps its colour


def test_centre_crop_removes_left_third(photos):
    image = FolderGenerator(str(photos), resolution=RES).generate([4]).images[0]
    assert image[..., 0].max() <= 2 and image[..., 2].min() >= 250


def test_exif_orientation_is_applied(tmp_path):
    halves = solid((0, 0, 255), (40, 40))
    halves[:, :20] = (255, 0, 0)  # left half red as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise: the stored left half is on top
    Image.fromarray(halves).save(tmp_path / "turned.jpg", quality=95, exif=exif)
    image = FolderGenerator(str(tmp_path), resolution=16).generate([0]).images[0].astype(int)
    assert image[2, 8, 0] > 200 and image[13, 8, 2] > 200  # red on top, blue below


def test_transparent_pixels_become_background(tmp_path):
    clear = np.zeros((20, 20, 4), np.uint8)
    save(tmp_path / "clear.png", clear, "RGBA")
    image = FolderGenerator(str(tmp_path), resolution=16).generate([0]).images[0]
    assert (image == 255).all()


def test_label_fake(photos):
    batch = FolderGenerator(str(photos), label="fake", resolution=RES).generate([1, 2])
    assert [r.id for r in batch.records] == ["folder-00000001-fake", "folder-00000002-fake"]
    assert all(r.label == FAKE and r.artifacts == {} for r in batch.records)


def test_artifacts_make_fakes_sharing_the_pair(photos):
    gen = FolderGenerator(str(photos), resolution=RES, artifacts="upsampling:0.5,none")
    batch = gen.generate([0, 4])
    assert [r.id for r in batch.records] == [
        "folder-00000000-real",
        "folder-00000004-real",
        "folder-00000000-upsampling-0.5",
        "folder-00000004-upsampling-0.5",
        "folder-00000000-none",
        "folder-00000004-none",
    ]
    real, fake = batch.records[1], batch.records[3]
    assert fake.pair == real.pair and fake.seed == real.seed and fake.label == FAKE
    assert fake.artifacts["upsampling"]["strength"] == 0.5
    assert not np.array_equal(batch.images[1], batch.images[3])  # the red/blue edge is blurred
    assert np.array_equal(batch.images[0], batch.images[4])  # "none" is a pixel-identical control


def test_artifact_needing_landmarks_raises(photos):
    gen = FolderGenerator(str(photos), resolution=RES, artifacts="eyes_fixed")
    with pytest.raises(ArtifactError, match="landmarks"):
        gen.generate([0])


def test_artifacts_with_label_fake_is_refused(photos):
    with pytest.raises(FolderError, match="label='real'"):
        FolderGenerator(str(photos), label="fake", artifacts="upsampling")


def test_seed_out_of_range_names_folder_and_count(photos):
    gen = FolderGenerator(str(photos), resolution=RES)
    with pytest.raises(FolderError, match=r"photos.*holds 6 images"):
        gen.generate([5, 6])
    with pytest.raises(FolderError, match="out of range"):
        gen.generate([-1])


def test_corrupt_file_error_names_the_file(photos):
    (photos / "z_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    gen = FolderGenerator(str(photos), resolution=RES)
    gen.generate([0])  # other files still load
    with pytest.raises(FolderError, match="z_broken.jpg"):
        gen.generate([6])


def test_constructor_validation(tmp_path, photos):
    with pytest.raises(FolderError, match="does not exist"):
        FolderGenerator(str(tmp_path / "missing"))
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(FolderError, match="not a folder"):
        FolderGenerator(str(tmp_path / "file.png"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FolderError, match="holds no images"):
        FolderGenerator(str(tmp_path / "empty"))
    with pytest.raises(FolderError, match="label"):
        FolderGenerator(str(photos), label="genuine")
    for bad in (8, 4096, 64.0, True):
        with pytest.raises(FolderError, match="resolution"):
            FolderGenerator(str(photos), resolution=bad)
    assert issubclass(FolderError, FacebenchError)


def test_content_digest_changes_when_folder_changes(photos):
    before = FolderGenerator(str(photos), resolution=RES).config()
    assert before == FolderGenerator(str(photos), resolution=RES).config()
    assert set(before) == {"path", "label", "resolution", "artifacts", "recursive", "content_digest"}
    save(photos / "zz_new.png", solid((5, 5, 5)))
    after = FolderGenerator(str(photos), resolution=RES).config()
    assert after["content_digest"] != before["content_digest"]
    save(photos / "zz_new.png", solid((5, 5, 5), (41, 41)))  # rewritten: new size and mtime
    assert FolderGenerator(str(photos), resolution=RES).config()["content_digest"] != after["content_digest"]


def test_deterministic(photos):
    first = FolderGenerator(str(photos), resolution=RES, artifacts="upsampling").generate([5, 0, 3])
    second = FolderGenerator(str(photos), resolution=RES, artifacts="upsampling").generate([5, 0, 3])
    assert first.images.tobytes() == second.images.tobytes()
    assert first.records == second.records


def test_registry_creates_it(photos):
    gen = registry.create("generator", "folder", path=str(photos), resolution=RES)
    assert isinstance(gen, FolderGenerator)
    with pytest.raises(registry.PluginError, match="does not exist"):
        registry.create("generator", "folder", path=str(photos / "nope"))


runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_cli_generate_and_verify(photos, tmp_path):
    from facebench.harness.data.corpus import Corpus, verify

    out = tmp_path / "corpus"
    result = invoke("generate", "folder", "--n", 3, "-p", f"path={photos}", "-p", f"resolution={RES}", "--out", out)
    assert result.exit_code == 0, result.output
    corpus = Corpus.open(out)
    assert corpus.meta["counts"] == {"images": 3, "real": 3, "fake": 0}
    assert "content_digest" in corpus.meta["generators"][0]["params"]
    assert verify(out).ok


def test_cli_too_many_seeds_is_one_clear_line(photos, tmp_path):
    result = invoke("generate", "folder", "--n", 7, "-p", f"path={photos}", "-p", f"resolution={RES}", "--out", tmp_path / "c")
    assert result.exit_code == 2  # checked before any work
    assert "holds 6 images" in result.stderr and "Traceback" not in result.output


def test_cli_list_shows_folder():
    result = invoke("list")
    assert result.exit_code == 0
    assert "folder" in result.stdout
