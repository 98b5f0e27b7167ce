"""Issue 8: the same suite on Ray gives the same corpus digest and scores as locally; a worker
killed mid-generation loses and duplicates nothing; a detector that raises on Ray is one task error."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from facebench.harness.contracts import registry
from facebench.harness.data.corpus import Corpus, verify
from facebench.harness.run.executors import ExecutorError, LocalExecutor, get_executor
from facebench.harness.run.runner import run_suite
from facebench.harness.data.suite import load_suite

HERE = Path(__file__).resolve().parent

SUITE = """
name = "executors"
[split]
test_fraction = 0.5
seed = 0
[protocols]
perturbations = ["jpeg:50"]
[bootstrap]
resamples = 50
[[generators]]
name = "{generator}"
label = "faces"
count = 16
batch_size = 4
[generators.params]
resolution = 64
artifacts = "upsampling:0.5"
camera = false
[[detectors]]
name = "spectrum"
batch_size = 8
{extra}
"""


def _suite(tmp: Path, generator: str = "parametric", extra: str = ""):
    path = tmp / "suite.toml"
    path.write_text(SUITE.format(generator=generator, extra=extra))
    return load_suite(path)


def _scores(result) -> list[tuple]:
    rows = pq.read_table(result.run_dir / "scores.parquet").to_pylist()
    return sorted((r["detector"], r["perturbation"], r["id"], r["score"]) for r in rows)


def test_unknown_executor_is_one_clear_error():
    with pytest.raises(ExecutorError, match="unknown executor"):
        get_executor("dask")
    assert isinstance(get_executor("local"), LocalExecutor)


def test_local_executor_is_the_default_behaviour(tmp_path):
    suite = _suite(tmp_path)
    plain = run_suite(suite, tmp_path / "plain", show_progress=False)
    local = run_suite(suite, tmp_path / "local", show_progress=False, executor=LocalExecutor())
    assert plain.errors == local.errors == []
    assert plain.run["info"]["corpora"] == local.run["info"]["corpora"]
    assert _scores(plain) == _scores(local)


# ---------------------------------------------------------------------------- Ray

try:
    import ray
except ImportError:
    ray = None
needs_ray = pytest.mark.skipif(ray is None, reason="ray is not installed (pip install 'facebench[ray]')")


@pytest.fixture(scope="module")
def ray_runtime(tmp_path_factory):
    crash_dir = tmp_path_factory.mktemp("crash")
    patch = pytest.MonkeyPatch()
    # workers are separate processes: they import the test plug-ins from here, and see the crash folder
    patch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])))
    patch.setenv("FACEBENCH_TEST_CRASH_DIR", str(crash_dir))
    patch.setitem(registry.BUILTINS, "detector", (*registry.BUILTINS["detector"], "executor_plugins:BrokenDetector"))
    try:
        # address="local": a runtime of its own, never a cluster another process on this machine started
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
        executor = get_executor("ray")
        yield executor, crash_dir
        executor.close()
        ray.shutdown()
    finally:
        patch.undo()  # also when the runtime failed to start: later tests must not see the test plug-ins


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("local")
    return run_suite(_suite(root), root / "results", show_progress=False)


@needs_ray
def test_ray_gives_the_local_digest_and_scores(ray_runtime, local_run, tmp_path):
    executor, _ = ray_runtime
    result = run_suite(_suite(tmp_path), tmp_path / "results", show_progress=False, executor=executor)
    assert result.errors == []
    assert result.run["info"]["corpora"] == local_run.run["info"]["corpora"]
    local, remote = _scores(local_run), _scores(result)
    assert [r[:3] for r in local] == [r[:3] for r in remote] and len(local) >= 16
    assert np.allclose([r[3] for r in local], [r[3] for r in remote])
    (ray_corpus,) = result.run["info"]["corpus_paths"].values()
    (local_corpus,) = local_run.run["info"]["corpus_paths"].values()
    assert Corpus.open(ray_corpus).ids == Corpus.open(local_corpus).ids  # same manifest order
    assert verify(ray_corpus).ok
    detector = [t for t in result.throughput if t["kind"] == "detector"]
    local_speed = [t for t in local_run.throughput if t["kind"] == "detector"]
    assert detector and detector[0]["images"] == local_speed[0]["images"] and detector[0]["images_per_s"] > 0


@needs_ray
def test_a_worker_killed_mid_generation_loses_and_duplicates_nothing(ray_runtime, local_run, tmp_path, monkeypatch):
    executor, crash_dir = ray_runtime
    # the crashing generator stands in for the parametric one: same name, same records
    monkeypatch.setitem(registry.BUILTINS, "generator", tuple(
        "executor_plugins:CrashyGenerator" if target.endswith(":ParametricGenerator") else target
        for target in registry.BUILTINS["generator"]))
    (crash_dir / "armed").write_text("")
    suite = _suite(tmp_path)
    try:
        result = run_suite(suite, tmp_path / "results", show_progress=False, executor=executor)
    finally:
        (crash_dir / "armed").unlink()
    assert (crash_dir / "fired").exists(), "the crash was never triggered"
    assert result.errors == []
    (path,) = result.run["info"]["corpus_paths"].values()
    corpus = Corpus.open(path)
    assert len(corpus.ids) == len(set(corpus.ids)) == 32
    assert verify(path).ok  # no missing, corrupt or extra files
    # the digest is the plain parametric corpus's
    assert corpus.digest == next(iter(local_run.run["info"]["corpora"].values()))


@needs_ray
def test_a_detector_raising_on_ray_is_one_task_error(ray_runtime, tmp_path):
    executor, _ = ray_runtime
    suite = _suite(tmp_path, extra='[[detectors]]\nname = "broken"\n')
    result = run_suite(suite, tmp_path / "results", show_progress=False, executor=executor)
    broken = [e for e in result.errors if "broken" in e["task"]]
    assert len(broken) == 2  # clean and jpeg:50
    assert [e["message"] for e in broken] == ["ValueError: broken detector: no scores today"] * 2
    assert not [e for e in result.errors if "broken" not in e["task"]]
    assert {m["detector"] for m in result.metrics} == {"spectrum"}


class _CudaDetector:
    """Declares a CUDA device (never reaches one: the cluster has no GPU)."""

    name, version, requires_fit, inputs, batch_size, device = "cuda-only", "1", False, "pixels", 8, "cuda"

    def score(self, images):
        return np.zeros(len(images))


@needs_ray
def test_a_cuda_plugin_on_a_cluster_without_gpus_is_one_clear_error(ray_runtime, local_run):
    executor, _ = ray_runtime
    (path,) = local_run.run["info"]["corpus_paths"].values()
    with pytest.raises(ExecutorError, match="needs a GPU and the cluster has none"):
        executor.score_split(_CudaDetector(), Corpus.open(path), 8, "cuda-only")


@needs_ray
def test_one_pool_serves_every_scoring_and_a_detector_is_sent_once(ray_runtime, local_run, monkeypatch):
    executor, _ = ray_runtime
    (path,) = local_run.run["info"]["corpus_paths"].values()
    corpus = Corpus.open(path)
    puts = []
    real_put = ray.put
    monkeypatch.setattr(ray, "put", lambda value, **kw: puts.append(value) or real_put(value, **kw))
    detector = registry.create("detector", "spectrum")
    detector.fit(corpus.load_images(), np.array(corpus.manifest.column("label").to_pylist()))
    first = executor.score_split(detector, corpus, 4, "spectrum")[1]
    actors = list(executor.pools[0.0].actors)
    second = executor.score_split(detector, corpus, 4, "spectrum")[1]
    assert executor.pools[0.0].actors == actors  # the same workers, none started again
    assert puts == [detector]  # sent once for both scorings
    assert np.array_equal(first, second)
    local = LocalExecutor().score_split(detector, corpus, 4, "spectrum")[1]
    assert np.allclose(first, local)


@needs_ray
def test_no_worker_ready_within_the_wait_is_one_clear_error(ray_runtime):
    from facebench.harness.run.ray_executor import Worker, WorkerPool, run_batches

    pool = WorkerPool(0.0)
    pool.remote = ray.remote(Worker).options(num_cpus=0, resources={"nowhere": 1})  # a worker no node can start
    pool.grow(1)
    try:
        with pytest.raises(ExecutorError, match="no worker of score x started within 0.5 s; the cluster has no free CPU"):
            run_batches(pool, 1, lambda actor, i: actor.ready.remote(), lambda i, result: None, 0, "score x", wait_s=0.5)
    finally:
        pool.close()


@needs_ray
def test_ray_scores_a_mixed_size_corpus_through_each_detectors_input_policy(ray_runtime, tmp_path):
    from PIL import Image

    from facebench.harness.data.suite import GeneratorSpec
    from facebench.harness.run.executors import LocalExecutor
    from facebench.harness.run.perturb import parse

    import executor_plugins

    rng = np.random.default_rng(3)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, (height, width) in enumerate([(30, 40), (48, 32), (30, 40), (26, 26), (48, 32), (36, 60)] * 2):
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(photos / f"{i:02d}.png")
    spec = GeneratorSpec(name="folder", label="mixed", count=12, batch_size=5,
                         params={"path": str(photos), "resolution": "native"})
    corpus, _ = LocalExecutor().generate_corpus(spec, tmp_path / "corpus")
    executor, _ = ray_runtime
    for detector in (executor_plugins.MeanOfCrop(), executor_plugins.MeanAnySize()):
        for perturbation in ("none", "jpeg:75"):
            step = parse(perturbation)
            local_rows, local_scores, _ = LocalExecutor().score_split(detector, corpus, 4, "m", step)
            rows, scores, _ = executor.score_split(detector, corpus, 4, "m", step)
            assert [r["id"] for r in rows] == [r["id"] for r in local_rows] == corpus.ids  # the split's order
            np.testing.assert_allclose(scores, local_scores, rtol=0, atol=1e-12)
    assert len({(h, w) for h, w in corpus.sizes}) == 4
