"""The speed gate's error rates: false failures on an unchanged build, catches of a slower one.

Each trial makes two fresh runs of a small suite (one 128 px parametric corpus) and compares
them with ``facebench compare``'s rules (:func:`facebench.harness.report.compare.compare`, throughput
tolerance 20% unless given):

- same build: both runs use the detector as it is; a failing throughput row is a false failure;
- slower build: the current run uses a wrapper of the same detector whose ``score`` keeps the CPU
  busy after each call for as long as makes images/s fall by ``--slowdown``
  (default 0.3); a failing throughput row is a catch.

The task cache is kept between runs (as a CI job would), so each run re-measures only the speed.
Where both runs timed the calibration workload beside every round, the gate judges images per
calibration unit round by round (each line says which figures it judged); the last line judges
the same runs on raw images/s, as for runs without those figures.

With ``--mode ab`` each trial is instead two calls of ``facebench speed-ab``'s timing
(:func:`facebench.harness.run.ab_timing.time_ab`, judged by :mod:`facebench.harness.report.speed_ab`):
the same build against itself, and against a worker whose detectors are slowed down the same way
(this script run with ``--worker``), both builds timed call by call in one phase.

    python benchmarks/speed_gate.py [--trials 10] [--detectors spectrum] [--slowdown 0.3]
    python benchmarks/speed_gate.py --mode ab --trials 10 --detectors spectrum,dct,srm
    python benchmarks/speed_gate.py --trials 1 --count 16 --min-seconds 0.1   # a quick check
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

SLOWDOWN = 0.3  # set from --slowdown before any run


class Slowed:
    """A detector whose ``score`` takes 1 / (1 - SLOWDOWN) times the wrapped one's time (:func:`slow_down`)."""

    name = "slowed"
    requires_fit = True
    version = "3"

    def __init__(self, inner: str = "spectrum"):
        from facebench.harness.contracts import registry

        self.inner = registry.create("detector", inner)
        self.requires_fit = self.inner.requires_fit
        self.batch_size = getattr(self.inner, "batch_size", 32)
        self.device = getattr(self.inner, "device", "cpu")
        slow_down(self.inner, SLOWDOWN)

    def fit(self, images, labels):
        self.inner.fit(images, labels)

    def score(self, images):
        return self.inner.score(images)


def slow_down(detector, slowdown: float) -> None:
    """Make ``detector.score`` take 1 / (1 - slowdown) times as long: after each call it keeps the
    CPU busy (a spin, not a sleep: a sleeping process hands its cores to others and wakes on a
    colder machine) for the call's own time times 1 / (1 - slowdown) - 1. Scoring part of the batch
    again instead would not do: a detector's time is not proportional to its batch (srm scores 14
    of 32 images in 0.79 of the per-image time, spectrum in 1.13), so the drop would miss the mark."""
    score = detector.score
    extra = 1 / (1 - slowdown) - 1

    def slower(images):
        start = time.perf_counter()
        scores = score(images)
        now = time.perf_counter()
        deadline = now + (now - start) * extra
        while time.perf_counter() < deadline:
            pass
        return scores

    detector.score = slower


def slowed_worker(slowdown: float) -> None:
    """A speed worker (``facebench.harness.run.speed_worker``) whose every detector is slowed down:
    the "slower build" of ``--mode ab``."""
    from facebench.harness.contracts import registry
    from facebench.harness.run import speed_worker

    create = registry.create

    def create_slowed(kind, name, **params):
        plugin = create(kind, name, **params)
        if kind == "detector":
            slow_down(plugin, slowdown)
        return plugin

    registry.create = create_slowed
    speed_worker.main()


def make_suite(detectors: list[str], slowed: bool, args):
    from facebench.harness.data.suite import parse_suite

    tables = [{"name": "slowed", "label": name, "params": {"inner": name}} if slowed else {"name": name}
              for name in detectors]
    data = {
        "name": "speed-gate",
        "split": {"test_fraction": 0.5},
        "bootstrap": {"resamples": 0},
        "protocols": {"sensitivity": False},
        "throughput": {"rounds": args.rounds, "min_seconds": args.min_seconds},
        "generators": [{"name": "parametric", "label": "faces", "count": args.count, "batch_size": 40,
                        "params": {"resolution": 128, "artifacts": "upsampling"}}],
        "detectors": tables,
    }
    return parse_suite(data, "speed_gate.py")


def gate(baseline, current, tolerance: float, raw: bool = False):
    """The comparison of the two runs' results, as `facebench compare` makes it; ``raw`` drops the
    per-round calibration units first, so the gate judges images/s as for runs without them."""
    from facebench.harness.report.compare import compare
    from facebench.harness.data.results import Results

    def rows(run):
        return [{k: v for k, v in t.items() if not (raw and k == "round_images_per_unit")} for t in run.throughput]

    results = [Results(r.run, r.metrics, rows(r), r.errors) for r in (baseline, current)]
    return compare(*results, throughput_tolerance=tolerance)


def ab_trials(args) -> None:
    """``--mode ab``: per trial, the build against itself and against the slowed worker."""
    import sys

    from facebench.harness.report.speed_ab import judge
    from facebench.harness.run.ab_timing import suite_lanes, time_ab, worker_command

    detectors = [d.strip() for d in args.detectors.split(",") if d.strip()]
    suite = make_suite(detectors, False, args)
    lanes = suite_lanes(suite, args.out)
    plain = worker_command(sys.executable)
    slowed = [sys.executable, str(Path(__file__).resolve()), "--worker", "--slowdown", str(args.slowdown)]
    print(f"--mode ab: {args.trials} trials; detectors {', '.join(detectors)}; tolerance {args.tolerance:.0%}; "
          f"slower build -{args.slowdown:.0%} images/s; at least {args.ab_rounds} paired rounds and "
          f"{args.min_seconds} s per build and row, in {args.sessions} sessions; load 1m {os.getloadavg()[0]:.2f}", flush=True)
    counts = {"same": [0, 0], "slower": [0, 0]}  # failed rows, rows
    ratios: dict[str, list[float]] = {"same": [], "slower": []}
    for trial in range(args.trials):
        for kind, current in (("same", plain), ("slower", slowed)):
            rows = time_ab(lanes, {"baseline": plain, "current": current}, rounds=args.ab_rounds,
                           min_seconds=args.min_seconds, sessions=args.sessions)
            for verdict in judge(rows, args.tolerance):
                counts[kind][0] += verdict.failed
                counts[kind][1] += 1
                ratios[kind].append(verdict.ratio)
                print(f"trial {trial + 1:>2} {kind:>6}: {verdict.name}: ratio {verdict.ratio:.3f} "
                      f"[{verdict.ratio_q1:.3f}, {verdict.ratio_q3:.3f}], {'fail' if verdict.failed else 'pass'}: "
                      f"{verdict.reason}", flush=True)
    print(f"false failures (same build): {counts['same'][0]} of {counts['same'][1]} detector rows ({args.trials} trials)")
    print(f"caught (build {args.slowdown:.0%} slower): {counts['slower'][0]} of {counts['slower'][1]} detector rows")
    for kind, values in ratios.items():
        print(f"median round ratio, {kind} build: median {statistics.median(values):.3f}, "
              f"range {min(values):.3f} .. {max(values):.3f}")
    print(f"load 1m at the end: {os.getloadavg()[0]:.2f}")


def main() -> None:
    global SLOWDOWN
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--detectors", default="spectrum")
    parser.add_argument("--slowdown", type=float, default=0.3, help="fraction of images/s the slower build loses")
    parser.add_argument("--tolerance", type=float, default=0.2, help="the gate's throughput tolerance")
    parser.add_argument("--count", type=int, default=120, help="seeds of the corpus (test split: about 1.5 x count / 2)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--min-seconds", type=float, default=2.0, help="[throughput] min_seconds, as the ci suite sets it")
    parser.add_argument("--out", type=Path, default=Path("results/speed_gate"))
    parser.add_argument("--mode", choices=("runs", "ab"), default="runs",
                        help="runs: compare two stored runs (facebench compare); ab: both builds timed side by side "
                             "(facebench speed-ab)")
    parser.add_argument("--ab-rounds", type=int, default=15, help="--mode ab: least paired rounds per row")
    parser.add_argument("--sessions", type=int, default=3, help="--mode ab: pairs of fresh workers sharing the rounds")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # the slower build's worker
    args = parser.parse_args()
    SLOWDOWN = args.slowdown
    if args.worker:
        slowed_worker(args.slowdown)
        return
    if args.mode == "ab":
        ab_trials(args)
        return

    from facebench.harness.contracts import registry
    from facebench.harness.run.runner import run_suite

    registry.register("detector", "__main__:Slowed")
    detectors = [d.strip() for d in args.detectors.split(",") if d.strip()]
    same, slow = make_suite(detectors, False, args), make_suite(detectors, True, args)

    def run(suite):
        result = run_suite(suite, args.out, show_progress=False)
        if result.errors:
            raise SystemExit(f"run failed: {result.errors[0]['task']}: {result.errors[0]['message']}")
        return result

    print(f"{args.trials} trials; detectors {', '.join(detectors)}; tolerance {args.tolerance:.0%}; slower build "
          f"-{args.slowdown:.0%} images/s; load 1m {os.getloadavg()[0]:.2f}")
    false_failures = catches = rows_same = rows_slower = raw_false = raw_catches = 0
    raw_changes: dict[str, list[float]] = {"same": [], "slower": []}
    for trial in range(args.trials):
        pairs = (run(same), run(same)), (run(same), run(slow))
        unchanged, slower = (gate(*pair, args.tolerance) for pair in pairs)
        raw_same, raw_slower = (gate(*pair, args.tolerance, raw=True).throughput_rows for pair in pairs)
        raw_false += sum(r.failed for r in raw_same)
        raw_catches += sum(r.failed for r in raw_slower)
        raw_changes["same"] += [r.change for r in raw_same]
        raw_changes["slower"] += [r.change for r in raw_slower]
        # every detector's row counts on its own: one detector caught does not excuse another missed
        false_failures += sum(r.failed for r in unchanged.throughput_rows)
        catches += sum(r.failed for r in slower.throughput_rows)
        rows_same += len(unchanged.throughput_rows)
        rows_slower += len(slower.throughput_rows)
        for kind, comparison in (("same", unchanged), ("slower", slower)):
            for r in comparison.throughput_rows:
                unit = "images/calibration unit" if r.per_round_units else "images/s"
                print(f"trial {trial + 1:>2} {kind:>6}: {r.label}: {r.base:8.3f} -> {r.new:8.3f} {unit} "
                      f"({r.change:+.1%}), {r.status}: {r.reason}", flush=True)
            if comparison.calibration_note():
                print(f"          note: {comparison.calibration_note()}")
    print(f"false failures (same build): {false_failures} of {rows_same} detector rows ({args.trials} trials)")
    print(f"caught (build {args.slowdown:.0%} slower): {catches} of {rows_slower} detector rows ({args.trials} trials)")
    print(f"the same runs judged on raw images/s: {raw_false} false failures, {raw_catches} caught")
    for kind, changes in raw_changes.items():
        print(f"raw images/s change, {kind} build: median {statistics.median(changes):+.1%}, "
              f"range {min(changes):+.1%} .. {max(changes):+.1%}")
    print(f"load 1m at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
