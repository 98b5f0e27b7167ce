"""The timing phase starts from glibc's long-run malloc thresholds, whatever the process did
before; nothing is touched where the user set them."""

from __future__ import annotations

import contextlib
import ctypes
import subprocess
import sys

import numpy as np
import pytest

from facebench.harness.run import allocator, throughput
from facebench.harness.run.allocator import glibc, steady_allocator
from facebench.harness.run.throughput import TimingJob, time_jobs


@pytest.fixture
def tunable(monkeypatch):
    for name in allocator.USER_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    if glibc() is None or not hasattr(ctypes.CDLL("libc.so.6"), "mallinfo2"):
        pytest.skip("glibc >= 2.33 only (mallopt and mallinfo2)")


FRESH_PROCESS_CHECK = """
import ctypes, numpy as np
from facebench.harness.run.allocator import steady_allocator
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                               "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
def grow_by(nbytes):
    before = libc.mallinfo2().hblkhd
    block = np.ones(nbytes, dtype=np.uint8)
    grown = libc.mallinfo2().hblkhd - before
    del block
    return grown
fresh = grow_by(16 * 2**20)
with steady_allocator() as changed:
    inside, large = grow_by(24 * 2**20), grow_by(200 * 2**20)
after = grow_by(24 * 2**20)
print(fresh, changed, inside, large, after)
"""


def test_timing_starts_from_where_a_long_running_process_has_its_thresholds(tunable):
    # a fresh process: this one's heap may hold free blocks of any size from earlier tests
    out = subprocess.run([sys.executable, "-c", FRESH_PROCESS_CHECK], capture_output=True, text=True, check=True)
    fresh, changed, inside, large, after = out.stdout.split()
    mib = 2**20
    assert int(fresh) >= 16 * mib  # a fresh process serves a 16 MiB block from a mmap of its own
    assert changed == "True"
    # 24 MiB: above the 16 MiB glibc's threshold rose to when the block above was freed
    assert int(inside) == 0  # from the heap, as glibc serves it once it has freed one that large
    assert int(large) >= 200 * mib  # above glibc's largest threshold: a mmap, as in any process
    assert int(after) == 0  # and it stays so: glibc never lowers its thresholds either


def test_the_users_settings_rule(tunable, monkeypatch):
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    with steady_allocator() as changed:
        assert not changed
    assert glibc() is None


def test_the_timing_phase_decodes_and_times_inside_the_steady_allocator(monkeypatch):
    events = []

    @contextlib.contextmanager
    def recording():
        events.append("enter")
        yield True
        events.append("exit")

    class Detector:
        batch_size = 2

        def score(self, images):
            events.append("score")
            return np.zeros(len(images))

    class Split:
        root = "corpus"

        def rows(self):
            return [{"id": str(i)} for i in range(4)]

    monkeypatch.setattr(throughput, "steady_allocator", recording)
    monkeypatch.setattr(throughput, "largest_group", lambda split, rows, policy: (events.append("decode"),
                                                                                  np.zeros((4, 8, 8, 3), np.uint8))[1])
    (figures,) = time_jobs([TimingJob("d", "d", Detector(), Split(), 2)], warmup=1, rounds=2, calibrate=False)
    assert figures["images_per_s"] > 0
    assert events[:2] == ["enter", "decode"] and events[-1] == "exit" and events.count("score") >= 3
