"""Issue 9, item 3: a damaged or hostile manifest / corpus.json is one clear CorpusError
naming the file and the row, column or key, never another exception and never a read
outside the corpus folder.

Suites are covered elsewhere: malformed TOML, unknown keys, wrong types and negative counts
in ``tests/test_suite.py`` (test_bad_suites_name_the_file_and_key) and
``tests/test_protocols.py`` (test_unknown_protocol_key_names_the_key_and_the_file); unknown
plug-in parameters in ``tests/test_registry.py`` (test_unknown_parameter_gets_did_you_mean)
and, for a whole run, below.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from facebench.harness.cli import app
from facebench.harness.data.corpus import Corpus, CorpusError, verify, write_corpus

from conftest import synthetic_batch


@pytest.fixture
def corpus(tmp_path) -> Corpus:
    return write_corpus(tmp_path / "corpus", [synthetic_batch(range(2), size=16, with_mask=True)], [{"name": "synthetic"}])


def rewrite_manifest(corpus: Corpus, change) -> Path:
    path = corpus.root / "manifest.parquet"
    pq.write_table(change(pq.read_table(path)), path)
    return path


def set_column(table: pa.Table, name: str, values, type_=None) -> pa.Table:
    array = pa.array(values, type=type_)
    return table.set_column(table.schema.get_field_index(name), name, array)


def with_value(name: str, row: int, value, type_=None):
    def change(table: pa.Table) -> pa.Table:
        values = table.column(name).to_pylist()
        values[row] = value
        return set_column(table, name, values, type_ or table.schema.field(name).type)
    return change


def opened_and_used(root: Path) -> None:
    """Everything a run reads from a corpus's manifest."""
    corpus = Corpus.open(root)
    corpus.records(), corpus.labels, corpus.ids, corpus.digest
    corpus.split(0.5), corpus.select(artifact="brighten"), corpus.select(label=1, source="synthetic")


MANIFEST_CASES = {
    "absolute path": (with_value("path", 0, "/etc/passwd"), "'/etc/passwd' is not a relative path inside the corpus"),
    "dot-dot path": (with_value("path", 1, "images/../../outside.png"), "not a relative path inside the corpus"),
    "backslash path": (with_value("path", 1, "..\\..\\outside.png"), "not a relative path inside the corpus"),
    "empty path": (with_value("path", 2, ""), "not a relative path inside the corpus"),
    "duplicate id": (with_value("id", 3, "s0000-real"), "image id 's0000-real' appears more than once"),
    "missing column": (lambda t: t.drop_columns(["label"]), "missing columns label"),
    "two missing columns": (lambda t: t.drop_columns(["path", "sha256"]), "missing columns path, sha256"),
    "label as text": (lambda t: set_column(t, "label", ["real", "fake", "real", "fake"]), "column 'label' is string, expected int8"),
    "label out of range": (with_value("label", 1, 7), "row 1 (id 's0000-fake'): label must be 0 (real) or 1 (fake)"),
    "width as text": (lambda t: set_column(t, "width", ["16", "16", "sixteen", "16"]), "column 'width' is string, expected int32"),
    "fractional seed": (lambda t: set_column(t, "seed", [0.5, 0.0, 1.0, 1.0]), "column 'seed' is double, expected int64"),
    "artifact names as text": (lambda t: set_column(t, "artifact_names", ["a", "b", "c", "d"]), "column 'artifact_names' is string"),
    "null id": (with_value("id", 2, None), "column 'id' is empty (null) in row 2"),
    "null path": (with_value("path", 0, None), "column 'path' is empty (null) in row 0"),
    "zero width": (with_value("width", 0, 0), "width and height must be positive"),
    "unknown format": (with_value("format", 0, "gif"), "format must be one of"),
}


@pytest.mark.parametrize("case", list(MANIFEST_CASES))
def test_a_damaged_manifest_is_one_corpus_error_naming_the_file_and_the_fault(corpus, case):
    change, message = MANIFEST_CASES[case]
    path = rewrite_manifest(corpus, change)
    with pytest.raises(CorpusError) as info:
        opened_and_used(corpus.root)
    text = str(info.value)
    assert str(path) in text and message in text and "\n" not in text, text


def test_compatible_column_types_from_other_writers_are_accepted(corpus):
    """pandas writes int64 labels and large strings: safe casts are fine."""
    rewrite_manifest(corpus, lambda t: set_column(set_column(t, "label", t.column("label").to_pylist(), pa.int64()),
                                                  "id", t.column("id").to_pylist(), pa.large_string()))
    opened_and_used(corpus.root)
    assert Corpus.open(corpus.root).load_images().shape == (4, 16, 16, 3)


ROW_CASES = {
    "artifacts not JSON": ("artifacts", "{not json"),
    "artifacts a list": ("artifacts", "[1, 2]"),
    "artifact without strength": ("artifacts", '{"brighten": {"amount": 1}}'),
    "landmarks not pairs": ("landmarks", '{"eye_left": 3}'),
    "meta a list": ("meta", "[]"),
    "unsafe id": ("id", "../escape"),
}


@pytest.mark.parametrize("case", list(ROW_CASES))
def test_a_malformed_row_names_the_manifest_and_the_row(corpus, case):
    column, value = ROW_CASES[case]
    rewrite_manifest(corpus, with_value(column, 1, value))
    with pytest.raises(CorpusError, match=r"manifest\.parquet: row with id .* is malformed"):
        Corpus.open(corpus.root).records()


def test_malformed_masks_name_the_row_in_load_mask_and_verify(corpus):
    rewrite_manifest(corpus, with_value("masks", 1, '{"brighten": "masks/x.png"}'))
    reopened = Corpus.open(corpus.root)
    with pytest.raises(CorpusError, match=r"row with id 's0000-fake': masks is malformed"):
        reopened.load_mask(reopened.rows()[1], "brighten")
    with pytest.raises(CorpusError, match=r"masks is malformed"):
        verify(corpus.root)


def test_a_mask_path_escaping_the_corpus_is_refused(corpus, tmp_path):
    (tmp_path / "secret.png").write_bytes(b"")
    rewrite_manifest(corpus, with_value("masks", 1, json.dumps({"brighten": {"path": "../secret.png", "sha256": "0"}})))
    reopened = Corpus.open(corpus.root)
    with pytest.raises(CorpusError, match="not a relative path inside the corpus"):
        reopened.load_mask(reopened.rows()[1], "brighten")
    with pytest.raises(CorpusError, match="not a relative path inside the corpus"):
        verify(corpus.root)


def meta_edit(change):
    def edit(root: Path) -> None:
        path = root / "corpus.json"
        meta = json.loads(path.read_text())
        change(meta)
        path.write_text(json.dumps(meta))
    return edit


def write_bytes(name: str, data: bytes):
    return lambda root: (root / name).write_bytes(data)


CORPUS_JSON_CASES = {
    "newer format version": (meta_edit(lambda m: m.update(format_version=99)), "corpus.json", "format version 99 is newer"),
    "version as text": (meta_edit(lambda m: m.update(format_version="1")), "corpus.json", "format_version '1' is not"),
    "version as bool": (meta_edit(lambda m: m.update(format_version=True)), "corpus.json", "format_version True is not"),
    "no digest": (meta_edit(lambda m: m.pop("digest")), "corpus.json", "'digest' is missing"),
    "counts not a table": (meta_edit(lambda m: m.update(counts=3)), "corpus.json", "'counts' is missing or not a dict"),
    "another format": (meta_edit(lambda m: m.update(format="other")), "corpus.json", "not a facebench corpus"),
    "not JSON": (write_bytes("corpus.json", b"{ this is not json"), "corpus.json", "unreadable"),
    "binary garbage": (write_bytes("corpus.json", bytes(range(256))), "corpus.json", "unreadable"),
    "a JSON list": (write_bytes("corpus.json", b"[1, 2]"), "corpus.json", "not a facebench corpus"),
    "manifest not parquet": (write_bytes("manifest.parquet", b"PAR1 garbage"), "manifest.parquet", "unreadable"),
    "manifest missing": (lambda root: (root / "manifest.parquet").unlink(), "manifest.parquet", "unreadable"),
    "corpus.json missing": (lambda root: (root / "corpus.json").unlink(), "", "not a complete corpus"),
}


@pytest.mark.parametrize("case", list(CORPUS_JSON_CASES))
def test_a_damaged_corpus_json_is_one_corpus_error_naming_the_file(corpus, case):
    damage, name, message = CORPUS_JSON_CASES[case]
    damage(corpus.root)
    with pytest.raises(CorpusError) as info:
        opened_and_used(corpus.root)
    text = str(info.value)
    assert str(corpus.root / name) in text and message in text and "\n" not in text, text


def test_the_cli_reports_a_damaged_corpus_in_one_line(corpus, tmp_path):
    rewrite_manifest(corpus, MANIFEST_CASES["absolute path"][0])
    for command in (["corpus", "verify", str(corpus.root)], ["detect", "spectrum", str(corpus.root), "--results", str(tmp_path / "r")]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 1
        assert "not a relative path inside the corpus" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "r").exists()  # nothing was stored


def test_a_suite_with_an_unknown_parameter_fails_before_any_work(tmp_path):
    suite = tmp_path / "s.toml"
    suite.write_text('[[generators]]\nname = "parametric"\ncount = 4\n[[detectors]]\nname = "spectrum"\n'
                     '[detectors.params]\nnbins = 3\n')
    result = CliRunner().invoke(app, ["run", str(suite), "--results", str(tmp_path / "results"), "--no-progress"])
    assert result.exit_code == 2 and "no parameter 'nbins'" in result.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.skipif(not hasattr(Path, "symlink_to"), reason="needs symbolic links")
def test_an_image_that_is_a_link_out_of_the_corpus_is_refused(corpus, tmp_path):
    outside = tmp_path / "outside.png"
    row = corpus.rows()[0]
    image = corpus.root / row["path"]
    outside.write_bytes(image.read_bytes())
    image.unlink()
    image.symlink_to(outside)
    with pytest.raises(CorpusError, match="symbolic link that leads out of the corpus"):
        corpus.load_images()
    with pytest.raises(CorpusError, match="symbolic link that leads out of the corpus"):
        verify(corpus.root)
    image.unlink()
    image.symlink_to(Path("..") / Path(corpus.rows()[1]["path"]).relative_to("images"))  # a link inside is fine
    corpus.load_images()


def test_a_path_naming_the_corpus_folder_itself_is_refused(corpus):
    rewrite_manifest(corpus, with_value("path", 0, "."))
    with pytest.raises(CorpusError, match="'.' is not a relative path inside the corpus"):
        Corpus.open(corpus.root)
