"""Harness overhead: images/s of a detector as the runner measures it, against a bare loop.

For each detector, the runner's ``score_split`` scores a corpus's test split (reading batches
from disk, the clock around ``score`` only), and a bare loop calls ``score`` on the same
batches already in memory. Rounds alternate between the two; the median of the per-pair ratios is reported
(target: runner / bare >= 0.95).

    python benchmarks/harness_overhead.py [--detectors spectrum,dct,srm] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detectors", default="spectrum,dct,srm")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", type=Path, default=Path("results/overhead"))
    args = parser.parse_args()

    from facebench.harness import registry
    from facebench.harness.runner import build_corpus, score_split, three_way_split
    from facebench.harness.suite import GeneratorSpec, SplitSpec

    spec = GeneratorSpec(name="parametric", label="overhead", count=400, batch_size=50,
                         params={"resolution": 128, "artifacts": "upsampling"})
    corpus, _ = build_corpus(spec, args.out / "corpora")
    fit_part, _, test = three_way_split(corpus, SplitSpec(0.5, 0))
    batches = [images for _, images in test.iter_batches(args.batch_size)]
    n_images = sum(len(b) for b in batches)
    print(f"{n_images} test images at 128 px, batch size {args.batch_size}, {args.rounds} rounds each")
    for name in args.detectors.split(","):
        detector = registry.create("detector", name)
        if detector.requires_fit:
            detector.fit(fit_part.load_images(), fit_part.labels)
        detector.score(batches[0])  # warm-up
        runner, bare = [], []
        for _ in range(args.rounds):
            _, _, throughput = score_split(detector, test, args.batch_size, name)
            runner.append(throughput["images_per_s"])
            start = time.perf_counter()
            for images in batches:
                detector.score(images)
            bare.append(n_images / (time.perf_counter() - start))
        # Each runner round against the bare round right after it: the pair shares the machine's
        # state (other jobs, clock), so the median of their ratios is steadier than a ratio of medians.
        ratios = sorted(r / b for r, b in zip(runner, bare))
        quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
        print(f"{name:>16}: runner {statistics.median(runner):8.1f} images/s, bare loop "
              f"{statistics.median(bare):8.1f} images/s, ratio {statistics.median(ratios):.3f} "
              f"(quartiles {quartiles[0]:.3f}-{quartiles[2]:.3f})")


if __name__ == "__main__":
    main()
