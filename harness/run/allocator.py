"""glibc's malloc held in one state while throughput is timed.

glibc's malloc serves a large block from a fresh ``mmap`` until the process has freed blocks that
large, then raises its threshold and serves them from its heap. A block from a fresh ``mmap`` is
page-faulted in at first touch, on every call, so the same detector timed in a process that has
not yet freed large blocks (one that just decoded its images, say) runs slower than in one that
has: 0.77 of a bare loop for the cnn detector, against 0.91 with the thresholds fixed. The
timing phase therefore fixes both thresholds high while it runs (large blocks come from the heap,
and freed memory stays there for the next call), then sets them to the values glibc itself ends
at in a long-running process (32 MiB, and 64 MiB for the trim) and hands freed memory back.

Nothing changes where the process is not on glibc, or where the user set ``MALLOC_MMAP_THRESHOLD_``
or ``MALLOC_TRIM_THRESHOLD_`` (their settings rule).
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys
from contextlib import contextmanager
from typing import Iterator

#: mallopt's parameter numbers (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
#: The thresholds while timing: no block a detector allocates is served by a fresh mmap.
TIMING_THRESHOLDS = {M_MMAP_THRESHOLD: 2**30, M_TRIM_THRESHOLD: 2**31}
#: The thresholds after timing: where glibc's own adjustment ends (its largest mmap threshold on
#: 64-bit systems, and twice that for the trim).
AFTER_THRESHOLDS = {M_MMAP_THRESHOLD: 32 * 2**20, M_TRIM_THRESHOLD: 64 * 2**20}
#: Environment variables by which the user fixes the thresholds themselves.
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def glibc() -> ctypes.CDLL | None:
    """The C library, where it is glibc and may be tuned (none of the user's settings); else None."""
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return None
    if any(name in os.environ for name in USER_SETTINGS):
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


@contextmanager
def steady_allocator() -> Iterator[bool]:
    """A block in which glibc serves large blocks from its heap and keeps freed memory (see the
    module); yields whether it changed anything."""
    libc = glibc()
    if libc is None:
        yield False
        return
    for parameter, value in TIMING_THRESHOLDS.items():
        libc.mallopt(parameter, value)
    try:
        yield True
    finally:
        for parameter, value in AFTER_THRESHOLDS.items():
            libc.mallopt(parameter, value)
        libc.malloc_trim(0)
