"""glibc's malloc put in the state a long-running process reaches, before throughput is timed.

glibc's malloc serves a large block from a fresh ``mmap`` until the process has freed a block that
large; then it raises its threshold (up to 32 MiB on 64-bit systems) and serves blocks up to that
size from its heap. A block from a fresh ``mmap`` is page-faulted in at first touch, on every
call. So the same detector timed in a process that has not yet freed such blocks (one that just
decoded its images, say) ran slower than in one that had: the cnn detector at 0.77 of a bare loop
in the same process, 0.91 with the thresholds fixed. The timing phase therefore sets the
thresholds where glibc's own adjustment ends (mmap 32 MiB, trim 64 MiB) before it times, so
every process times in that state; blocks above 32 MiB come from their own ``mmap`` as in any
glibc process, and nothing is set back afterwards (glibc would not lower them either). At the
end of the block, freed memory is handed back (``malloc_trim``).

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
#: Where glibc's dynamic thresholds end on 64-bit systems (DEFAULT_MMAP_THRESHOLD_MAX, and the
#: trim threshold it sets to twice the mmap threshold).
LONG_RUN_THRESHOLDS = {M_MMAP_THRESHOLD: 32 * 2**20, M_TRIM_THRESHOLD: 64 * 2**20}
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
    """A block timed with glibc's thresholds where a long-running process has them (see the
    module); yields whether it changed anything."""
    libc = glibc()
    if libc is None:
        yield False
        return
    for parameter, value in LONG_RUN_THRESHOLDS.items():
        libc.mallopt(parameter, value)
    try:
        yield True
    finally:
        libc.malloc_trim(0)
