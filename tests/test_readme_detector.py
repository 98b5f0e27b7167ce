"""The README's detector skeleton runs as written, keeps the contract and stays short."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from facebench.harness.contracts import registry
from facebench.testing import check_detector

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_detector_source() -> str:
    """The first python block after "A whole detector to start from" in the README."""
    text = README.read_text().split("A whole detector to start from", 1)[1]
    return re.search(r"```python\n(.+?)\n```", text, re.S).group(1)


@pytest.fixture(scope="module")
def detector_class():
    namespace = {"__name__": "readme_detector"}
    exec(compile(readme_detector_source(), str(README), "exec"), namespace)
    return namespace["MyDetector"]


def test_the_readme_detector_keeps_the_contract(detector_class):
    check_detector(detector_class)
    check_detector(detector_class, bins=4, batch_size=5)


def test_the_readme_detector_is_a_cue_detector_in_about_40_lines():
    lines = [line for line in readme_detector_source().splitlines() if line.strip()]
    assert len(lines) <= 40, f"the README's detector has {len(lines)} lines"


def test_its_parameters_are_read_and_checked_like_a_built_in(detector_class):
    params = {p.name: p for p in registry.parameters(detector_class)}
    assert list(params) == ["bins", "c", "batch_size"]
    assert params["bins"].default == 16 and "saturation histogram" in params["bins"].doc
    with pytest.raises(ValueError, match="bins must be <= 64, got 65"):
        detector_class(bins=65)
    with pytest.raises(ValueError, match="c must be a finite number > 0"):
        detector_class(c=0)
