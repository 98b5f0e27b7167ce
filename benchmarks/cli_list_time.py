"""Wall time of `facebench list` (a cold process each time): the median of --runs runs.

    python benchmarks/cli_list_time.py --runs 5

Issue 17's target: well under a second (it imported every plug-in, torch included: ~4.5 s).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time


def time_list(runs: int) -> list[float]:
    """Seconds per `facebench list` run, each a fresh process with output discarded."""
    command = [shutil.which("facebench") or "facebench", "list"]
    if not shutil.which("facebench"):
        command = [sys.executable, "-m", "facebench.harness.cli", "list"]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    times = time_list(args.runs)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"facebench list: median {statistics.median(times):.2f} s over {len(times)} runs "
          f"(min {min(times):.2f}, max {max(times):.2f}; load average {load:.1f})")


if __name__ == "__main__":
    main()
