"""Issue 9, item 7: property-based tests of the readers and the metrics (hypothesis).

- The corpus reader: any manifest table (columns missing, of other types, with odd values)
  and any corpus.json give a usable Corpus or a CorpusError, never another exception.
- The suite parser: any TOML-like dict gives a Suite or a SuiteError.
- The metrics: AUC in [0, 1], AUC(s) + AUC(-s) = 1, invariance to increasing transforms,
  rates in [0, 1], ordered and deterministic bootstrap intervals.

``benchmarks/fuzz_readers.py`` runs the reader properties for longer.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from facebench.harness.data.corpus import FORMAT_NAME, MANIFEST_SCHEMA, Corpus, CorpusError, verify  # noqa: E402
from facebench.harness.run.metrics import compute_metrics, metrics_with_ci  # noqa: E402
from facebench.harness.data.suite import Suite, SuiteError, parse_suite  # noqa: E402

SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- the corpus reader -------------------------------------------------------------------------

ODD_TEXT = st.text(alphabet=st.sampled_from("ab./\\\x00 é{}[]\":,0"), max_size=8)
PATHS = st.sampled_from(["images/ab/x.png", "images/ab/y.jpg", "/etc/passwd", "../x.png", "a/../../b.png", "", ".",
                         "a\\b.png", "corpus.json", "manifest.parquet", "images", "./images/ab/x.png"]) | ODD_TEXT
JSON_TEXT = {
    "artifacts": st.sampled_from(['{}', '{"a": {"strength": 0.5}}', '{"a": 1}', '{"a": {}}', '[]', 'null', '{', '"x"']),
    "landmarks": st.sampled_from([None, '{"eye_left": [1, 2]}', '{"eye_left": 1}', '{"e": [1]}', '{"e": "ab"}', '[]', 'x']),
    "masks": st.sampled_from(['{}', '{"a": {"path": "m.png", "sha256": "0"}}', '{"a": {"path": "../m.png", "sha256": "0"}}',
                              '{"a": "p"}', '{"a": {"path": 3}}', '[]', '{']),
    "meta": st.sampled_from([None, '{}', '{"k": 1}', '[]', '{', '3']),
}
PROPER = {
    "id": st.sampled_from(["a", "b", "c", "d"]) | ODD_TEXT,
    "label": st.integers(-1, 2),
    "source": ODD_TEXT, "source_version": ODD_TEXT, "pair": st.sampled_from(["p0", "p1", "p2"]) | ODD_TEXT,
    "seed": st.integers(-(2**63), 2**63 - 1),
    "artifact_names": st.lists(st.sampled_from(["a", "b"]) | st.none(), max_size=2),
    "path": PATHS,
    "width": st.integers(-1, 32), "height": st.integers(-1, 32),
    "format": st.sampled_from(["png", "jpg", "gif", ""]),
    "sha256": ODD_TEXT,
    **JSON_TEXT,
}
OTHER_TYPES = {
    "text": (pa.string(), ODD_TEXT),
    "int": (pa.int64(), st.integers(-(2**63), 2**63 - 1)),
    "float": (pa.float64(), st.floats(allow_nan=True, allow_infinity=True)),
    "bool": (pa.bool_(), st.booleans()),
}


@st.composite
def manifests(draw) -> pa.Table:
    n = draw(st.integers(0, 4))
    columns = {}
    for field in MANIFEST_SCHEMA:
        kind = draw(st.sampled_from(["proper"] * 8 + ["absent", "null", *OTHER_TYPES]))
        if kind == "absent":
            continue
        if kind == "null":
            columns[field.name] = pa.nulls(n, field.type)
        elif kind == "proper":
            columns[field.name] = pa.array(draw(st.lists(PROPER[field.name] | st.none(), min_size=n, max_size=n)
                                                if draw(st.booleans()) else st.lists(PROPER[field.name], min_size=n, max_size=n)),
                                           type=field.type)
        else:
            type_, values = OTHER_TYPES[kind]
            columns[field.name] = pa.array(draw(st.lists(values, min_size=n, max_size=n)), type=type_)
    return pa.table(columns) if columns else pa.table({"x": pa.array([], pa.int8())})


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                           max_leaves=6)


@st.composite
def corpus_jsons(draw) -> bytes:
    kind = draw(st.sampled_from(["valid"] * 6 + ["edited", "any", "bytes"]))
    meta = {"format": FORMAT_NAME, "format_version": 1, "digest": "d", "counts": {"images": 0}}
    if kind == "edited":
        meta.update(draw(st.dictionaries(st.sampled_from(list(meta) + ["other"]), JSON_VALUES, max_size=3)))
    elif kind == "any":
        return json.dumps(draw(JSON_VALUES)).encode()
    elif kind == "bytes":
        return draw(st.binary(max_size=40))
    return json.dumps(meta).encode()


def use(root: Path) -> None:
    """Open the corpus at ``root`` and do with it what runs and reports do; only CorpusError may escape."""
    try:
        corpus = Corpus.open(root)
        len(corpus), corpus.labels, corpus.ids, corpus.digest
        records = corpus.records()
        assert len(records) == len(corpus)
        corpus.split(0.5), corpus.select(artifact="a"), corpus.select(label=1, source="a", ids=["a"])
    except CorpusError:
        return
    for rows in ([row] for row in corpus.rows()):
        with pytest.raises(CorpusError):  # no image file exists: every load is a CorpusError
            corpus.load_images(rows)
        for artifact in json.loads(rows[0]["masks"]):
            with pytest.raises(CorpusError):
                corpus.load_mask(rows[0], artifact)
    try:
        verify(root)
    except CorpusError:
        pass


def check_corpus(table: pa.Table, meta: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "corpus"
        root.mkdir()
        pq.write_table(table, root / "manifest.parquet")
        (root / "corpus.json").write_bytes(meta)
        (root / "images").mkdir()
        use(root)


@SETTINGS
@given(manifests(), corpus_jsons())
def test_any_manifest_and_corpus_json_give_a_corpus_or_a_corpus_error(table, meta):
    check_corpus(table, meta)


# -- the suite parser --------------------------------------------------------------------------

TOML_VALUES = st.recursive(
    st.booleans() | st.integers(-5, 10**12) | st.floats() | st.text(max_size=6) | st.sampled_from(["jpeg:50", "blur:1", "none"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


def table_of(keys: list[str], values=TOML_VALUES):
    """Dicts mostly of known keys (and now and then an unknown one)."""
    return st.dictionaries(st.sampled_from(keys) | st.text(max_size=4), values, max_size=len(keys) + 1)


GENERATOR = table_of(["name", "label", "count", "seed_start", "batch_size", "params", "reals"],
                     st.sampled_from(["parametric", "g", 0, 1, 3, -1, {"resolution": 64}]) | TOML_VALUES)
DETECTOR = table_of(["name", "label", "params", "batch_size"], st.sampled_from(["spectrum", "d", 1, -2, {}]) | TOML_VALUES)
SUITES = st.fixed_dictionaries(
    {"generators": st.lists(GENERATOR | TOML_VALUES, max_size=2), "detectors": st.lists(DETECTOR | TOML_VALUES, max_size=2)},
    optional={
        "name": TOML_VALUES, "description": TOML_VALUES, "extra": TOML_VALUES,
        "split": table_of(["test_fraction", "seed", "calibration_fraction"]) | TOML_VALUES,
        "protocols": table_of(["cross_generator", "perturbations", "sensitivity"],
                              st.lists(st.sampled_from(["jpeg:50", "jpeg:0", "blur:1", "jpeg", "none", ":", ""]) | st.text(max_size=6),
                                       max_size=3) | TOML_VALUES) | TOML_VALUES,
        "bootstrap": table_of(["resamples", "confidence", "seed"]) | TOML_VALUES,
        "throughput": table_of(["batch_sizes", "warmup", "rounds", "images"]) | TOML_VALUES,
    },
)


@SETTINGS
@given(SUITES)
def test_any_suite_table_gives_a_suite_or_a_suite_error(data):
    try:
        suite = parse_suite(data, "fuzz.toml")
    except SuiteError as exc:
        assert "fuzz.toml" in str(exc)
        return
    assert isinstance(suite, Suite) and suite.generators and suite.detectors
    assert all(g.count >= 1 and g.batch_size >= 1 and g.seed_start >= 0 for g in suite.generators)
    assert 0 < suite.split.test_fraction < 1


# -- the metrics -------------------------------------------------------------------------------


@st.composite
def labelled_scores(draw):
    """(labels, scores) of both classes with integer-valued scores, so increasing affine maps are exact."""
    n = draw(st.integers(2, 40))
    labels = np.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    labels[draw(st.integers(0, n - 1))] = 0
    labels[draw(st.integers(0, n - 1)) if labels.sum() else 0] = 1  # both classes, without filtering
    assume(0 < labels.sum() < n)
    scores = np.array(draw(st.lists(st.integers(-50, 50), min_size=n, max_size=n)), dtype=float)
    return labels, scores


@SETTINGS
@given(labelled_scores())
def test_auc_is_a_probability_and_flips_with_the_scores(data):
    labels, scores = data
    m = compute_metrics(labels, scores)
    assert 0.0 <= m["auc"] <= 1.0 and 0.0 <= m["ap"] <= 1.0 and 0.0 <= m["eer"] <= 1.0
    for name in ("accuracy", "balanced_accuracy", "real_accuracy", "fake_accuracy", "tpr_at_fpr_1", "ece", "brier"):
        assert 0.0 <= m[name] <= 1.0, name
    assert m["auc"] + compute_metrics(labels, -scores)["auc"] == pytest.approx(1.0, abs=1e-12)


@SETTINGS
@given(labelled_scores(), st.integers(1, 7), st.integers(-100, 100))
def test_rank_metrics_ignore_increasing_transforms(data, scale, shift):
    labels, scores = data
    m, t = compute_metrics(labels, scores), compute_metrics(labels, scale * scores + shift)
    for name in ("auc", "ap", "tpr_at_fpr_1", "tpr_at_fpr_0.1"):
        assert t[name] == pytest.approx(m[name], abs=1e-12), name
    assert compute_metrics(labels, np.exp(scores / 10))["auc"] == pytest.approx(m["auc"], abs=1e-12)


@SETTINGS
@given(st.integers(0, 1), st.lists(st.integers(-50, 50), min_size=1, max_size=20))
def test_one_class_gives_nan_rank_metrics_not_an_error(label, values):
    labels, scores = np.full(len(values), label), np.array(values, dtype=float)
    m = compute_metrics(labels, scores)
    assert math.isnan(m["auc"]) and math.isnan(m["eer"])


@SETTINGS
@given(labelled_scores(), st.integers(0, 3))
def test_bootstrap_intervals_are_ordered_bounded_and_repeatable(data, seed):
    labels, scores = data
    pairs = np.arange(len(labels)) // 2
    first = metrics_with_ci(labels, scores, pairs, metric_names=["auc", "accuracy"], n_resamples=40, seed=seed)
    again = metrics_with_ci(labels, scores, pairs, metric_names=["auc", "accuracy"], n_resamples=40, seed=seed)
    assert first == again or all(  # NaN != NaN
        all(a == b or (math.isnan(a) and math.isnan(b)) for a, b in zip(first[k].values(), again[k].values())) for k in first)
    for name, value in first.items():
        low, high = value["ci_low"], value["ci_high"]
        if not math.isnan(low):
            assert 0.0 <= low <= high <= 1.0, name
