"""Plug-in settings through -p KEY=VALUE, read against the plug-in's constructor (issue 16)."""

from __future__ import annotations

from facebench.harness.cli import app
from typer.testing import CliRunner

runner = CliRunner()


def test_an_unknown_key_is_one_line_naming_the_valid_keys(tmp_path):
    result = runner.invoke(app, ["generate", "parametric", "-p", "resolutoin=64", "--n", "2", "--out", str(tmp_path / "c")])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: generator 'parametric' has no parameter 'resolutoin'")
    assert "did you mean 'resolution'?" in lines[0] and "its parameters: " in lines[0] and "camera" in lines[0]
    assert not (tmp_path / "c").exists()


def test_a_value_of_the_wrong_type_is_a_usage_error(tmp_path):
    result = runner.invoke(app, ["generate", "parametric", "-p", "resolution=big", "--n", "2", "--out", str(tmp_path / "c")])
    assert result.exit_code == 2 and "parameter 'resolution' got 'big'; expected an integer" in result.output


def test_plug_in_specific_options_are_gone(tmp_path):
    for option, value in (("--network", "x.pkl"), ("--truncation", "0.7"), ("--pipeline", "p"), ("--steps", "2"),
                          ("--guidance", "5"), ("--prompt", "a face"), ("--noise-mode", "const"), ("--rotate", "1")):
        result = runner.invoke(app, ["generate", "parametric", option, value, "--n", "2", "--out", str(tmp_path / "c")])
        assert result.exit_code == 2 and "No such option" in result.output, option


def test_info_shows_the_keys_and_how_to_set_them():
    result = runner.invoke(app, ["info", "stylegan3"])
    assert result.exit_code == 0, result.output
    for key in ("network", "truncation_psi", "translate", "rotate", "device"):
        assert key in result.output
    assert "-p NAME=VALUE" in result.output


def test_a_detector_parameter_is_converted_from_its_annotation(tmp_path):
    corpus = tmp_path / "corpus"
    made = runner.invoke(app, ["generate", "parametric", "-p", "resolution=64", "--n", "8", "--artifacts", "upsampling",
                               "--out", str(corpus)])
    assert made.exit_code == 0, made.output
    result = runner.invoke(app, ["detect", "spectrum", str(corpus), "-p", "n_bins=nine", "--results", str(tmp_path / "r")])
    assert result.exit_code == 2 and "parameter 'n_bins' got 'nine'" in result.output
