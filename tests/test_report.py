import csv
import json
import math

import pytest
from rich.console import Console

from facebench.harness.report import text as report
from facebench.harness.data.store import Store

RUN = {
    "run_id": "20240101T000000Z-abc123", "suite": "demo", "started": "2024-01-01T00:00:00+00:00",
    "finished": "2024-01-01T00:10:00+00:00", "status": "ok", "facebench_version": "0.3.0",
    "info": {"environment": {"cpu_model": "AMD EPYC 7B13", "cpu_cores": 2, "gpu": None, "torch": "2.3.1",
                             "cuda": None, "facebench": "0.3.0", "git_commit": "0123456789abcdef0123"}},
}


def row(detector, metric, value, corpus="sg2", train=None, artifact="all", perturbation="none", ci=None):
    out = {"corpus": corpus, "corpus_digest": "d" + corpus, "generator": "gen", "detector": detector,
           "artifact": artifact, "metric": metric, "value": value, "n_real": 50, "n_fake": 40,
           "train_corpus": train or corpus, "perturbation": perturbation,
           "ci_low": ci[0] if ci else None, "ci_high": ci[1] if ci else None}
    return out


def metric_rows():
    rows = []
    for detector, auc in (("spectrum", 0.81), ("xception", 0.9123), ("broken", math.nan)):
        rows.append(row(detector, "auc", auc, ci=(auc - 0.031, auc + 0.024) if detector == "xception" else None))
        for name in ("ap", "accuracy", "accuracy_calibrated", "balanced_accuracy", "balanced_accuracy_calibrated", "eer",
                     "tpr_at_fpr_1"):
            rows.append(row(detector, name, 0.7))
        rows.append(row(detector, "auc", auc - 0.05, artifact="eyes"))
        rows.append(row(detector, "auc", auc - 0.3, perturbation="jpeg:75"))
        rows.append(row(detector, "auc", auc - 0.4, perturbation="blur:2"))
        rows.append(row(detector, "auc", auc - 0.2, corpus="sd15", train="sg2"))
        rows.append(row(detector, "auc", auc - 0.1, corpus="sd15"))
        rows.append(row(detector, "score_shift", 0.25, artifact="eyes", ci=(0.2, 0.3)))
        rows.append(row(detector, "flip_rate", 0.125, artifact="eyes"))
    return rows


THROUGHPUT = [
    {"kind": "detector", "name": "spectrum @ sg2", "device": "cpu", "batch_size": 32, "images": 90, "seconds": 1.0,
     "images_per_s": 90.0, "latency_p50_ms": 11.0, "latency_p95_ms": 12.0, "latency_p99_ms": 13.0,
     "peak_rss_mb": 800.0, "decode_images_per_s": 900.0, "error": None},
    {"kind": "detector", "name": "xception @ sg2", "device": "cuda:0", "batch_size": 64, "images": 90, "seconds": 0.1,
     "images_per_s": 900.0, "latency_p50_ms": 1.0, "latency_p95_ms": 1.5, "error": None},
    {"kind": "generator", "name": "sg2", "device": "cuda:0", "batch_size": 8, "images": 90, "seconds": 9.0,
     "images_per_s": 10.0, "latency_p50_ms": 100.0, "latency_p95_ms": 120.0},
    {"kind": "sweep", "name": "xception", "device": "cuda:0", "batch_size": 256, "images": 0, "seconds": 0.0,
     "error": "out of memory: CUDA"},
    {"kind": "sweep", "name": "xception", "device": "cuda:0", "batch_size": 1, "images": 64, "seconds": 1.0,
     "images_per_s": 64.0, "latency_p50_ms": 15.0, "latency_p95_ms": 16.0, "error": None},
]
ERRORS = [{"task": "detect foo @ sg2", "message": "boom"}]


@pytest.fixture(scope="module")
def board():
    return report.build_leaderboard(RUN, metric_rows(), THROUGHPUT, ERRORS)


def spec(board, key, all_metrics=False):
    (found,) = [t for t in report.tables(board, all_metrics) if t.key == key]
    return found


def test_formatting():
    assert report.fmt_ci(0.9123, 0.881, 0.936) == "0.912 [0.88, 0.94]"
    assert report.fmt_ci(0.9123, None, None) == "0.912"
    assert report.fmt_ci(0.9123, math.nan, math.nan) == "0.912"
    assert report.fmt_ci(math.nan, 0.1, 0.2) == "-" == report.fmt(None) == report.fmt(math.nan)


def test_detection_is_clean_within_generator_and_best_auc_first(board):
    table = spec(board, "detection")
    assert table.columns[:4] == ("corpus", "artifact", "detector", "AUC [95% CI]")
    assert "BalAcc@cal" in table.columns and "AP chance" in table.columns
    sg2_all = [r for r in table.rows if r[0] == "sg2" and r[1] == "all"]
    assert [r[2] for r in sg2_all] == ["xception", "spectrum", "broken"]  # NaN last
    assert sg2_all[0][3] == "0.912 [0.88, 0.94]" and sg2_all[1][3] == "0.810" and sg2_all[2][3] == "-"
    assert sg2_all[0][-1] == "50/40"
    # artifact "all" before per-artifact rows; few artifacts stay inline
    assert [r[1] for r in table.rows if r[0] == "sg2"] == ["all"] * 3 + ["eyes"] * 3
    # sd15 within-generator rows are there, cross-generator and perturbed ones are not
    assert [r[3] for r in table.rows if r[0] == "sd15"] == ["0.812", "0.710", "-"]
    assert len(table.rows) == 9


def test_many_artifacts_move_to_a_compact_table():
    rows = [row("spectrum", "auc", 0.8)]
    rows += [row("spectrum", "auc", 0.7, artifact=f"a{i}") for i in range(report.MAX_INLINE_ARTIFACTS + 1)]
    board = report.build_leaderboard(RUN, rows, [])
    assert [r[1] for r in spec(board, "detection").rows] == ["all"]
    compact = spec(board, "per_artifact")
    assert compact.columns == ("corpus", "artifact", "detector", "AUC [95% CI]", "real/fake")
    assert len(compact.rows) == report.MAX_INLINE_ARTIFACTS + 1


def test_cross_generator_cells_land_at_train_row_and_test_column(board):
    table = spec(board, "cross_generator")
    assert table.columns == ("detector", "train \\ test", "sd15", "sg2")
    cells = {(r[0], r[1]): dict(zip(table.columns[2:], r[2:])) for r in table.rows}
    assert cells["xception", "sg2"] == {"sd15": "0.712", "sg2": "0.912"}
    assert cells["xception", "sd15"] == {"sd15": "0.812", "sg2": ""}  # never tested: blank
    assert cells["broken", "sg2"]["sg2"] == "-"


def test_robustness_has_the_clean_column_first(board):
    table = spec(board, "robustness")
    assert table.columns == ("corpus", "detector", "clean", "jpeg:75", "blur:2")  # by kind, then strength
    assert table.rows[0] == ("sg2", "xception", "0.912", "0.612", "0.512")
    assert {r[0] for r in table.rows} == {"sg2"}  # sd15 has no perturbed rows


def test_sensitivity_table(board):
    table = spec(board, "sensitivity")
    assert table.columns == ("corpus", "detector", "artifact", "score_shift", "flip_rate")
    assert ("sg2", "spectrum", "eyes", "0.250 [0.20, 0.30]", "0.125") in table.rows


def test_throughput_order_and_errors(board):
    table = spec(board, "throughput")
    assert [(r[0], r[1], r[3]) for r in table.rows] == [
        ("generator", "sg2", "8"), ("detector", "xception @ sg2", "64"), ("detector", "spectrum @ sg2", "32"),
        ("sweep", "xception", "1"), ("sweep", "xception", "256"),
    ]
    assert "p99 ms/img" in table.columns and table.columns[-1] == "error"
    assert table.rows[-1][-1] == "out of memory: CUDA" and table.rows[-1][4] == "-"


def test_schema_1_rows_are_accepted():
    old = [{k: v for k, v in row("spectrum", "auc", 0.8).items()
            if k not in ("train_corpus", "perturbation", "ci_low", "ci_high")}]
    speed = [{"kind": "detector", "name": "spectrum @ sg2", "device": "cpu", "batch_size": 32, "images": 9,
              "seconds": 1.0, "images_per_s": 9.0, "latency_p50_ms": 1.0, "latency_p95_ms": 2.0}]
    run = {**RUN, "info": json.dumps({"environment": {"processor": "x86_64", "cpu_count": 4, "cuda": "NVIDIA H200",
                                                      "torch": "2.3.1"}})}
    board = report.build_leaderboard(run, old, speed)
    assert board.metrics[0]["train_corpus"] == "sg2" and board.metrics[0]["perturbation"] == "none"
    assert [t.key for t in report.tables(board)] == ["detection", "throughput"]
    assert "p99 ms/img" not in spec(board, "throughput").columns
    assert report.environment_line(board) == "x86_64 (4 cores), NVIDIA H200, torch 2.3.1, facebench 0.3.0"


def test_csv_round_trips_one_line_per_metric_row(board, tmp_path):
    paths = report.to_csv(board, tmp_path)
    assert paths == {"metrics": tmp_path / "leaderboard.csv", "throughput": tmp_path / "throughput.csv"}
    with paths["metrics"].open(newline="") as handle:
        lines = list(csv.DictReader(handle))
    assert len(lines) == len(metric_rows())
    assert tuple(lines[0]) == report.METRIC_FIELDS
    best = next(r for r in lines if r["detector"] == "xception" and r["metric"] == "auc" and r["corpus"] == "sg2"
                and r["train_corpus"] == "sg2" and r["perturbation"] == "none" and r["artifact"] == "all")
    assert float(best["value"]) == 0.9123 and float(best["ci_low"]) == pytest.approx(0.8813)
    assert best["run_id"] == RUN["run_id"]
    broken = next(r for r in lines if r["detector"] == "broken" and r["metric"] == "auc")
    assert math.isnan(float(broken["value"])) and broken["ci_low"] == ""
    with paths["throughput"].open(newline="") as handle:
        speed = list(csv.DictReader(handle))
    assert len(speed) == len(THROUGHPUT) and speed[-1]["error"] == "out of memory: CUDA"
    # raw rows: metrics only
    assert report.to_csv(metric_rows(), tmp_path / "raw") == {"metrics": tmp_path / "raw" / "leaderboard.csv"}


def test_json_parses_and_nan_is_null(board, tmp_path):
    text = report.to_json(board, tmp_path / "board.json")
    assert "NaN" not in text
    data = json.loads((tmp_path / "board.json").read_text())
    assert data["run"]["run_id"] == RUN["run_id"] and data["environment"]["cpu_model"] == "AMD EPYC 7B13"
    broken = next(c for c in data["cells"] if c["detector"] == "broken" and c["corpus"] == "sg2"
                  and c["artifact"] == "all" and c["perturbation"] == "none")
    assert broken["metrics"]["auc"] == {"value": None, "ci_low": None, "ci_high": None}
    best = data["cells"][[c["corpus"] for c in data["cells"]].index("sg2")]
    assert best["detector"] == "xception" and best["rank"] == 1
    assert data["throughput"][0]["kind"] == "generator" and data["errors"] == ERRORS
    assert report.to_json(board) == text  # stable


def test_markdown_has_the_tables_and_the_environment(board, tmp_path):
    text = report.to_markdown(board)
    assert text.startswith("# facebench leaderboard: suite `demo`")
    assert RUN["run_id"] in text and "2024-01-01T00:10:00" in text
    assert "Environment: AMD EPYC 7B13 (2 cores), no GPU, torch 2.3.1, facebench 0.3.0, commit 0123456789ab" in text
    for heading in ("## Detection", "## Cross-generator AUC", "## Robustness AUC", "## Counterfactual sensitivity",
                    "## Throughput", "## Failed tasks"):
        assert heading in text
    assert "| sg2 | all | xception | 0.912 [0.88, 0.94] |" in text
    assert "| corpus | detector | clean | jpeg:75 | blur:2 |" in text
    assert report.write_markdown(board, tmp_path / "lb.md").read_text() == text
    assert "## All metrics: corpus sg2, artifact all" in report.to_markdown(board, all_metrics=True)


def test_terminal_rendering(board):
    console = Console(record=True, width=120)
    report.print_leaderboard(board, console, all_metrics=True)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 120
    for expected in ("facebench leaderboard - suite demo", "detection, corpus sg2", "0.912 [0.88, 0.94]",
                     "cross-generator AUC", "robustness AUC, corpus sg2", "counterfactual sensitivity",
                     "throughput, kind sweep", "out of memory", "calibrated on the held-out split",
                     "all metrics: corpus sg2, artifact all", "tpr_at_fpr_1",
                     "failed detect foo @ sg2: boom", "environment: AMD EPYC 7B13 (2 cores), no GPU"):
        assert expected in text, expected


def test_rows_read_back_from_the_store_give_the_same_markdown(board, tmp_path):
    store = Store(tmp_path / "facebench.sqlite")
    # the store wants every schema-1 throughput key (values may be None)
    speed = [{**dict.fromkeys(("images_per_s", "latency_p50_ms", "latency_p95_ms")), **t} for t in THROUGHPUT]
    store.write_run(RUN, metric_rows(), speed, ERRORS)
    run_id = RUN["run_id"]
    again = report.build_leaderboard(store.run(), store.metrics(run_id), store.throughput(run_id), store.errors(run_id))
    assert report.to_markdown(again) == report.to_markdown(board)
    assert report.to_json(again) == report.to_json(board)


def test_filter_perturbations():
    kept = report.filter_perturbations(metric_rows(), ["jpeg:75"])
    assert {r["perturbation"] for r in kept} == {"none", "jpeg:75"}
    assert {r["perturbation"] for r in report.filter_perturbations(metric_rows(), ["none"])} == {"none"}


# --------------------------------------------------------------------------- wide tables, order, degenerate rows

DEFAULT_GRID_DETECTORS = ("spectrum", "dct", "srm")


def default_grid_rows():
    """A default-suite-like run with ``perturbations = ["default"]``: 15 perturbations + clean, 3 detectors."""
    from facebench.harness.run.perturb import DEFAULT_GRID

    rows = []
    for d, detector in enumerate(DEFAULT_GRID_DETECTORS):
        rows.append(row(detector, "auc", 0.9 - d / 10, corpus="parametric", ci=(0.8 - d / 10, 0.95 - d / 10)))
        for p, name in enumerate(DEFAULT_GRID):
            rows.append(row(detector, "auc", 0.85 - d / 10 - p / 100, corpus="parametric", perturbation=name))
    return rows


def test_perturbations_sort_by_kind_then_strength():
    names = ["noise:10", "jpeg:50+blur:2", "noise:2", "jpeg:30", "blur:3", "none", "jpeg:95", "resize:0.5",
             "resize:0.75", "crop:20", "crop:10", "noise:5", "blur:1", "mystery"]
    ordered = sorted(names, key=report.perturbation_sort_key)
    assert ordered == ["none", "jpeg:95", "jpeg:30", "blur:1", "blur:3", "resize:0.75", "resize:0.5", "noise:2",
                       "noise:5", "noise:10", "crop:10", "crop:20", "jpeg:50+blur:2", "mystery"]


def test_robustness_columns_follow_the_perturbation_order():
    from facebench.harness.run.perturb import DEFAULT_GRID

    board = report.build_leaderboard(RUN, default_grid_rows())
    table = spec(board, "robustness")
    assert table.columns[2:] == ("clean", *sorted(DEFAULT_GRID, key=report.perturbation_sort_key))
    assert table.columns.index("noise:2") < table.columns.index("noise:10")
    perturbed = [c.perturbation for c in board.cells if c.detector == "spectrum"]
    assert perturbed == ["none", *sorted(DEFAULT_GRID, key=report.perturbation_sort_key)]


def test_a_wide_robustness_table_stays_readable_at_100_columns():
    from facebench.harness.run.perturb import DEFAULT_GRID

    board = report.build_leaderboard(RUN, default_grid_rows())
    console = Console(record=True, width=100)
    report.print_leaderboard(board, console)
    text = console.export_text()
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 100
    robustness = text[text.index("robustness AUC"):text.index("AUC on the test split")]
    header_words = set(robustness.split())
    for name in ("clean", *DEFAULT_GRID):
        assert name in header_words, name  # whole, never cut
    tables = robustness.count("robustness AUC")
    assert tables >= 2  # split into several tables, each with the detector column
    for detector in DEFAULT_GRID_DETECTORS:
        assert robustness.count(detector) == tables


def test_sensitivity_without_counterfactual_pairs_says_why():
    rows = [row("spectrum", "auc", 0.8, corpus="folder")]
    rows += [row(d, m, math.nan, corpus="folder", artifact=a)
             for d in ("spectrum", "dct") for a in ("eyes", "blob") for m in report.SENSITIVITY_METRICS]
    rows += [row("spectrum", "score_shift", 0.25, corpus="sg2", artifact="eyes", ci=(0.2, 0.3)),
             row("spectrum", "flip_rate", 0.125, corpus="sg2", artifact="eyes")]
    board = report.build_leaderboard(RUN, rows)
    table = spec(board, "sensitivity")
    assert [r[0] for r in table.rows] == ["sg2"]  # no rows of dashes for the folder corpus
    (line,) = table.notes
    assert line.startswith("corpus folder: no counterfactual pairs") and "reals = " in line
    console = Console(record=True, width=100)
    report.print_leaderboard(board, console)
    text = console.export_text()
    assert "corpus folder: no counterfactual pairs" in text
    only_folder = report.build_leaderboard(RUN, rows[:-2])
    (note,) = [t for t in report.tables(only_folder) if t.key == "sensitivity"]
    assert note.rows == [] and "no counterfactual pairs" in note.notes[0]
    assert "no counterfactual pairs" in report.to_markdown(only_folder)


def degenerate_rows():
    """spectrum scored every image alike: AUC 0.5 with a zero-width interval."""
    rows = []
    for detector, auc, ci in (("spectrum", 0.5, (0.5, 0.5)), ("dct", 0.42, (0.3, 0.55)), ("srm", 0.81, (0.7, 0.9))):
        rows.append(row(detector, "auc", auc, ci=ci))
        rows.append(row(detector, "ap", 0.44 if detector == "spectrum" else 0.6))
    return rows


def test_an_all_equal_score_row_is_marked_degenerate_and_ranks_last(tmp_path):
    board = report.build_leaderboard(RUN, degenerate_rows())
    assert [c.detector for c in board.cells] == ["srm", "dct", "spectrum"]
    assert [report.is_degenerate(c) for c in board.cells] == [False, False, True]
    table = spec(board, "detection")
    assert [r[2] for r in table.rows] == ["srm", "dct", "spectrum"]
    assert table.rows[-1][3] == f"0.500 {report.DEGENERATE_MARK}" and "degenerate" in table.caption
    assert f"| spectrum | 0.500 {report.DEGENERATE_MARK} |" in report.to_markdown(board)
    data = json.loads(report.to_json(board))
    assert [(c["detector"], c["rank"], c["degenerate"]) for c in data["cells"]] == [
        ("srm", 1, False), ("dct", 2, False), ("spectrum", 3, True)]
    # without an interval, AP at its chance level gives the tie away
    no_ci = [{**r, "ci_low": None, "ci_high": None} for r in degenerate_rows()]
    no_ci = [{**r, "value": 40 / 90} if r["detector"] == "spectrum" and r["metric"] == "ap" else r for r in no_ci]
    assert [c.detector for c in report.build_leaderboard(RUN, no_ci).cells][-1] == "spectrum"


def test_intervals_are_rounded_outwards_so_a_point_never_sits_outside_its_printed_interval():
    """Seen: `srm 0.998 [1.00, 1.00]` (an interval of [0.998, 1.0] rounded to nearest) read as a zero-width certainty."""
    from facebench.harness.report.text import fmt_ci, fmt_interval

    assert fmt_ci(0.998, 0.998, 1.0) == "0.998 [0.99, 1.00]"
    assert fmt_interval(0.645, 0.848) == "[0.64, 0.85]"
    assert fmt_interval(0.95, 0.95) == "[0.95, 0.95]"  # exact bounds stay put despite float error
    assert fmt_interval(-0.004, 0.001) == "[-0.01, 0.01]"


def test_grid_tables_mark_rows_too_small_to_judge():
    """Seen: the robustness and cross-generator grids printed a 16/16 row's AUC as if certain."""
    rows = [{**r, "n_real": 16, "n_fake": 16} if r["detector"] == "spectrum" else r for r in metric_rows()]
    board = report.build_leaderboard(RUN, rows, THROUGHPUT, ERRORS)
    robustness = {r[1]: r for r in spec(board, "robustness").rows}
    assert robustness["spectrum"][2:] == ("0.810 (n<30)", "0.510 (n<30)", "0.410 (n<30)")
    assert robustness["xception"][2:] == ("0.912", "0.612", "0.512")
    assert list(robustness) == ["xception", "broken", "spectrum"]  # a small row ranks last
    cross = {r[0]: r for r in spec(board, "cross_generator").rows}
    assert all(cell.endswith("(n<30)") for cell in cross["spectrum"][2:] if cell)
