"""The known-answer matrix: expectations, rendering, and a small run of every cue detector in CI."""

from __future__ import annotations

import math

import pytest

from facebench.generators.artifacts import ARTIFACTS
from facebench.harness import matrix as km
from facebench.harness import registry


def test_violations_flag_weak_targets_and_unexplained_off_target_hits_only():
    table = km.Matrix(
        ("srm", "pupil", "cnn"), ("missing_camera_noise", "upsampling", "blob", "irregular_pupils"),
        {("srm", "missing_camera_noise"): 0.95, ("srm", "upsampling"): 1.0,  # explained by physics
         ("srm", "irregular_pupils"): 0.8,  # unexplained
         ("pupil", "irregular_pupils"): 0.7,  # weak target
         ("pupil", "blob"): math.nan, ("cnn", "blob"): 0.99},  # cnn claims no cue
    )
    assert km.violations(table) == [
        "srm on irregular_pupils: AUC 0.800 > 0.65 off target, unexplained",
        "pupil on irregular_pupils: AUC 0.700 < 0.9 on its own target",
    ]


def test_every_target_and_exception_names_a_real_artifact():
    for detector, targets in km.TARGETS.items():
        assert set(targets) <= set(ARTIFACTS), detector
    assert {artifact for _, artifact in km.EXCEPTIONS} <= set(ARTIFACTS)


def test_markdown_and_heatmap_show_every_cell():
    table = km.Matrix(("spectrum",), ("upsampling", "blob"), {("spectrum", "upsampling"): 0.97, ("spectrum", "blob"): 0.5})
    text = km.markdown(table)
    assert "| spectrum | **0.97** | 0.50 |" in text
    image = km.heatmap(table, cell=44)
    left, top = 8 + 7 * len("spectrum"), 8 + 7 * len("upsampling")
    red, green, _ = image.getpixel((left + 5, top + 5))  # the upsampling cell: AUC 0.97, dark red
    assert red > 150 and green < 80
    assert image.getpixel((left + 44 + 5, top + 5)) == (255, 255, 255)  # the blob cell: chance, white


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
    from facebench.harness.runner import run_suite

    detectors = []
    for name in (d for d in km.TARGETS if d not in EYE_DETECTORS):
        try:
            registry.load("detector", name)
            detectors.append(name)
        except registry.PluginError:
            continue  # an optional backend is missing
    result = run_suite(km.matrix_suite(list(ARTIFACTS), detectors, count=100, resolution=128), tmp_path, show_progress=False)
    assert result.errors == []
    table = km.build_matrix(result.metrics, detectors, list(ARTIFACTS))
    assert km.violations(table) == [], km.markdown(table)
