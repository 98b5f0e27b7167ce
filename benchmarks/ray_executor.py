"""Issue 8: what the Ray executor costs on one machine, and how scoring scales with actors.

    python benchmarks/ray_executor.py [--suite default] [--skip-suite] [--images 256] [--ms 10]

1. Wall time of a suite (default: the shipped default suite, no task cache) with the local
   executor and with ``--executor ray`` on a local Ray runtime: the overhead ratio.
2. A simulated scaling run: a detector that sleeps ``--ms`` per image (releasing the GIL, as
   a model in native code or on a GPU does) scores one corpus on N = 1, 2, 4 Ray Data actors;
   images/s against N. On one machine this shows the executor's parallelism and overhead, not
   a cluster's network or storage.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from facebench.harness.run.corpora import generate_corpus
from facebench.harness.run.runner import run_suite
from facebench.harness.data.suite import GeneratorSpec, load_suite


class SleepyDetector:
    """Sleeps ``ms`` per image, then scores mean brightness (pickled by value to the actors)."""

    name, version, requires_fit, inputs, batch_size = "sleepy", "1", False, "pixels", 16

    def __init__(self, ms: float = 10.0):
        self.ms = ms

    def score(self, images):
        time.sleep(self.ms / 1000 * len(images))
        return np.asarray(images, dtype=float).mean(axis=(1, 2, 3)) / 255.0


def suite_overhead(name: str, root: Path) -> tuple[float, float]:
    import ray

    from facebench.harness.run.executors import get_executor

    suite = load_suite(name)
    start = time.perf_counter()
    local = run_suite(suite, root / "local", show_progress=False, use_cache=False)
    local_s = time.perf_counter() - start
    ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    executor = get_executor("ray")
    start = time.perf_counter()  # the runtime's start-up is left out: a cluster is already up
    remote = run_suite(suite, root / "ray", show_progress=False, use_cache=False, executor=executor)
    ray_s = time.perf_counter() - start
    ray.shutdown()
    same = local.run["info"]["corpora"] == remote.run["info"]["corpora"]
    print(f"suite {name!r}: local {local_s:.1f} s, ray {ray_s:.1f} s, overhead x{ray_s / local_s:.2f}; "
          f"same corpus digests: {same}; errors local {len(local.errors)}, ray {len(remote.errors)}")
    return local_s, ray_s


def scaling(root: Path, images: int, ms: float, actors: tuple[int, ...]) -> None:
    import ray

    from facebench.harness.run.ray_executor import RayExecutor

    spec = GeneratorSpec(name="parametric", label="faces", count=images // 2, batch_size=32,
                         params={"resolution": 64, "artifacts": "upsampling:0.5", "camera": False})
    corpus, _ = generate_corpus(spec, root / "scaling-corpus")
    ray.init(num_cpus=max(actors), include_dashboard=False, log_to_driver=False, configure_logging=False)
    detector = SleepyDetector(ms)
    print(f"scoring {len(corpus)} images at {ms:g} ms/image, batch 16 (serial floor {len(corpus) * ms / 1000:.2f} s):")
    baseline = None
    for n in actors:
        executor = RayExecutor(actors=n)
        executor.score_split(detector, corpus, 16, "sleepy")  # warm: workers and imports
        start = time.perf_counter()
        _, scores, throughput = executor.score_split(detector, corpus, 16, "sleepy")
        wall = time.perf_counter() - start
        rate = len(scores) / wall
        baseline = baseline or rate
        print(f"  actors={n}: {rate:7.1f} images/s wall ({wall:.2f} s), x{rate / baseline:.2f} vs 1 actor; "
              f"actors' summed score time {throughput['actor_score_seconds']:.2f} s")
    ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="default")
    parser.add_argument("--skip-suite", action="store_true")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--ms", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        if not args.skip_suite:
            suite_overhead(args.suite, root)
        scaling(root, args.images, args.ms, (1, 2, 4))


if __name__ == "__main__":
    main()
