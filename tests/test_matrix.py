"""The known-answer matrix: expectations, rendering, and a small run of every cue detector in CI."""

from __future__ import annotations

import math

import pytest

from facebench.generators.artifacts import ARTIFACTS
from facebench.harness.report import matrix as km
from facebench.harness.contracts import registry


def cells(entries):
    """Hand-made cells: {(detector, artifact): (auc, ci_low, ci_high)} -> (auc, ci) dicts."""
    return ({key: value for key, (value, _, _) in entries.items()},
            {key: (low, high) for key, (_, low, high) in entries.items()})


def auc_rows(entries):
    """Hand-made stored metric rows of a matrix run: {(detector, artifact): (auc, ci_low, ci_high)}."""
    return [{"detector": d, "corpus": a, "artifact": "all", "metric": "auc", "value": value, "ci_low": low,
             "ci_high": high, "n_real": 40, "n_fake": 40} for (d, a), (value, low, high) in entries.items()]


def test_violations_flag_weak_targets_and_unexplained_off_target_hits_only():
    auc, ci = cells({
        ("srm", "missing_camera_noise"): (0.95, 0.92, 0.98), ("srm", "upsampling"): (1.0, 1.0, 1.0),  # explained
        ("srm", "irregular_pupils"): (0.8, 0.7, 0.9),  # unexplained
        ("pupil", "irregular_pupils"): (0.7, 0.6, 0.8),  # weak target
        ("pupil", "blob"): (math.nan, math.nan, math.nan), ("cnn", "blob"): (0.99, 0.98, 1.0),  # cnn claims no cue
    })
    table = km.Matrix(("srm", "pupil", "cnn"), ("missing_camera_noise", "upsampling", "blob", "irregular_pupils"),
                      auc, ci=ci)
    assert km.violations(table) == [
        "srm on irregular_pupils: AUC 0.800 [0.70, 0.90] off target, above the chance band [0.35, 0.65], unexplained",
        "pupil on irregular_pupils: AUC 0.700 [0.60, 0.80] on its own target, below 0.9",
    ]


def test_every_target_and_exception_names_a_real_artifact():
    for detector, targets in km.targets().items():
        assert set(targets) <= set(ARTIFACTS), detector
    assert {artifact for _, artifact in km.EXCEPTIONS} <= set(ARTIFACTS)


def test_markdown_and_heatmap_show_every_cell():
    auc, ci = cells({("spectrum", "upsampling"): (0.97, 0.93, 1.0), ("spectrum", "blob"): (0.5, 0.45, 0.55)})
    table = km.Matrix(("spectrum",), ("upsampling", "blob"), auc, ci=ci)
    text = km.markdown(table)
    assert "| spectrum | **0.97 [0.93, 1.00]** | 0.50 [0.45, 0.55] |" in text
    image = km.heatmap(table, cell=44)
    layout = km.heatmap_layout(table, cell=44)
    x, y = layout.cell_origin(0, 0)
    red, green, _ = image.getpixel((x + 5, y + 5))  # the upsampling cell: AUC 0.97, dark red
    assert red > 150 and green < 80
    x, y = layout.cell_origin(0, 1)
    assert image.getpixel((x + 5, y + 5)) == (255, 255, 255)  # the blob cell: chance, white


def test_matrix_suite_has_one_corpus_per_artifact():
    suite = km.matrix_suite(["blob", "size"], ["spectrum"], count=10, resolution=64)
    assert [g.label for g in suite.generators] == ["blob", "size"]
    assert all(g.params == {"resolution": 64, "artifacts": g.label} for g in suite.generators)


#: Eye detectors need larger faces than this fast run makes (their irises are 2-4 px at 128 px);
#: tests/test_eye_detectors.py checks their known answers at 256 and 512 px.
EYE_DETECTORS = ("eye_position", "pupil", "corneal", "iris_colour")


@pytest.mark.slow
def test_cue_detectors_answer_as_expected_on_a_small_matrix(tmp_path):
    """Every installed pixel-statistics cue detector on every artifact, 100 seeds at 128 px: no unexpected cell."""
    from facebench.harness.run.runner import run_suite

    detectors = []
    for name in (d for d in km.targets() if d not in EYE_DETECTORS):
        try:
            registry.load("detector", name)
            detectors.append(name)
        except registry.PluginError:
            continue  # an optional backend is missing
    result = run_suite(km.matrix_suite(list(ARTIFACTS), detectors, count=100, resolution=128), tmp_path, show_progress=False)
    assert result.errors == []
    table = km.build_matrix(result.metrics, detectors, list(ARTIFACTS))
    assert km.violations(table) == [], km.markdown(table)


def test_an_inverse_response_whose_interval_lies_below_the_chance_band_is_flagged():
    """Seen: eye_position's 0.34 on upsampling passed silently (only AUC > 0.65 was checked)."""
    rows = auc_rows({("eye_position", "upsampling"): (0.34, 0.26, 0.33), ("eye_position", "eyes_fixed"): (1.0, 1.0, 1.0)})
    table = km.build_matrix(rows, ["eye_position"], ["upsampling", "eyes_fixed"], 256)
    assert km.violations(table) == [
        "eye_position on upsampling: AUC 0.340 [0.26, 0.33] off target, below the chance band [0.35, 0.65], unexplained"]


def test_a_target_is_judged_by_its_interval_not_its_point_value():
    """Seen: --strict failed on eye_position's 0.866 [0.745, 0.969] on its own target, judged without the CI."""
    rows = auc_rows({("eye_position", "eyes_fixed"): (0.866, 0.745, 0.969), ("eye_position", "blob"): (0.5, 0.45, 0.55),
                     ("corneal", "highlight_mismatch"): (0.75, 0.645, 0.848)})
    table = km.build_matrix(rows, ["eye_position", "corneal"], ["eyes_fixed", "blob", "highlight_mismatch"], 256)
    assert km.violations(table) == [
        "corneal on highlight_mismatch: AUC 0.750 [0.64, 0.85] on its own target, below 0.9"]  # rounded outwards
    assert km.undecided(table) == ["eye_position on eyes_fixed: AUC 0.866 [0.74, 0.97]"]


def test_an_inverse_response_whose_interval_lies_below_the_chance_band_is_unexpected():
    auc, ci = cells({("eye_position", "upsampling"): (0.34, 0.26, 0.33),
                     ("eye_position", "eyes_fixed"): (1.0, 1.0, 1.0)})
    table = km.Matrix(("eye_position",), ("upsampling", "eyes_fixed"), auc, resolution=256, ci=ci)
    assert km.verdict(table, "eye_position", "upsampling") is km.Verdict.UNEXPECTED
    assert km.violations(table) == [
        "eye_position on upsampling: AUC 0.340 [0.26, 0.33] off target, below the chance band [0.35, 0.65], unexplained"]


def test_a_written_exception_covers_a_response_in_either_direction():
    auc, ci = cells({("spectrum", "size"): (0.2, 0.1, 0.3), ("srm", "format"): (0.95, 0.9, 1.0)})
    table = km.Matrix(("spectrum", "srm"), ("size", "format"), auc, ci=ci)
    assert km.verdict(table, "spectrum", "size") is km.Verdict.EXPLAINED
    assert km.verdict(table, "srm", "format") is km.Verdict.EXPLAINED
    assert km.violations(table) == []


def test_verdicts_are_judged_on_the_interval_not_the_point_value():
    auc, ci = cells({
        ("eye_position", "eyes_fixed"): (0.866, 0.745, 0.969),  # below 0.9, but the interval reaches past it
        ("corneal", "highlight_mismatch"): (0.95, 0.85, 0.99),  # above 0.9, but the interval reaches below it
        ("iris_colour", "iris_mismatch"): (0.97, 0.92, 1.0),  # the whole interval above 0.9
        ("earring", "earring_single"): (0.80, 0.70, 0.88),  # the whole interval below 0.9
        ("corneal", "blob"): (0.70, 0.58, 0.81),  # above 0.65, but the interval reaches into the band
        ("iris_colour", "blob"): (0.52, 0.44, 0.60),  # inside the band
        ("earring", "blob"): (0.80, 0.70, 0.90),  # the whole interval above the band
    })
    detectors, artifacts = ("eye_position", "corneal", "iris_colour", "earring"), (
        "eyes_fixed", "highlight_mismatch", "iris_mismatch", "earring_single", "blob")
    table = km.Matrix(detectors, artifacts, auc, resolution=256, ci=ci)
    assert km.verdict(table, "eye_position", "eyes_fixed") is km.Verdict.UNDECIDED
    assert km.verdict(table, "corneal", "highlight_mismatch") is km.Verdict.UNDECIDED
    assert km.verdict(table, "iris_colour", "iris_mismatch") is km.Verdict.MET
    assert km.verdict(table, "earring", "earring_single") is km.Verdict.MISSED
    assert km.verdict(table, "corneal", "blob") is km.Verdict.UNDECIDED
    assert km.verdict(table, "iris_colour", "blob") is km.Verdict.NEAR_CHANCE
    assert km.verdict(table, "earring", "blob") is km.Verdict.UNEXPECTED
    assert km.violations(table) == [
        "earring on earring_single: AUC 0.800 [0.70, 0.88] on its own target, below 0.9",
        "earring on blob: AUC 0.800 [0.70, 0.90] off target, above the chance band [0.35, 0.65], unexplained",
    ]
    assert km.undecided(table) == [
        "eye_position on eyes_fixed: AUC 0.866 [0.74, 0.97]",
        "corneal on highlight_mismatch: AUC 0.950 [0.85, 0.99]",
        "corneal on blob: AUC 0.700 [0.58, 0.81]",
    ]


def test_a_cell_without_an_interval_is_not_judged_on_its_point_value():
    table = km.Matrix(("srm",), ("missing_camera_noise", "blob"),
                      {("srm", "missing_camera_noise"): 0.5, ("srm", "blob"): 0.9})
    assert km.verdict(table, "srm", "missing_camera_noise") is km.Verdict.UNDECIDED
    assert km.verdict(table, "srm", "blob") is km.Verdict.UNDECIDED
    assert km.violations(table) == []


def test_heatmap_has_a_title_a_colour_bar_and_marks_on_unexpected_cells():
    auc, ci = cells({("earring", "earring_single"): (0.99, 0.95, 1.0), ("earring", "blob"): (0.30, 0.22, 0.33),
                     ("earring", "size"): (0.5, 0.45, 0.55)})
    table = km.Matrix(("earring",), ("earring_single", "blob", "size"), auc, resolution=256, ci=ci, pairs=40)
    image = km.heatmap(table, cell=44)
    layout = km.heatmap_layout(table, cell=44)
    title_band = [image.getpixel((x, y)) for x in range(8, 300) for y in range(6, 22)]
    assert min(sum(pixel) for pixel in title_band) < 100  # dark title text
    assert "40 test pairs" in km.heatmap_title(table) and "256 px" in km.heatmap_title(table)
    bar_y = layout.bar_top + 6
    low_end, high_end = image.getpixel((layout.left + 2, bar_y)), image.getpixel((layout.left + 236, bar_y))
    assert low_end[2] > low_end[0] and high_end[0] > high_end[2]  # blue at AUC 0, red at 1

    def amber_pixels(column: int) -> int:
        x, y = layout.cell_origin(0, column)
        return sum(image.getpixel((x + 4, y + k)) == (255, 190, 0) for k in range(5, 40))

    assert amber_pixels(1) > 20  # the inverse response on blob is framed as unexpected
    assert amber_pixels(0) == 0 and amber_pixels(2) == 0  # a met target and a cell near chance are not


def test_terminal_table_is_a_table_with_verdict_marks_not_markdown():
    from rich.console import Console

    auc, ci = cells({("earring", "earring_single"): (0.99, 0.95, 1.0), ("earring", "blob"): (0.30, 0.22, 0.33),
                     ("earring", "size"): (0.62, 0.5, 0.7)})
    table = km.Matrix(("earring",), ("earring_single", "blob", "size"), auc, resolution=256, ci=ci)
    console = Console(width=120, record=True)
    console.print(km.rich_table(table))
    text = console.export_text()
    assert "|---" not in text and "**" not in text
    assert "0.30!" in text and "0.62?" in text and "0.99" in text
    assert km.summary(table) == "1 met, 1 unexpected, 1 cannot judge at this size"


def test_rows_too_small_for_their_cue_are_not_judged_and_say_why():
    auc, ci = cells({("pupil", "irregular_pupils"): (0.5, 0.42, 0.57), ("pupil", "size"): (0.2, 0.1, 0.3),
                     ("srm", "missing_camera_noise"): (1.0, 1.0, 1.0)})
    table = km.Matrix(("pupil", "srm"), ("irregular_pupils", "size", "missing_camera_noise"), auc, resolution=256, ci=ci)
    assert km.verdict(table, "pupil", "size") is km.Verdict.NOT_JUDGED
    assert km.violations(table) == [] and km.undecided(table) == []
    assert km.unjudged_rows(table) == ["pupil needs 512 px"]
    assert "| pupil † |" in km.markdown(table)
    assert "†: row not judged at 256 px; pupil needs 512 px" in km.markdown(table)


def test_cli_defaults_are_the_judged_defaults():
    import inspect

    from facebench.harness.cli import known_answer_matrix

    parameters = inspect.signature(known_answer_matrix).parameters
    assert parameters["count"].default == km.DEFAULT_COUNT
    assert parameters["resolution"].default == km.DEFAULT_RESOLUTION
    assert not any(km.MIN_RESOLUTION[d] > km.DEFAULT_RESOLUTION for d in ("eye_position", "corneal", "iris_colour"))


def invoke_matrix(*args):
    from typer.testing import CliRunner

    from facebench.harness.cli import app

    return CliRunner().invoke(app, ["matrix", *map(str, args)])


def test_matrix_command_prints_a_table_and_writes_the_markdown_and_heatmap(tmp_path):
    result = invoke_matrix("--detectors", "spectrum", "--artifacts", "upsampling,blob", "--count", 8,
                           "--resolution", 64, "--results", tmp_path, "--out", tmp_path / "m")
    assert result.exit_code == 0, result.output
    assert "|---" not in result.output and "Known-answer matrix" in result.output
    assert "verdicts: " in result.output and "unexpected cell(s)" in result.output
    assert "| spectrum | **1.00 (n<30)** ? |" in (tmp_path / "m" / "matrix.md").read_text()  # 4 test pairs
    assert (tmp_path / "m" / "matrix.png").stat().st_size > 0


#: Each detector here on its target and on an artifact it should not see; eye_position is an eye row.
DEFAULT_SUBSET = ("srm", "eye_position", "earring"), ("missing_camera_noise", "eyes_fixed", "earring_single", "blob")


@pytest.mark.slow
def test_the_default_size_and_seed_count_judge_targets_and_pass_strict(tmp_path):
    """`facebench matrix --strict` at its default size and seeds, on a few rows and columns: every row
    is judged, every target's interval clears PASS_AUC, and nothing is unexpected."""
    from facebench.harness.data.store import Store

    detectors, artifacts = DEFAULT_SUBSET
    result = invoke_matrix("--strict", "--detectors", ",".join(detectors), "--artifacts", ",".join(artifacts),
                           "--results", tmp_path, "--out", tmp_path / "m")
    assert result.exit_code == 0, result.output
    store = Store(tmp_path / "facebench.sqlite")
    table = km.build_matrix(store.metrics(store.run()["run_id"]), detectors, artifacts, km.DEFAULT_RESOLUTION)
    assert table.pairs >= 30
    assert km.unjudged_rows(table) == [] and km.violations(table) == []
    targets = {(d, a): km.verdict(table, d, a) for d in detectors for a in artifacts if a in km.targets()[d]}
    assert set(targets.values()) == {km.Verdict.MET}, km.markdown(table)


def test_a_cell_with_too_few_test_images_is_not_judged_however_certain_its_interval_looks():
    """Seen: `facebench matrix --count 16` (8 test pairs) called spectrum's 1.00 [1.00, 1.00] on upsampling
    'met', a certainty drawn from eight pairs; the reports mark such rows (n<30) instead."""
    rows = auc_rows({("spectrum", "upsampling"): (1.0, 1.0, 1.0), ("spectrum", "blob"): (0.1, 0.0, 0.2)})
    for row in rows:
        row["n_real"] = row["n_fake"] = 8
    table = km.build_matrix(rows, ["spectrum"], ["upsampling", "blob"], 64)
    assert km.verdict(table, "spectrum", "upsampling") is km.Verdict.UNDECIDED
    assert km.verdict(table, "spectrum", "blob") is km.Verdict.UNDECIDED
    assert km.violations(table) == []
    assert km.undecided(table) == ["spectrum on upsampling: AUC 1.000 (n<30)", "spectrum on blob: AUC 0.100 (n<30)"]
    assert "| spectrum | **1.00 (n<30)** ? | 0.10 (n<30) ? |" in km.markdown(table)
    assert "[1.00, 1.00]" not in km.markdown(table)


def test_a_cell_with_enough_test_images_is_judged_on_its_interval():
    rows = auc_rows({("spectrum", "upsampling"): (1.0, 1.0, 1.0)})  # 40 real and 40 fake
    table = km.build_matrix(rows, ["spectrum"], ["upsampling"], 64)
    assert km.verdict(table, "spectrum", "upsampling") is km.Verdict.MET


def test_matrix_writes_into_the_results_folder_it_is_given(tmp_path, monkeypatch):
    """Seen: `facebench matrix --results mres` wrote results/matrix/matrix.md in the working folder."""
    monkeypatch.chdir(tmp_path)
    result = invoke_matrix("--detectors", "spectrum", "--artifacts", "upsampling", "--count", 8,
                           "--resolution", 64, "--results", tmp_path / "mres")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "mres" / "matrix" / "matrix.md").is_file()
    assert not (tmp_path / "results").exists()


def test_a_narrow_matrix_keeps_its_title_on_one_line():
    """Seen: `facebench matrix --detectors spectrum,eye_position` printed 'Known-answer matrix: AUC (rows:' and
    'artifacts, columns: detectors)' on two lines, the title wrapped to the table's width."""
    from rich.console import Console

    auc, ci = cells({("spectrum", "upsampling"): (0.99, 0.95, 1.0)})
    console = Console(width=120, record=True)
    console.print(km.rich_table(km.Matrix(("spectrum",), ("upsampling",), auc, ci=ci)))
    assert "Known-answer matrix: AUC (rows: artifacts, columns: detectors)" in console.export_text()
