import numpy as np
from PIL import Image
from typer.testing import CliRunner

from facebench.harness.cli import app
from facebench.harness.data.corpus import write_corpus
from facebench.harness.report.gallery import OUTLINE, contact_sheet

from conftest import synthetic_batch


def test_contact_sheet_rows_are_pairs_with_masks_outlined(tmp_path):
    corpus = write_corpus(tmp_path / "c", [synthetic_batch(range(5), size=32, with_mask=True)], [{}])
    sheet = np.asarray(contact_sheet(corpus, pairs=3, tile=32))
    assert sheet.shape == (3 * (32 + 16), 2 * 32, 3)
    real_tile, fake_tile = sheet[:32, :32], sheet[:32, 32:64]
    red = np.all(fake_tile == OUTLINE, axis=-1)
    assert red.sum() > 10  # the fake's mask (top-left block) is outlined
    assert red[20:, :].sum() == 0  # and only around the mask
    assert not np.all(real_tile == OUTLINE, axis=-1).any()


def test_gallery_command_writes_png(tmp_path):
    write_corpus(tmp_path / "c", [synthetic_batch(range(2), size=32)], [{}])
    result = CliRunner().invoke(app, ["gallery", str(tmp_path / "c"), "--out", str(tmp_path / "g.png"), "--tile", "32"])
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "g.png").size == (64, 2 * 48)


def test_small_masks_are_boxed_and_zoomed_and_region_masks_are_not_drawn(tmp_path):
    from facebench.harness.contracts.types import Batch, Record

    size = 100
    image = np.full((size, size, 3), 128, np.uint8)
    small = np.zeros((size, size), bool)
    small[40:43, 60:63] = True  # a 3x3 px artifact, like a corneal highlight
    face = np.zeros((size, size), bool)
    face[10:90, 10:90] = True
    common = dict(source="s", source_version="1", seed=0, pair="p0")
    records = [
        Record(id="p0-real", label=0, masks={"face": face}, **common),
        Record(id="p0-fake", label=1, artifacts={"spot": {"strength": 1.0}}, masks={"face": face, "spot": small}, **common),
    ]
    corpus = write_corpus(tmp_path / "c", [Batch(np.stack([image, image]), records)], [{}])
    tile = 100
    sheet = np.asarray(contact_sheet(corpus, pairs=1, tile=tile))
    real_tile, fake_tile = sheet[:tile, :tile], sheet[:tile, tile : 2 * tile]
    assert not np.all(real_tile == OUTLINE, axis=-1).any()  # the face region mask is ground truth, not drawn
    red = np.all(fake_tile == OUTLINE, axis=-1)
    inset = tile // 2
    assert red[tile - inset, tile - inset :].all() and red[tile - inset :, tile - 1].all()  # the inset's frame
    assert red[30:39, 50:60].any()  # the box around the spot, in the main image
    zoomed_spot = red[tile - inset + 1 : -1, tile - inset + 1 : -1]
    assert zoomed_spot.sum() > 20  # the spot outlined, magnified


def _one_pair_corpus(tmp_path, records_and_images):
    from facebench.harness.contracts.types import Batch

    records, images = zip(*records_and_images)
    return write_corpus(tmp_path / "c", [Batch(np.stack(images), list(records))], [{}])


def test_labels_stay_inside_their_tile_at_small_tiles(tmp_path):
    from facebench.harness.contracts.types import Record

    size, tile = 64, 32
    common = dict(source="s", source_version="1", seed=0, pair="p0")
    image = np.full((size, size, 3), 90, np.uint8)
    corpus = _one_pair_corpus(tmp_path, [
        (Record(id="p0-real", label=0, **common), image),
        (Record(id="p0-a", label=1, artifacts={"upsampling": {"strength": 1.0}, "eyes_fixed": {"strength": 1.0}},
                **common), image),
        (Record(id="p0-b", label=1, artifacts={"checkerboard_pattern": {"strength": 1.0}}, **common), image),
    ])
    sheet = np.asarray(contact_sheet(corpus, pairs=1, tile=tile))
    labels = sheet[tile:].max(axis=-1) > 150  # light text on the dark strip under the tiles
    assert labels.any()
    for column in (1, 2):  # text starts 3 px into its own tile: no label may run into the next one's margin
        assert not labels[:, column * tile : column * tile + 2].any(), column
    assert not labels[:, -1].any()  # nor off the sheet's right edge


def test_the_inset_never_covers_the_spot_it_magnifies(tmp_path):
    from facebench.harness.contracts.types import Record

    size = tile = 100
    spot = np.zeros((size, size), bool)
    spot[88:91, 86:89] = True  # in the bottom-right corner, where the inset used to go
    common = dict(source="s", source_version="1", seed=0, pair="p0")
    image = np.full((size, size, 3), 128, np.uint8)
    corpus = _one_pair_corpus(tmp_path, [
        (Record(id="p0-real", label=0, **common), image),
        (Record(id="p0-fake", label=1, artifacts={"spot": {"strength": 1.0}}, masks={"spot": spot}, **common), image),
    ])
    fake_tile = np.asarray(contact_sheet(corpus, pairs=1, tile=tile))[:tile, tile : 2 * tile]
    red = np.all(fake_tile == OUTLINE, axis=-1)
    assert red[78:100, 76:99].any()  # the box around the spot is still drawn, not covered
    assert not red[86:93, 84:91].all()  # and the spot area itself shows the image, not an inset
    inset = tile // 2
    corners = {"top-left": red[0, :inset].all(), "top-right": red[0, tile - inset :].all(),
               "bottom-left": red[tile - 1, :inset].all(), "bottom-right": red[tile - 1, tile - inset :].all()}
    framed = [name for name, edge in corners.items() if edge]
    assert framed and "bottom-right" not in framed, corners


def test_an_unedited_fake_comes_first_when_the_corpus_has_no_reals(tmp_path):
    """StyleGAN2 corpora: every image is a fake; the unedited one (no artifact) is the row's reference."""
    from facebench.harness.contracts.types import Record

    size = tile = 32
    common = dict(source="stylegan2", source_version="1", seed=1, pair="stylegan2-00000001")
    corpus = _one_pair_corpus(tmp_path, [
        (Record(id="stylegan2-00000001-blob", label=1, artifacts={"blob": {"strength": 1.0}}, **common),
         np.full((size, size, 3), 200, np.uint8)),
        (Record(id="stylegan2-00000001-fake", label=1, **common), np.full((size, size, 3), 20, np.uint8)),
    ])
    sheet = np.asarray(contact_sheet(corpus, pairs=1, tile=tile))
    assert sheet[: tile // 2, : tile // 2].mean() < 60  # the dark, unedited image first
    assert sheet[: tile // 2, tile : tile + tile // 2].mean() > 150
