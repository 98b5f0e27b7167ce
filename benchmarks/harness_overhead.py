"""Harness overhead: a detector's images/s as a run records it, against a bare loop.

For every built-in detector (or those named), the runner's timing phase
(:func:`facebench.harness.run.throughput.time_detector`, the figure a run stores: warm-up, rounds of
one ``score`` call, the median round) and a bare loop (the same warm-up call, then the same plain
``detector.score`` calls on the same in-memory batches, one per round, each timed alone, as many
rounds and for as long as the runner's phase, the median round) are
measured in turn, bare first and last, so that every runner measurement lies between two bare
ones: at least ``--pairs`` times and more until ``--seconds`` have gone by (fast detectors get
more pairs; their figures are the noisiest). Each pair's ratio is the runner's figure over the
geometric mean of the two bare figures around it, so a machine whose speed drifts moves both
sides alike. The table gives the median of those ratios with its quartiles (target: >= 0.95) and the
machine's load average (os.getloadavg) before and after: on a loaded machine no figure holds.
The published detectors get seeded random weights of the published shapes
(``published_throughput.make_detector``; their speed does not depend on weight values) and see
the corpus's 128 px images through their own preprocessing.

    python benchmarks/harness_overhead.py [--detectors spectrum,dct] [--pairs 15] [--rounds 5]
    python benchmarks/harness_overhead.py --count 24 --pairs 2 --seconds 0 --rounds 2 --detectors spectrum   # a quick check
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from pathlib import Path
from typing import Callable

#: Built-in detectors that cannot run without something from the user (a program, a weights file).
NEEDS_INPUT = ("command", "checkpoint")
#: Built-in detectors timed with seeded random weights of the published shapes.
PUBLISHED = ("npr", "cnndetection", "univfd", "rine", "patchcraft", "fusing")


def create_detector(name: str, weights: Path, batch_size: int | None):
    """A built-in detector by name; a published one with random weights written under ``weights``."""
    from facebench.harness.contracts import registry

    if name not in PUBLISHED:
        return registry.create("detector", name)
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from published_throughput import make_detector

    weights.mkdir(parents=True, exist_ok=True)
    return make_detector(name, weights, "cpu", batch_size or 16)


def detector_names(requested: str | None) -> list[str]:
    from facebench.harness.contracts import registry

    if requested:
        return [name.strip() for name in requested.split(",") if name.strip()]
    return [name for name in registry.names("detector") if name not in NEEDS_INPUT]


def bare_loop(detector, batches: list, warmup: int, rounds: int, min_seconds: float = 0.0, max_rounds: int = 200) -> float:
    """Median images/s of plain ``detector.score`` calls, one call per round on the next of ``batches``
    in turn, each call timed alone: at least ``rounds`` and one per batch, more until ``min_seconds``
    are timed (at most ``max_rounds``). These are the calls the runner's timing phase makes, for as
    long, so the two sides of a pair sample the machine alike and differ only by the harness."""
    from facebench.harness.run.throughput import uncached

    call_seconds: list[float] = []
    least = max(rounds, len(batches))
    with uncached(detector):  # as the runner's timing phase: eye localisations are not served from the cache
        for i in range(warmup):
            detector.score(batches[i % len(batches)])
        while len(call_seconds) < least or (sum(call_seconds) < min_seconds and len(call_seconds) < max_rounds):
            batch = batches[len(call_seconds) % len(batches)]
            start = time.perf_counter()
            detector.score(batch)
            call_seconds.append(time.perf_counter() - start)
    return statistics.median(len(batches[0]) / seconds for seconds in call_seconds)


def quartiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


def measure(name: str, fit_part, test, args) -> dict:
    from facebench.harness.run.throughput import TIMING_IMAGES, time_detector
    from facebench.harness.data.suite import ThroughputSpec
    from facebench.harness.run.timing import detector_batches, set_eval

    detector = create_detector(name, args.out / "weights", args.batch_size)
    if detector.requires_fit:
        detector.fit(fit_part.load_images(), fit_part.labels)
    set_eval(detector)
    batch_size = args.batch_size or int(getattr(detector, "batch_size", 32))
    settings = ThroughputSpec(warmup=1, rounds=args.rounds, min_seconds=args.min_seconds)
    batches = detector_batches(test.load_images(test.rows()[:TIMING_IMAGES]), batch_size)
    load_before = os.getloadavg()[0]
    runner, bare = bracketed(lambda: time_detector(detector, test, batch_size, settings)["images_per_s"],
                             lambda: bare_loop(detector, batches, settings.warmup, settings.rounds, settings.min_seconds),
                             args.pairs, args.seconds)
    q1, median, q3 = quartiles(bracketed_ratios(runner, bare))
    return {"name": name, "batch": batch_size, "images": sum(len(b) for b in batches), "runner": statistics.median(runner),
            "bare": statistics.median(bare), "ratio": median, "q1": q1, "q3": q3, "pairs": len(runner),
            "load": (load_before, os.getloadavg()[0])}


def bracketed(runner: Callable[[], float], bare: Callable[[], float], pairs: int, seconds: float = 0.0,
              max_pairs: int = 200) -> tuple[list[float], list[float]]:
    """Runner and bare-loop measurements taken bare, runner, bare, runner, ..., bare: every runner
    measurement between two bare ones. At least ``pairs`` runner measurements, more until
    ``seconds`` have gone by (at most ``max_pairs``). Returns (runner figures, bare figures), the
    bare list one longer."""
    started = time.perf_counter()
    runs, bares = [], [bare()]
    while len(runs) < pairs or (time.perf_counter() - started < seconds and len(runs) < max_pairs):
        runs.append(runner())
        bares.append(bare())
    return runs, bares


def bracketed_ratios(runner: list[float], bare: list[float]) -> list[float]:
    """Each runner figure over the geometric mean of the bare figures just before and after it: a
    machine whose speed drifts through the pair moves both sides alike."""
    return [r / math.sqrt(before * after) for r, before, after in zip(runner, bare, bare[1:])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detectors", default=None, help="comma-separated names [default: every built-in "
                        "detector that needs no weights or program]")
    parser.add_argument("--pairs", type=int, default=15, help="at least this many runner measurements per "
                        "detector, each between two bare-loop ones")
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="more pairs until this long has gone by per detector (at most 200 pairs)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds in each measurement")
    parser.add_argument("--min-seconds", type=float, default=0.5,
                        help="the runner's timing phase times at least this long, as the default suite does "
                             "([throughput] min_seconds)")
    parser.add_argument("--batch-size", type=int, default=None, help="[default: each detector's own]")
    parser.add_argument("--count", type=int, default=240, help="seeds of the parametric corpus")
    parser.add_argument("--resolution", type=int, default=128,
                        help="of the corpus (fusing centre-crops 224 px: give it 256)")
    parser.add_argument("--out", type=Path, default=Path("results/overhead"))
    args = parser.parse_args()
    if args.pairs < 1 or args.seconds < 0 or args.rounds < 1:
        parser.error("--pairs and --rounds must be at least 1 and --seconds not negative")

    from facebench.harness.run.corpora import build_corpus
    from facebench.harness.run.fitting import three_way_split
    from facebench.harness.data.suite import GeneratorSpec, SplitSpec

    spec = GeneratorSpec(name="parametric", label="overhead", count=args.count, batch_size=40,
                         params={"resolution": args.resolution, "artifacts": "upsampling,eyes_fixed"})
    corpus, _ = build_corpus(spec, args.out / "corpora")
    fit_part, _, test = three_way_split(corpus, SplitSpec(0.5, 0))
    print(f"{len(test)} test images at {args.resolution} px; at least {args.pairs} pairs (and {args.seconds:g} s) "
          f"of {args.rounds} rounds per detector; "
          f"{os.cpu_count()} CPUs")
    header = (f"{'detector':>16} {'batch':>5} {'runner img/s':>12} {'bare img/s':>11} {'ratio':>6} "
              f"{'q1':>6} {'q3':>6} {'pairs':>5}  load 1m before/after  verdict")
    print(header)
    print("-" * len(header))
    for name in detector_names(args.detectors):
        try:
            row = measure(name, fit_part, test, args)
        except Exception as exc:  # noqa: BLE001 - one detector's failure must not hide the others
            print(f"{name:>16} failed: {type(exc).__name__}: {exc}")
            continue
        verdict = "ok" if row["ratio"] >= 0.95 else "BELOW 0.95"
        print(f"{row['name']:>16} {row['batch']:>5} {row['runner']:>12.1f} {row['bare']:>11.1f} {row['ratio']:>6.3f} "
              f"{row['q1']:>6.3f} {row['q3']:>6.3f} {row['pairs']:>5}  {row['load'][0]:>5.2f} / {row['load'][1]:<5.2f}"
              f"          {verdict}", flush=True)


if __name__ == "__main__":
    main()
