"""Issue 9, item 8: ``benchmarks/fuzz_readers.py`` runs, and a few examples of each target find nothing.

Run it longer by hand: ``python benchmarks/fuzz_readers.py --examples 20000``.
"""

from __future__ import annotations

import pytest

from tests.scripts import load_benchmark


@pytest.fixture(scope="module")
def fuzz_readers():
    return load_benchmark("fuzz_readers")


@pytest.mark.parametrize("target", ["corpus", "checkpoint", "pickle", "images"])
def test_a_short_fuzz_run_finds_nothing(fuzz_readers, target):
    assert fuzz_readers.fuzz(target, examples=12, seed=0, quiet=True) == []


def test_the_fuzzer_reports_a_reader_that_breaks_its_promise(fuzz_readers, monkeypatch):
    """A reader raising something other than its own error is a finding (the fuzzer can fail)."""
    import facebench.detectors.checkpoint as checkpoint

    def broken(path):
        raise KeyError("not a CheckpointError")

    monkeypatch.setattr(checkpoint, "read_state_dict", broken)
    findings = fuzz_readers.fuzz("checkpoint", examples=2, seed=0, quiet=True)
    assert len(findings) == 2 and "KeyError" in findings[0]
