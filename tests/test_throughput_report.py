"""Every throughput figure is shown with its spread: terminal/Markdown tables, CSV, JSON and HTML,
and the run's calibration workload beside the environment."""

from __future__ import annotations

import csv
import json

from facebench.harness.report import text as report
from facebench.harness.report.html import render_report
from facebench.harness.data.results import Results

RUN = {"run_id": "r1", "suite": "s", "started": "2026-01-01T00:00:00+00:00", "finished": "2026-01-01T00:01:00+00:00",
       "status": "ok", "facebench_version": "0.1.0",
       "info": json.dumps({"environment": {"cpu_model": "Test CPU", "cpu_cores": 2},
                           "calibration": {"workload": "fft256+conv5x5 v1", "units_per_s": 476.5}})}
ROUNDS = [3650.0, 3700.0, 3704.5, 3710.0, 3721.0]
SPEED = [
    {"kind": "detector", "name": "spectrum @ up", "device": "cpu", "batch_size": 64, "images": 320, "seconds": 0.086,
     "images_per_s": 3704.5, "latency_p50_ms": 0.26, "latency_p95_ms": 0.3, "rounds": 5, "images_per_s_q1": 3700.0,
     "images_per_s_q3": 3710.0, "round_images_per_s": ROUNDS},
    {"kind": "generator", "name": "up", "device": "cpu", "batch_size": 40, "images": 80, "seconds": 0.5,
     "images_per_s": 160.0, "latency_p50_ms": 6.0, "latency_p95_ms": 6.5},  # a row stored before spreads
]


def board():
    return report.build_leaderboard(RUN, [], SPEED)


def test_the_throughput_table_shows_the_iqr_and_rounds():
    (table,) = [t for t in report.tables(board()) if t.key == "throughput"]
    assert table.columns[4:7] == ("images/s", "IQR", "rounds")
    detector = next(r for r in table.rows if r[0] == "detector")
    assert detector[4:7] == ("3704.5", "[3700.0, 3710.0]", "5")
    generator = next(r for r in table.rows if r[0] == "generator")
    assert generator[5:7] == ("-", "-")
    assert "IQR" in report.to_markdown(board())
    assert "calibration workload 476.5 units/s" in report.environment_line(board())


def test_csv_and_json_carry_every_round(tmp_path):
    paths = report.to_csv(board(), tmp_path)
    with paths["throughput"].open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    detector = next(r for r in rows if r["kind"] == "detector")
    assert [float(v) for v in detector["round_images_per_s"].split()] == ROUNDS
    assert (detector["rounds"], detector["images_per_s_q1"], detector["images_per_s_q3"]) == ("5", "3700.0", "3710.0")
    data = json.loads(report.to_json(board()))
    (speed,) = [t for t in data["throughput"] if t["kind"] == "detector"]
    assert speed["round_images_per_s"] == ROUNDS and speed["images_per_s_q1"] == 3700.0
    assert data["calibration"]["units_per_s"] == 476.5


def test_the_html_report_shows_quartiles_rounds_and_calibration():
    html = render_report(Results(RUN, [], SPEED, []))
    assert "img/s q1" in html and "img/s q3" in html and ">rounds<" in html
    assert "3710.0" in html and "476.5 units/s" in html
