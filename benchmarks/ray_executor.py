"""Issues 8 and 20: what the Ray executor costs on one machine, how scoring scales with actors, and
the constants of the throughput model in docs/ray.md ("Sizing").

    python benchmarks/ray_executor.py suite   [--suite default] [--repeats 3]
    python benchmarks/ray_executor.py scaling [--images 1024] [--ms 20] [--actors 1 2]
    python benchmarks/ray_executor.py model   [--images 256] [--ms 20]
    python benchmarks/ray_executor.py predict [--suite default] [--startup S] [--overhead S] [--cores 2] [--nodes 1 2 4 8]

``suite``: wall time of a suite (no task cache) with the local executor and with the Ray executor
on a local Ray runtime (started before the clock: a cluster is already up), runs alternated,
median of ``--repeats``; and whether the corpus digests and metrics are identical.

``scaling``: a CPU-bound detector (a busy loop of ``--ms`` per image holding the GIL, not a sleep)
scores ``--images`` images on 1, 2, ... actors of one pool; images/s and the scaling efficiency
(images/s at N actors / (N x images/s at 1 actor)).

``model``: the model's constants on this machine (actor start-up, per-batch overhead, per-image
decode) and its prediction against measured scorings on one node (1 and 2 actors) and on two
nodes of one CPU each (``ray.cluster_utils.Cluster``).

``predict``: the model for a whole suite: one local run split into the driver's part and the part
Ray moves to workers, and the wall time it predicts on N nodes (compare with ``suite``).

Every line carries the load average: the machine may be shared.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from facebench.harness.data.suite import GeneratorSpec, load_suite
from facebench.harness.run.corpora import generate_corpus
from facebench.harness.run.runner import run_suite

BATCH = 16


class BusyDetector:
    """Spins for ``ms`` of its thread's CPU time per image (fixed work, holding the GIL, as Python or
    single-threaded numpy code does: on a busy machine it takes longer, as real work would), then
    scores mean brightness. Pickled by value to the actors."""

    name, version, requires_fit, inputs, batch_size = "busy", "1", False, "pixels", BATCH

    def __init__(self, ms: float = 20.0):
        self.ms = ms

    def score(self, images):
        end = time.thread_time() + self.ms / 1000 * len(images)
        while time.thread_time() < end:
            pass
        return np.asarray(images, dtype=float).mean(axis=(1, 2, 3)) / 255.0


def load() -> str:
    return "load %.2f %.2f %.2f" % os.getloadavg()


#: Ray starts its workers at nice 15 (its ``worker_niceness``): on a machine shared with other
#: work they yield to it, and to the local executor's nice-0 process. ``--worker-niceness 0``
#: makes the comparison even there; on a quiet machine it changes nothing.
WORKER_NICENESS: int | None = None


def ray_init(**options) -> None:
    import ray

    if WORKER_NICENESS is not None:
        options["_system_config"] = {"worker_niceness": WORKER_NICENESS}
    ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False, **options)


# ---------------------------------------------------------------------------- (a) the suite


def comparable_metrics(result) -> list[tuple]:
    """The metric rows as sorted tuples, floats to 9 places, NaN as "nan"."""
    def plain(value):
        if isinstance(value, float):
            return "nan" if math.isnan(value) else round(value, 9)
        return value

    return sorted(tuple(sorted((k, str(plain(v))) for k, v in row.items())) for row in result.metrics)


def suite_overhead(name: str, root: Path, repeats: int) -> None:
    import ray

    from facebench.harness.run.executors import get_executor

    suite = load_suite(name)
    ray_init()
    times: dict[str, list[float]] = {"local": [], "ray": []}
    results = {}
    for repeat in range(repeats):
        for kind in ("local", "ray"):
            executor = get_executor("ray") if kind == "ray" else None
            start = time.perf_counter()
            result = run_suite(suite, root / f"{kind}-{repeat}", show_progress=False, use_cache=False, executor=executor)
            seconds = time.perf_counter() - start
            if executor is not None:
                executor.close()
            times[kind].append(seconds)
            results[kind] = result
            print(f"  {kind:5s} run {repeat + 1}: {seconds:6.1f} s  errors {len(result.errors)}  ({load()})", flush=True)
    ray.shutdown()
    local, remote = statistics.median(times["local"]), statistics.median(times["ray"])
    same_digests = results["local"].run["info"]["corpora"] == results["ray"].run["info"]["corpora"]
    same_metrics = comparable_metrics(results["local"]) == comparable_metrics(results["ray"])
    print(f"suite {name!r}: local median {local:.1f} s, ray median {remote:.1f} s, ray/local x{remote / local:.2f} "
          f"(target <= 1.3); identical digests: {same_digests}; identical metrics: {same_metrics}")


class TimedLocal:
    """The local executor, timing what the Ray executor would move to workers (generation and
    scoring) and counting its batches."""

    def __init__(self):
        from facebench.harness.run.executors import LocalExecutor

        self.inner, self.seconds, self.batches = LocalExecutor(), 0.0, 0

    def generate_corpus(self, spec, path, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self.inner.generate_corpus(spec, path, *args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start
            self.batches += math.ceil(spec.count / spec.batch_size) * (2 if spec.reals else 1)

    def score_split(self, detector, split, batch_size, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self.inner.score_split(detector, split, batch_size, *args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start
            self.batches += math.ceil(len(split) / batch_size)

    def close(self):
        pass


def suite_prediction(name: str, root: Path, nodes: list[int], cores: float, startup: float, overhead: float) -> None:
    """The model for a suite: a local run split into the driver's part D and the part W that goes
    to workers (B batches); on N nodes of C cores, T = D + startup + W / (N x C) + B x overhead / (N x C)."""
    suite = load_suite(name)
    timed = TimedLocal()
    start = time.perf_counter()
    run_suite(suite, root / "timed-local", show_progress=False, use_cache=False, executor=timed)  # type: ignore[arg-type]
    total = time.perf_counter() - start
    driver = total - timed.seconds
    print(f"suite {name!r} locally: {total:.1f} s = driver {driver:.1f} s + generation and scoring {timed.seconds:.1f} s "
          f"in {timed.batches} batches  ({load()})")
    for n in nodes:
        guess = driver + startup + (timed.seconds + timed.batches * overhead) / (n * cores)
        print(f"  model on {n} node(s) x {cores:g} cores: {guess:.1f} s")
    free = free_cores(int(cores))
    guess = driver + startup + (timed.seconds + timed.batches * overhead) / free
    print(f"  model on this machine, {free:.2f} cores free now: {guess:.1f} s  ({load()})")


# ---------------------------------------------------------------------------- (b) scaling


def make_corpus(root: Path, images: int):
    spec = GeneratorSpec(name="parametric", label="faces", count=images // 2, batch_size=64,
                         params={"resolution": 64, "artifacts": "upsampling:0.5", "camera": False})
    corpus, _ = generate_corpus(spec, root / f"corpus-{images}")
    return corpus


def timed_scoring(executor, detector, corpus) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    _, scores, _ = executor.score_split(detector, corpus, BATCH, "busy")
    return time.perf_counter() - start, scores


def start_pool(executor, actors: int) -> float:
    """Seconds until ``actors`` workers of a new pool answer (process start, imports)."""
    import ray

    start = time.perf_counter()
    pool = executor.pool(0.0, actors)
    ray.wait(list(pool.probes), num_returns=len(pool.probes))
    return time.perf_counter() - start


def spin(seconds: float) -> None:
    """``seconds`` of this thread's CPU time."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def machine_ceiling(images: int, ms: float, counts: list[int]) -> None:
    """The same CPU work in N plain processes, no Ray: the scaling this machine allows right now
    (below N when other work shares its cores)."""
    from concurrent.futures import ProcessPoolExecutor

    baseline = None
    for n in counts:
        with ProcessPoolExecutor(n) as processes:
            list(processes.map(spin, [0.01] * n))  # started
            start = time.perf_counter()
            list(processes.map(spin, [images * ms / 1000 / n] * n))
            rate = images / (time.perf_counter() - start)
        baseline = baseline or rate
        print(f"  no Ray, {n} process(es): {rate:7.1f} images/s, efficiency {rate / (n * baseline):.2f}  ({load()})",
              flush=True)


def scaling(root: Path, images: int, ms: float, actor_counts: list[int]) -> None:
    import ray

    from facebench.harness.run.ray_executor import RayExecutor

    corpus = make_corpus(root, images)
    ray_init(num_cpus=max(actor_counts))
    detector = BusyDetector(ms)
    print(f"scoring {len(corpus)} images at {ms:g} ms/image of CPU, batch {BATCH} "
          f"(serial floor {len(corpus) * ms / 1000:.1f} s):")
    baseline, reference = None, None
    for n in actor_counts:
        executor = RayExecutor(actors=n)
        startup = start_pool(executor, n)
        timed_scoring(executor, BusyDetector(1.0), corpus)  # warm: the actors' imports and the split's manifest
        wall, scores = timed_scoring(executor, detector, corpus)
        rate = len(scores) / wall
        baseline = baseline or rate
        reference = scores if reference is None else reference
        same = np.array_equal(scores, reference)
        print(f"  actors={n}: {rate:7.1f} images/s ({wall:.2f} s), efficiency {rate / (n * baseline):.2f}; "
              f"start-up {startup:.2f} s; same scores: {same}  ({load()})", flush=True)
        executor.close()
    ray.shutdown()
    machine_ceiling(images, ms, actor_counts)


# ---------------------------------------------------------------------------- (c) the model


def free_cores(most: int, work: float = 2.0) -> float:
    """How many cores this machine gives right now (up to ``most``): the speed-up of ``most``
    plain processes over one on the same fixed CPU work."""
    from concurrent.futures import ProcessPoolExecutor

    walls = []
    for n in (1, most):
        with ProcessPoolExecutor(n) as processes:
            list(processes.map(spin, [0.01] * n))
            start = time.perf_counter()
            list(processes.map(spin, [work / n] * n))
            walls.append(time.perf_counter() - start)
    return min(float(most), walls[0] / walls[1])


def predict(images: int, actors: float, per_image: float, overhead: float) -> float:
    """Wall seconds of one scoring on ``actors`` workers: batches share out evenly, each costs
    ``BATCH x per_image + overhead``."""
    batches = math.ceil(images / BATCH)
    rounds = math.ceil(batches / actors) if actors == int(actors) else batches / actors  # fewer cores than actors: shared
    return rounds * (min(BATCH, images) * per_image + overhead)


def model(root: Path, images: int, ms: float) -> None:
    import ray
    from ray.cluster_utils import Cluster

    from facebench.harness.run.ray_executor import RayExecutor

    corpus = make_corpus(root, images)
    ray_init(num_cpus=2)
    executor = RayExecutor(actors=1)
    startup = start_pool(executor, 1)
    timed_scoring(executor, BusyDetector(0.0), corpus)  # warm
    empty = statistics.median(timed_scoring(executor, BusyDetector(0.0), corpus)[0] for _ in range(3))
    _, _, figures = executor.score_split(BusyDetector(0.0), corpus, BATCH, "busy")
    decode = 1 / figures["decode_images_per_s"]
    batches = math.ceil(len(corpus) / BATCH)
    overhead = max(0.0, empty / batches - BATCH * decode)
    per_image = ms / 1000 + decode
    print(f"constants ({load()}): actor start-up {startup:.2f} s; decode {1000 * decode:.2f} ms/image; "
          f"per-batch overhead {1000 * overhead:.1f} ms (batch {BATCH}); detector {ms:g} ms/image")
    executor.close()
    rows = []
    for actors in (1, 2):
        executor = RayExecutor(actors=actors)
        start_pool(executor, actors)
        timed_scoring(executor, BusyDetector(0.0), corpus)
        cores = free_cores(2)
        rows.append((f"1 node, {actors} actor(s)", actors, cores, timed_scoring(executor, BusyDetector(ms), corpus)[0]))
        executor.close()
    ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    for _ in range(2):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
    executor = RayExecutor()
    start_pool(executor, 2)
    timed_scoring(executor, BusyDetector(0.0), corpus)
    cores = free_cores(2)
    rows.append(("2 nodes x 1 CPU, 2 actors", 2, cores, timed_scoring(executor, BusyDetector(ms), corpus)[0]))
    executor.close()
    ray.shutdown()
    cluster.shutdown()
    print("measured, and the model given all cores free and given the cores free just before the run "
          "(2 plain processes vs 1 on the same work):")
    for label, actors, cores, wall in rows:
        guess = predict(len(corpus), actors, per_image, overhead)
        busy = predict(len(corpus), min(actors, cores), per_image, overhead)
        print(f"  {label:26s}: measured {wall:6.2f} s; model {guess:6.2f} s ({wall / guess - 1:+.0%}); "
              f"{cores:.2f} cores free: {busy:6.2f} s ({wall / busy - 1:+.0%})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["suite", "scaling", "model", "predict"])
    parser.add_argument("--startup", type=float, default=1.5, help="predict: seconds to start the workers (from `model`)")
    parser.add_argument("--overhead", type=float, default=0.01, help="predict: seconds per batch (from `model`)")
    parser.add_argument("--cores", type=float, default=2, help="predict: cores (workers) per node")
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 2, 4, 8], help="predict: node counts")
    parser.add_argument("--suite", default="default")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--images", type=int, default=None)
    parser.add_argument("--ms", type=float, default=20.0)
    parser.add_argument("--actors", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--worker-niceness", type=int, default=None, help="Ray workers' nice level (Ray's default: 15)")
    args = parser.parse_args()
    global WORKER_NICENESS
    WORKER_NICENESS = args.worker_niceness
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        if args.what == "suite":
            suite_overhead(args.suite, root, args.repeats)
        elif args.what == "scaling":
            scaling(root, args.images or 1024, args.ms, args.actors)
        elif args.what == "model":
            model(root, args.images or 256, args.ms)
        else:
            suite_prediction(args.suite, root, args.nodes, args.cores, args.startup, args.overhead)


if __name__ == "__main__":
    main()
