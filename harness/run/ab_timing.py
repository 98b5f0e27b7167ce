"""Two builds of a suite's detectors timed side by side, call by call (``facebench speed-ab``).

Two stored runs made minutes apart on a shared machine can differ by more than a real slowdown:
the machine's speed swings, and so does the state a process leaves behind (its allocator, caches).
Here both builds run at once, each in a worker process started by its own interpreter
(:mod:`.speed_worker`), and this process asks them for one timed ``score`` call in turn: in even
rounds the baseline first, in odd rounds the current build first. Neighbouring calls see the same
machine, so each round's ratio (current images/s over baseline images/s) cancels the drift that
separates two runs; :mod:`facebench.harness.report.speed_ab` judges the median ratio.

Both builds fit and time their own detector on the same corpus (built or reused here, in the
results folder's cache) and the same split, on the suite's ``[throughput]`` settings.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Sequence

from rich.progress import Progress

from ..contracts.errors import FacebenchError
from ..data.suite import Suite
from .corpora import build_corpus
from .progress import advance, track
from .speed_worker import PROTOCOL

#: The worker module each build's interpreter runs.
WORKER_MODULE = "facebench.harness.run.speed_worker"
#: The names of the two sides, in the order of even rounds.
SIDES = ("baseline", "current")


class WorkerError(FacebenchError):
    """A build's worker failed to start, answered an error, or died: the message says which and why."""


def worker_command(python: str) -> list[str]:
    """The command that starts a worker with interpreter ``python``."""
    return [python, "-m", WORKER_MODULE]


class WorkerProcess:
    """One build's worker: a child process answering JSON requests line by line.

    Its stderr goes to a temporary file whose last lines explain a failure."""

    def __init__(self, side: str, command: Sequence[str], env: dict[str, str] | None = None,
                 cwd: str | Path | None = None):
        self.side = side
        self.command = list(command)
        #: The worker module's file, as the worker reported it (None from a worker that did not).
        self.module: str | None = None
        self.log: IO[bytes] = tempfile.TemporaryFile()
        try:
            self.process = subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                            stderr=self.log, env=env, cwd=cwd, text=True, bufsize=1)
        except OSError as exc:
            self.log.close()
            raise WorkerError(f"the {side} build's worker did not start ({' '.join(self.command)}): {exc}") from None

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send one request; its answer, or WorkerError naming the side and the worker's last words."""
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            self.process.stdin.write(json.dumps({"op": op, **fields}) + "\n")
            self.process.stdin.flush()
            line = self.process.stdout.readline()
        except (BrokenPipeError, OSError):
            line = ""
        if not line:
            self.process.wait()
            raise WorkerError(f"the {self.side} build's worker ({' '.join(self.command)}) exited with code "
                              f"{self.process.returncode} during {op!r}: {self.last_words()}")
        try:
            answer = json.loads(line)
        except json.JSONDecodeError:
            raise WorkerError(f"the {self.side} build's worker answered {line.strip()[:200]!r}, not JSON") from None
        if "error" in answer:
            raise WorkerError(f"the {self.side} build failed to {op}: {answer['error']}")
        return answer

    def last_words(self) -> str:
        """The last non-empty line the worker wrote on stderr."""
        self.log.seek(0)
        lines = [line.strip() for line in self.log.read().decode(errors="replace").splitlines() if line.strip()]
        return lines[-1] if lines else "(it wrote nothing on stderr)"

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                assert self.process.stdin is not None
                self.process.stdin.write(json.dumps({"op": "quit"}) + "\n")
                self.process.stdin.close()
                self.process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
        self.log.close()


@dataclass
class ABRow:
    """One throughput row timed in both builds: every round's images/s of each side, the session
    that timed it, and what each side reported when it loaded the row (device, batch_size, images)."""

    name: str
    baseline: list[float] = field(default_factory=list)
    current: list[float] = field(default_factory=list)
    baseline_lane: dict[str, Any] = field(default_factory=dict)
    current_lane: dict[str, Any] = field(default_factory=dict)
    #: Which session (pair of worker processes) timed each round.
    sessions: list[int] = field(default_factory=list)

    @property
    def ratios(self) -> list[float]:
        """Round by round, the current build's images/s over the baseline's."""
        return [c / b for b, c in zip(self.baseline, self.current) if b > 0]

    def seconds(self, side: str) -> float:
        """Seconds timed on ``side`` so far."""
        lane = self.baseline_lane if side == "baseline" else self.current_lane
        rates = self.baseline if side == "baseline" else self.current
        return sum(lane["batch_size"] / rate for rate in rates if rate > 0)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratios": self.ratios}


def suite_lanes(suite: Suite, results_dir: Path, progress: Progress | None = None) -> list[dict[str, Any]]:
    """One lane per (detector, corpus) of ``suite``: the detector fitted and timed on that corpus
    (built or reused under ``results_dir/corpora``), as :mod:`.speed_worker`'s "load" takes it."""
    lanes = []
    for spec in suite.generators:
        corpus, _ = build_corpus(spec, results_dir / "corpora", progress)
        for detector in suite.detectors:
            lanes.append({
                "name": f"{detector.label} @ {spec.label}", "label": spec.label,
                "detector": {"name": detector.name, "label": detector.label, "params": detector.params,
                             "batch_size": detector.batch_size},
                "corpus": str(corpus.root.resolve()), "split": asdict(suite.split),
                "warmup": suite.throughput.warmup,
            })
    return lanes


#: Set in every worker unless the user set them: OpenMP's idle threads sleep, so one build's
#: threads do not spin on the cores while the other build's call is timed; and glibc's malloc
#: keeps large arrays on its heap and its freed memory (fixed thresholds instead of ones that move
#: with a process's history), so two workers do not end in different allocator states. Without
#: them, two workers of one interpreter timed srm at 0.68 of each other on 256 px images, one of
#: them page-faulting on every call. Higher than the timing phase's thresholds (.allocator): here
#: both builds get the same setting, and the gate's figures were taken with these.
WORKER_DEFAULTS = {"OMP_WAIT_POLICY": "PASSIVE", "MALLOC_MMAP_THRESHOLD_": str(2**30),
                   "MALLOC_TRIM_THRESHOLD_": str(2**31)}


def worker_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A worker's environment: this process's, :data:`WORKER_DEFAULTS` where not set already,
    then ``extra``."""
    defaults = {key: value for key, value in WORKER_DEFAULTS.items() if key not in os.environ}
    return {**os.environ, **defaults, **(extra or {})}


def start_worker(side: str, command: Sequence[str], env: dict[str, str] | None = None) -> WorkerProcess:
    """A started worker (environment: :func:`worker_environment` plus ``env``) that speaks this
    build's protocol (else WorkerError, naming both)."""
    worker = WorkerProcess(side, command, worker_environment(env))
    try:
        try:
            hello = worker.request("hello")
        except WorkerError as exc:
            raise WorkerError(f"{exc} (does that interpreter hold a facebench with {WORKER_MODULE}?)") from None
        if hello.get("protocol") != PROTOCOL:
            raise WorkerError(f"the {side} build (facebench {hello.get('facebench')}) speaks speed-worker protocol "
                              f"{hello.get('protocol')}, this build {PROTOCOL}; time two builds of one protocol")
        worker.module = hello.get("module")
    except BaseException:
        worker.close()
        raise
    return worker


def time_ab(lanes: Sequence[dict[str, Any]], commands: dict[str, Sequence[str]], rounds: int = 15,
            min_seconds: float = 2.0, max_rounds: int = 200, envs: dict[str, dict[str, str]] | None = None,
            progress: Progress | None = None, sessions: int = 3, warmup_calls: int = 2) -> list[ABRow]:
    """Time ``lanes`` in the baseline and the current build (``commands``: the command starting
    each side's worker, keyed by :data:`SIDES`), alternating which goes first round by round.

    The rounds are shared among ``sessions`` pairs of fresh workers, one pair after the other:
    a process's own state (where its arrays landed in memory, its pages) can make it a few per
    cent faster or slower than an identical process for its whole life, and only other processes
    average that out. In each session, each lane first gets ``warmup_calls`` untimed calls per
    side, alternating, then its share of the rounds. Every lane gets at least ``rounds`` rounds,
    more while either side has timed less than ``min_seconds`` of it (at most ``max_rounds``).
    Raises WorkerError when a worker fails."""
    if rounds < 1 or sessions < 1 or warmup_calls < 0:
        raise ValueError(f"need rounds >= 1, sessions >= 1 and warmup_calls >= 0; got {rounds}, {sessions}, "
                         f"{warmup_calls}")
    missing = [side for side in SIDES if side not in commands]
    if missing:
        raise ValueError(f"time_ab needs a command for each side; missing: {', '.join(missing)}")
    envs = envs or {}
    sessions = min(sessions, rounds)  # a session without a round of its own would only cost a fit
    rows = [ABRow(lane["name"]) for lane in lanes]
    tasks = [track(progress, f"time {row.name}: both builds, call by call", rounds) for row in rows]
    for session in range(sessions):
        share = (session + 1) / sessions  # of the rounds and seconds each lane has by the session's end
        workers: dict[str, WorkerProcess] = {}
        try:
            for side in SIDES:
                workers[side] = start_worker(side, commands[side], envs.get(side))
            task = track(progress, f"fit both builds (session {session + 1} of {sessions})", 2)
            for side, worker in workers.items():
                loaded = worker.request("load", lanes=list(lanes))["lanes"]
                for row, lane in zip(rows, loaded):
                    check_same_lane(row, side, {**lane, "module": worker.module} if worker.module else lane)
                advance(progress, task)
            for index, row in enumerate(rows):
                for call in range(warmup_calls):
                    for side in turn_order(call):
                        workers[side].request("call", lane=index)
                goal, least = math.ceil(rounds * share), min_seconds * share
                cap = math.ceil(max_rounds * share)
                while len(row.sessions) < goal or (len(row.sessions) < cap and
                                                   min(row.seconds(side) for side in SIDES) < least):
                    for side in turn_order(len(row.sessions)):
                        seconds = workers[side].request("call", lane=index)["seconds"]
                        lane = row.baseline_lane if side == "baseline" else row.current_lane
                        getattr(row, side).append(lane["batch_size"] / seconds if seconds > 0 else float("nan"))
                    row.sessions.append(session)
                    if len(row.sessions) <= rounds:
                        advance(progress, tasks[index])
        finally:
            for worker in workers.values():
                worker.close()
    return rows


def turn_order(call: int) -> tuple[str, ...]:
    """The sides in the order of paired call ``call``: the baseline first in even ones."""
    return SIDES if call % 2 == 0 else SIDES[::-1]


def check_same_lane(row: ABRow, side: str, lane: dict[str, Any]) -> None:
    """Keep what ``side``'s worker reported for ``row``'s lane; a later session must report the same."""
    attribute = f"{side}_lane"
    if not getattr(row, attribute):
        setattr(row, attribute, lane)
    elif getattr(row, attribute) != lane:
        raise WorkerError(f"the {side} build loaded {row.name} as {lane} in one session and as "
                          f"{getattr(row, attribute)} in an earlier one")


def this_python() -> str:
    """This build's interpreter."""
    return sys.executable or "python"

