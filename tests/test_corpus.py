import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from facebench.harness.data.corpus import Corpus, CorpusError, CorpusWriter, verify, write_corpus
from facebench.harness.contracts.types import Batch

from conftest import synthetic_batch

GEN = [{"name": "synthetic", "params": {}}]


def test_round_trip_same_pixels_and_records(tmp_path):
    batch = synthetic_batch(range(5), with_mask=True)
    batch.records[1] = batch.records[1].with_changes(meta={"truncation_psi": 0.7, "network_sha256": "ab12"})
    corpus = write_corpus(tmp_path / "c", [batch], GEN)
    reopened = Corpus.open(tmp_path / "c")
    assert reopened.digest == corpus.digest
    assert reopened.meta["counts"] == {"images": 10, "real": 5, "fake": 5}
    by_id = {r.id: (img, r) for img, r in zip(batch.images, batch.records)}
    rows = reopened.rows()
    images = reopened.load_images(rows)
    for row, image, record in zip(rows, images, reopened.records()):
        original_image, original = by_id[row["id"]]
        np.testing.assert_array_equal(image, original_image)
        assert record.label == original.label
        assert record.pair == original.pair
        assert record.seed == original.seed
        assert record.artifacts == original.artifacts
        assert record.landmarks == original.landmarks
        assert record.meta == original.meta
        for name, mask in original.masks.items():
            np.testing.assert_array_equal(reopened.load_mask(row, name), mask)


def test_a_manifest_without_meta_reads_as_empty_meta(tmp_path):
    write_corpus(tmp_path / "c", [synthetic_batch(range(2))], GEN)
    path = tmp_path / "c" / "manifest.parquet"
    pq.write_table(pq.read_table(path).drop_columns(["meta"]), path)  # as written before meta existed
    assert all(record.meta == {} for record in Corpus.open(tmp_path / "c").records())


def test_digest_depends_on_content_not_order(tmp_path):
    batch = synthetic_batch(range(4))
    reversed_batch = Batch(batch.images[::-1].copy(), batch.records[::-1])
    a = write_corpus(tmp_path / "a", [batch], GEN)
    b = write_corpus(tmp_path / "b", [reversed_batch], GEN)
    assert a.digest == b.digest
    changed = synthetic_batch(range(4))
    changed.images[0, 0, 0, 0] ^= 1
    assert write_corpus(tmp_path / "c", [changed], GEN).digest != a.digest


def test_manifest_readable_without_facebench(tmp_path):
    write_corpus(tmp_path / "c", [synthetic_batch(range(3))], GEN)
    table = pq.read_table(tmp_path / "c" / "manifest.parquet")
    assert table.num_rows == 6
    assert set(table.column("label").to_pylist()) == {0, 1}
    assert all(not p.startswith("/") for p in table.column("path").to_pylist())


def test_interrupted_write_leaves_no_complete_corpus(tmp_path):
    target = tmp_path / "c"

    def batches():
        yield synthetic_batch(range(3))
        raise KeyboardInterrupt  # the user pressed Ctrl-C mid-way

    with pytest.raises(KeyboardInterrupt):
        write_corpus(target, batches(), GEN)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []  # the partial folder is cleaned up
    with pytest.raises(CorpusError, match="no such corpus"):
        Corpus.open(target)


def test_killed_write_leaves_partial_folder_that_does_not_open(tmp_path):
    writer = CorpusWriter(tmp_path / "c", GEN)
    writer.write(synthetic_batch(range(2)))
    # a kill -9 here never reaches close(): the hidden partial folder has images but no corpus.json
    partial = writer._tmp
    assert any(partial.rglob("*.png"))
    assert not (tmp_path / "c").exists()
    with pytest.raises(CorpusError, match="not a complete corpus"):
        Corpus.open(partial)


def test_existing_destination_is_refused_without_overwrite(tmp_path):
    write_corpus(tmp_path / "c", [synthetic_batch(range(1))], GEN)
    with pytest.raises(CorpusError, match="already exists"):
        write_corpus(tmp_path / "c", [synthetic_batch(range(1))], GEN)
    again = write_corpus(tmp_path / "c", [synthetic_batch(range(2))], GEN, overwrite=True)
    assert len(again) == 4


def test_duplicate_ids_are_refused(tmp_path):
    batch = synthetic_batch(range(1))
    with pytest.raises(CorpusError, match="duplicate image id"):
        write_corpus(tmp_path / "c", [batch, batch], GEN)
    assert not (tmp_path / "c").exists()


def test_verify_catches_flipped_byte_missing_and_extra(tmp_path):
    corpus = write_corpus(tmp_path / "c", [synthetic_batch(range(3), with_mask=True)], GEN)
    assert verify(corpus.root).ok
    rows = corpus.rows()
    flipped = corpus.root / rows[0]["path"]
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2] ^= 0x01
    flipped.write_bytes(bytes(data))
    (corpus.root / rows[1]["path"]).unlink()
    mask_path = json.loads(rows[3]["masks"])["brighten"]["path"]
    (corpus.root / mask_path).write_bytes(b"not a png")
    (corpus.root / "images" / "stray.png").write_bytes(b"x")
    report = verify(corpus.root)
    assert set(report.corrupt) == {rows[0]["path"], mask_path}
    assert report.missing == [rows[1]["path"]]
    assert report.extra == ["images/stray.png"]
    assert not report.ok


def test_split_by_pair_is_deterministic_and_keeps_pairs_together(tmp_path):
    corpus = write_corpus(tmp_path / "c", [synthetic_batch(range(40))], GEN)
    train, test = corpus.split(0.5, seed=3)
    assert len(train) + len(test) == len(corpus)
    train_pairs = {r["pair"] for r in train.rows()}
    test_pairs = {r["pair"] for r in test.rows()}
    assert train_pairs and test_pairs and not train_pairs & test_pairs
    assert 10 <= len(test_pairs) <= 30
    again_train, again_test = Corpus.open(corpus.root).split(0.5, seed=3)
    assert again_test.ids == test.ids
    # a pair's side does not depend on which other pairs are in the corpus
    small = write_corpus(tmp_path / "small", [synthetic_batch(range(10))], GEN)
    small_test = {r["pair"] for r in small.split(0.5, seed=3)[1].rows()}
    assert small_test == {p for p in test_pairs if int(p[1:]) < 10}
    assert corpus.split(0.5, seed=4)[1].ids != test.ids


def test_select_filters(tmp_path):
    corpus = write_corpus(tmp_path / "c", [synthetic_batch(range(4))], GEN)
    assert set(corpus.select(label=1).labels) == {1}
    assert len(corpus.select(source="synthetic")) == 8
    assert len(corpus.select(source="other")) == 0
    with_artifact = corpus.select(artifact="brighten")
    assert len(with_artifact) == 8  # fakes carrying it, plus every real
    assert len(corpus.select(artifact="missing")) == 4  # reals only
    assert corpus.select(ids=["s0001-fake"]).ids == ["s0001-fake"]


def test_iter_batches_is_bounded(tmp_path):
    corpus = write_corpus(tmp_path / "c", [synthetic_batch(range(5))], GEN)
    sizes = [len(images) for _, images in corpus.iter_batches(3)]
    assert sizes == [3, 3, 3, 1]
    with pytest.raises(ValueError):
        next(corpus.iter_batches(0))


def test_manifest_path_escaping_the_corpus_is_refused(tmp_path):
    corpus = write_corpus(tmp_path / "c", [synthetic_batch(range(1))], GEN)
    table = pq.read_table(corpus.root / "manifest.parquet")
    paths = table.column("path").to_pylist()
    paths[0] = "../../etc/passwd"
    table = table.set_column(table.schema.get_field_index("path"), "path", [paths])
    pq.write_table(table, corpus.root / "manifest.parquet")
    with pytest.raises(CorpusError, match="not a relative path inside the corpus"):
        Corpus.open(corpus.root)


def test_newer_format_version_is_refused(tmp_path):
    corpus = write_corpus(tmp_path / "c", [synthetic_batch(range(1))], GEN)
    meta = json.loads((corpus.root / "corpus.json").read_text())
    meta["format_version"] = 99
    (corpus.root / "corpus.json").write_text(json.dumps(meta))
    with pytest.raises(CorpusError, match="newer than this facebench reads"):
        Corpus.open(corpus.root)


def test_missing_image_gives_clear_error(tmp_path):
    corpus = write_corpus(tmp_path / "c", [synthetic_batch(range(2))], GEN)
    row = corpus.rows()[0]
    (corpus.root / row["path"]).unlink()
    with pytest.raises(CorpusError, match="is missing"):
        corpus.load_images()
