import numpy as np
from PIL import Image
from typer.testing import CliRunner

from facebench.harness.cli import app
from facebench.harness.corpus import write_corpus
from facebench.harness.gallery import OUTLINE, contact_sheet

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
