"""Issue 20: the Ray executor on a multi-node cluster (``ray.cluster_utils.Cluster``: real raylets on
this machine). A worker node killed in the middle of generation, or of scoring, loses and duplicates
nothing: the run ends with the local executor's corpus digests, scores and metrics. A driver killed
mid-run and started again resumes from the task cache.

Marked ``ray_cluster`` (a minute or two): ``pytest -m "not ray_cluster"`` skips them; CI runs them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from facebench.harness.contracts import registry
from facebench.harness.data.corpus import Corpus, verify
from facebench.harness.data.store import Store
from facebench.harness.data.suite import load_suite
from facebench.harness.run.executors import LocalExecutor, get_executor
from facebench.harness.run.runner import run_suite

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

pytestmark = [pytest.mark.ray_cluster, pytest.mark.slow]

HERE = Path(__file__).resolve().parent
NODE = {"num_cpus": 1, "object_store_memory": 80 * 2**20}

SUITE = """
name = "cluster"
[split]
test_fraction = 0.5
seed = 0
[protocols]
perturbations = ["jpeg:50"]
[bootstrap]
resamples = 50
[throughput]
measure = false
[[generators]]
name = "parametric"
label = "faces"
count = 16
batch_size = 2
[generators.params]
resolution = 64
artifacts = "upsampling:0.5"
camera = false
[[detectors]]
name = "spectrum"
[[detectors]]
name = "slow"
"""

#: Puts the slow test plug-ins in the registry (the generator in the parametric one's place:
#: same name, same records, same digest).
PATCH = """
from facebench.harness.contracts import registry
registry.BUILTINS["detector"] = (*registry.BUILTINS["detector"], "executor_plugins:SlowDetector")
registry.BUILTINS["generator"] = tuple("executor_plugins:SlowGenerator" if t.endswith(":ParametricGenerator") else t
                                       for t in registry.BUILTINS["generator"])
"""

#: A second driver, in a process of its own: runs the suite on the cluster at argv[1] into argv[2].
DRIVER = PATCH + """
import sys
from facebench.harness.data.suite import load_suite
from facebench.harness.run.executors import get_executor
from facebench.harness.run.runner import run_suite
run_suite(load_suite(sys.argv[3]), sys.argv[2], show_progress=False, executor=get_executor("ray", address=sys.argv[1]))
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A head node (no CPU for workers: the driver's) and two worker nodes of one CPU each."""
    if ray.is_initialized():
        ray.shutdown()
    logs = tmp_path_factory.mktemp("calls")
    patch = pytest.MonkeyPatch()
    # raylets start their workers with this environment: the test plug-ins and the calls log
    patch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])))
    patch.setenv("FACEBENCH_TEST_LOG_DIR", str(logs))
    exec(PATCH, {})  # noqa: S102 - the same patch as the second driver's
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "object_store_memory": 80 * 2**20})
    for _ in range(2):
        cluster.add_node(**NODE)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
    executor = get_executor("ray")
    yield cluster, executor, logs
    executor.close()
    ray.shutdown()
    cluster.shutdown()
    patch.undo()
    registry.BUILTINS.clear()
    registry.BUILTINS.update(BUILTINS)


BUILTINS = dict(registry.BUILTINS)


def _suite(folder: Path):
    path = folder / "suite.toml"
    path.write_text(SUITE)
    return load_suite(path)


@pytest.fixture(scope="module")
def local_run(cluster, tmp_path_factory):
    root = tmp_path_factory.mktemp("local")
    os.environ.pop("FACEBENCH_TEST_LOG_DIR")  # the driver's own calls are not logged
    try:
        return run_suite(_suite(root), root / "results", show_progress=False, executor=LocalExecutor())
    finally:
        os.environ["FACEBENCH_TEST_LOG_DIR"] = str(cluster[2])


def _calls(logs: Path) -> list[tuple[str, str, str, float]]:
    """(event, batch, node, time) per line of the calls log."""
    return [(event, batch, node, float(when)) for event, batch, node, _, when in _lines(logs)]


def _lines(logs: Path) -> list[list[str]]:
    path = logs / "calls.log"
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def kill_mid_batch(cluster: Cluster, logs: Path, prefix: str, running: threading.Thread) -> tuple[str, str] | None:
    """Once a batch whose name starts with ``prefix`` has just started on a worker node (it pauses
    0.3 s or more inside; 0.1 s are left for the kill), kill that node as a machine dies: its
    worker process and its raylet at once (a worker outlives its raylet by a second otherwise).
    Then add a fresh node in its place (Ray starts nodes from the main thread only: the run goes
    on in ``running``). Returns (batch, node id)."""
    deadline = time.monotonic() + 120
    while running.is_alive() and time.monotonic() < deadline:
        lines = _lines(logs)
        ended = {(batch, node) for event, batch, node, _, _ in lines if event == "end"}
        workers = {node.node_id: node for node in cluster.worker_nodes}
        for event, batch, node, pid, when in lines:
            if (event == "start" and batch.startswith(prefix) and (batch, node) not in ended and node in workers
                    and time.time() - float(when) < 0.1):
                os.kill(int(pid), signal.SIGKILL)
                cluster.remove_node(workers[node], allow_graceful=False)
                cluster.add_node(**NODE)
                return batch, node
        time.sleep(0.02)
    return None


def _same_as_local(result, local_run) -> None:
    assert result.errors == []
    assert result.run["info"]["corpora"] == local_run.run["info"]["corpora"]
    (path,) = result.run["info"]["corpus_paths"].values()
    corpus = Corpus.open(path)
    assert len(corpus.ids) == len(set(corpus.ids)) == 32  # 16 seeds: a real and a fake each
    assert verify(path).ok  # no missing, corrupt or extra files
    scores, local = _scores(result), _scores(local_run)
    assert [r[:3] for r in scores] == [r[:3] for r in local]  # every image scored once per task
    assert np.allclose([r[3] for r in scores], [r[3] for r in local])
    assert _metrics(result) == _metrics(local_run)


def _scores(result) -> list[tuple]:
    rows = pq.read_table(result.run_dir / "scores.parquet").to_pylist()
    return sorted((r["detector"], r["perturbation"], r["id"], r["score"]) for r in rows)


def _metrics(result) -> list[dict]:
    """The metric rows, sorted, floats rounded to 9 places and NaN as "nan" (NaN != NaN)."""
    def plain(value):
        if isinstance(value, float):
            return "nan" if value != value else round(value, 9)
        return value

    rows = [{k: plain(v) for k, v in row.items()} for row in result.metrics]
    return sorted(rows, key=lambda row: sorted((k, str(v)) for k, v in row.items()))


def _run_killing(cluster, executor, logs, tmp_path, prefix):
    (logs / "calls.log").unlink(missing_ok=True)
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = run_suite(_suite(tmp_path), tmp_path / "results", show_progress=False, executor=executor)
        except BaseException as exc:  # noqa: BLE001 - raised again below
            outcome["error"] = exc

    running = threading.Thread(target=run, daemon=True)
    running.start()
    killed = kill_mid_batch(cluster, logs, prefix, running)
    running.join(timeout=240)
    assert not running.is_alive(), "the run did not finish within 4 minutes of the kill"
    if "error" in outcome:
        raise outcome["error"]
    result = outcome["result"]
    assert killed, f"no {prefix!r} batch was seen running on a worker node"
    batch, node = killed
    calls = _calls(logs)
    started = [n for event, b, n, _ in calls if event == "start" and b == batch]
    assert len(started) >= 2 and started[0] == node, f"the killed batch was not run again: {killed} {calls}"
    assert any(event == "end" and b == batch and n != node for event, b, n, _ in calls)
    return result, calls


def test_a_node_killed_mid_generation_loses_and_duplicates_nothing(cluster, local_run, tmp_path):
    cluster_, executor, logs = cluster
    result, calls = _run_killing(cluster_, executor, logs, tmp_path, "g")
    _same_as_local(result, local_run)
    ended = {b for event, b, _, _ in calls if event == "end" and b.startswith("g")}
    assert ended == {f"g{seed}" for seed in range(0, 16, 2)}  # every batch of seeds made


def test_a_node_killed_mid_scoring_loses_and_duplicates_nothing(cluster, local_run, tmp_path):
    cluster_, executor, logs = cluster
    result, _ = _run_killing(cluster_, executor, logs, tmp_path, "s")
    _same_as_local(result, local_run)


def test_a_driver_killed_mid_run_resumes_from_the_task_cache(cluster, local_run, tmp_path):
    cluster_, executor, logs = cluster
    _suite(tmp_path)
    suite_path = tmp_path / "suite.toml"
    results = tmp_path / "results"
    # this process's pool holds a worker on each node's one CPU (earlier tests grew it): free them
    # for the second driver's workers, or they wait for a CPU and nothing is cached before the deadline
    executor.close()
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, cluster_.address, str(results), str(suite_path)],
                              env={**os.environ, "PYTHONPATH": os.environ["PYTHONPATH"]},
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 150
    while not list((results / "tasks").glob("*.json")) and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert driver.poll() is None, f"the driver ended before any task was cached: {driver.stderr.read().decode()[-2000:]}"
    assert time.monotonic() < deadline, "the second driver cached no task within 150 s"
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    cached = len(list((results / "tasks").glob("*.json")))
    assert cached >= 1
    # killed in the middle: the run was never recorded (its tasks may all be cached by then)
    store = results / "facebench.sqlite"
    assert not store.exists() or not Store(store).runs()
    result = run_suite(load_suite(suite_path), results, show_progress=False, executor=executor)
    assert result.run["info"]["cached_tasks"] >= cached
    _same_as_local(result, local_run)
