"""Issue 9, item 2: bad input images, in the folder generator and in the corpus reader.

Each bad file gives one clear error naming the file; a file in a colour mode that converts
safely to 8-bit RGB (RGBA, LA, palette, greyscale, bilevel, 16-bit, CMYK) is converted, and the
folder generator records what it was in the record's meta (``{"converted_from": "RGBA"}``).
A file whose header claims a huge size is refused before its pixels are decoded.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from facebench.generators.folder import FolderError, FolderGenerator
from facebench.harness.cli import app
from facebench.harness.data.corpus import Corpus, CorpusError, write_corpus
from facebench.harness.contracts.types import Batch, Record

SIZE = 24


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_claiming(width: int, height: int) -> bytes:
    """A 60-byte PNG whose header claims ``width`` x ``height`` RGB pixels (and holds none)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"\0" * 8)) + _chunk(b"IEND", b"")


def encoded(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def rgb(size: int = SIZE) -> Image.Image:
    return Image.fromarray(np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8))


def bad_files() -> dict[str, tuple[str, bytes]]:
    """name -> (file name, bytes) of files that cannot be used."""
    png, jpeg = encoded(rgb(), "PNG"), encoded(rgb(), "JPEG", quality=90)
    return {
        "zero-byte": ("empty.png", b""),
        "not-an-image": ("text.png", b"just some text, not an image\n"),
        "corrupt-png": ("corrupt.png", png[:33] + bytes(range(256)) * 4),
        "truncated-png": ("truncated.png", png[: len(png) // 2]),
        "truncated-jpeg": ("truncated.jpg", jpeg[: len(jpeg) // 2]),
        "corrupt-jpeg": ("corrupt.jpg", jpeg[:20] + b"\x00" * 200),
        "bomb": ("bomb.png", png_claiming(100_000, 100_000)),  # 10^10 pixels: Pillow's DecompressionBombError
        "large": ("large.png", png_claiming(10_000, 10_000)),  # 10^8 pixels: over MAX_IMAGE_PIXELS, under 2x
    }


def convertible_files() -> dict[str, tuple[str, bytes, np.ndarray]]:
    """mode -> (file name, bytes, the RGB pixels it must become)."""
    rng = np.random.default_rng(1)
    grey = rng.integers(0, 256, (SIZE, SIZE), dtype=np.uint8)
    grey_rgb = np.repeat(grey[..., None], 3, axis=2)
    rgba = np.zeros((SIZE, SIZE, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 255
    rgba[:, : SIZE // 2, 3] = 0  # the left half transparent: composited onto white
    rgba_rgb = np.zeros((SIZE, SIZE, 3), np.uint8)
    rgba_rgb[..., 0] = 200
    rgba_rgb[:, : SIZE // 2] = 255
    deep = (grey.astype(np.uint16) * 257).astype(np.uint16)  # 16-bit: 8-bit value v is 257 v
    palette = Image.fromarray(grey_rgb).quantize(colors=16)
    cmyk = Image.new("CMYK", (SIZE, SIZE), (0, 255, 0, 0))  # no magenta ink... all magenta: (255, 0, 255)
    return {
        "L": ("grey.png", encoded(Image.fromarray(grey, "L"), "PNG"), grey_rgb),
        "RGBA": ("rgba.png", encoded(Image.fromarray(rgba, "RGBA"), "PNG"), rgba_rgb),
        "LA": ("la.png", encoded(Image.fromarray(rgba[..., [0, 3]], "LA"), "PNG"), np.repeat(rgba_rgb[..., :1], 3, axis=2)),
        "P": ("palette.png", encoded(palette, "PNG"), np.asarray(palette.convert("RGB"))),
        "I;16": ("deep.png", encoded(Image.fromarray(deep), "PNG"), grey_rgb),
        "1": ("bilevel.bmp", encoded(Image.fromarray(grey > 127), "BMP"),
              np.repeat(((grey > 127) * 255).astype(np.uint8)[..., None], 3, 2)),
        "CMYK": ("cmyk.jpg", encoded(cmyk, "JPEG", quality=95), np.broadcast_to(np.array([255, 0, 255], np.uint8), (SIZE, SIZE, 3))),
    }


def one_line_naming(exc: BaseException, name: str) -> str:
    text = str(exc)
    assert name in text and "\n" not in text, text
    return text


# -- the folder generator ----------------------------------------------------------------------


@pytest.mark.parametrize("case", list(bad_files()))
def test_folder_refuses_a_bad_file_naming_it_and_still_reads_the_others(tmp_path, case):
    name, data = bad_files()[case]
    (tmp_path / "a_good.png").write_bytes(encoded(rgb(), "PNG"))
    (tmp_path / name).write_bytes(data)
    generator = FolderGenerator(str(tmp_path), resolution=16)
    assert [f.relative for f in generator.files] == ["a_good.png", name]
    assert generator.generate([0]).images.shape == (1, 16, 16, 3)
    with pytest.raises(FolderError) as info:
        generator.generate([1])
    text = one_line_naming(info.value, name)
    if case in ("bomb", "large"):
        assert "too large to decode safely" in text and "MAX_IMAGE_PIXELS" in text


@pytest.mark.parametrize("mode", list(convertible_files()))
def test_folder_converts_safe_modes_to_rgb_and_records_it(tmp_path, mode):
    name, data, expected = convertible_files()[mode]
    (tmp_path / name).write_bytes(data)
    with Image.open(tmp_path / name) as opened:
        assert opened.mode == mode  # the file really is in that mode
    batch = FolderGenerator(str(tmp_path), resolution=SIZE).generate([0])
    assert batch.records[0].meta == {"converted_from": mode}
    tolerance = 3 if name.endswith(".jpg") else 1  # same size: the resize leaves pixels as they are (+-1)
    np.testing.assert_allclose(batch.images[0].astype(int), expected.astype(int), atol=tolerance)


def test_folder_rgb_files_carry_no_conversion_note_and_fakes_inherit_it(tmp_path):
    (tmp_path / "a.png").write_bytes(encoded(rgb(), "PNG"))
    (tmp_path / "b.png").write_bytes(convertible_files()["RGBA"][1])
    batch = FolderGenerator(str(tmp_path), resolution=16, artifacts="upsampling:0.5").generate([0, 1])
    metas = {r.id: r.meta for r in batch.records}
    assert metas == {"folder-00000000-real": {}, "folder-00000001-real": {"converted_from": "RGBA"},
                     "folder-00000000-upsampling-0.5": {}, "folder-00000001-upsampling-0.5": {"converted_from": "RGBA"}}


def test_cli_generate_from_a_folder_with_a_bad_file_is_one_line_and_writes_nothing(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.png").write_bytes(encoded(rgb(), "PNG"))
    (photos / "b.png").write_bytes(bad_files()["truncated-png"][1])
    out = tmp_path / "corpora" / "photos"
    result = CliRunner().invoke(app, ["generate", "folder", "--n", "2", "-p", f"path={photos}", "-p", "resolution=16",
                                      "--out", str(out)])
    assert result.exit_code == 1
    assert "b.png" in result.stderr and "Traceback" not in result.output
    assert list((tmp_path / "corpora").iterdir()) == []  # neither the corpus nor a hidden partial folder


# -- the corpus reader -------------------------------------------------------------------------


@pytest.fixture
def corpus(tmp_path) -> Corpus:
    images = np.stack([np.asarray(rgb()), np.asarray(rgb())[::-1]])
    records = [Record(id=f"i{k}", label=k, source="test", source_version="1", seed=k, pair="p") for k in (0, 1)]
    return write_corpus(tmp_path / "corpus", [Batch(images, records)], [{"name": "test"}])


def _replace_first_image(corpus: Corpus, data: bytes) -> Path:
    path = corpus.root / corpus.rows()[0]["path"]
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", list(bad_files()))
def test_corpus_reader_refuses_a_bad_image_naming_it(corpus, case):
    path = _replace_first_image(corpus, bad_files()[case][1])
    with pytest.raises(CorpusError) as info:
        corpus.load_images()
    text = one_line_naming(info.value, str(path))
    if case in ("bomb", "large"):
        assert "manifest says 24x24" in text or "cannot be decoded" in text
    assert corpus.load_images(corpus.rows()[1:]).shape == (1, SIZE, SIZE, 3)  # the other image still loads


@pytest.mark.parametrize("mode", list(convertible_files()))
def test_corpus_reader_converts_safe_modes_to_rgb(corpus, mode):
    _, data, expected = convertible_files()[mode]
    _replace_first_image(corpus, data)
    image = corpus.load_images(corpus.rows()[:1])[0]
    assert image.dtype == np.uint8 and image.shape == (SIZE, SIZE, 3)
    np.testing.assert_allclose(image.astype(int), expected.astype(int), atol=3)


def test_corpus_reader_refuses_an_image_of_another_size_before_decoding(corpus):
    path = _replace_first_image(corpus, encoded(rgb(SIZE * 2), "PNG"))
    with pytest.raises(CorpusError, match=r"48x48, manifest says 24x24"):
        corpus.load_images()
    assert path.exists()
