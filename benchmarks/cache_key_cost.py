"""Cost of the cache keys' provenance: milliseconds per task key of the default suite's detectors.

Times, in a fresh process, facebench's own digest (once per process), then the provenance of
each built-in detector and generator as every task key and corpus key of a run computes it
(target: the keys of a default run add well under 50 ms in all).

    python benchmarks/cache_key_cost.py [--repeats 100]
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=100)
    args = parser.parse_args()

    from facebench.harness.contracts import registry
    from facebench.harness.run.provenance import facebench_digest, provenance
    from facebench.harness.data.suite import load_suite

    start = time.perf_counter()
    facebench_digest()
    print(f"facebench digest (once per process): {1e3 * (time.perf_counter() - start):.2f} ms")
    suite = load_suite()
    specs = [("generator", s) for s in suite.generators] + [("detector", s) for s in suite.detectors]
    total = 0.0
    for kind, spec in specs:
        cls = registry.load(kind, spec.name)
        start = time.perf_counter()
        for _ in range(args.repeats):
            provenance(cls, spec.params)
        each = (time.perf_counter() - start) / args.repeats
        total += each
        print(f"{kind} {spec.label}: {1e3 * each:.3f} ms per key")
    print(f"one key per plug-in of the default suite: {1e3 * total:.2f} ms in all")


if __name__ == "__main__":
    main()
