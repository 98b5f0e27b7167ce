"""The process that times one build's detectors for ``facebench speed-ab`` (:mod:`.ab_timing`).

The interpreter of the build to time runs it: ``python -m facebench.harness.run.speed_worker``. It
reads one JSON request per line on stdin and answers each with one JSON line on stdout:

- ``{"op": "hello"}``: ``{"protocol": PROTOCOL, "facebench": version, "python": version, "module": this
  file's path}`` (the parent notes two workers that run one file: a build timed against itself);
- ``{"op": "load", "lanes": [lane, ...]}``, each lane ``{"name", "label", "detector": {"name",
  "label", "params", "batch_size"}, "corpus": path, "split": {...}, "warmup": n}``: this build's
  detector fitted on the corpus's fit split, its test images in memory in batches, ``warmup``
  untimed calls; answers ``{"lanes": [{"name", "device", "batch_size", "images"}]}``;
- ``{"op": "call", "lane": i}``: one ``score`` call on the lane's next batch, timed alone
  (:class:`~facebench.harness.run.timing.CallClock`); answers ``{"seconds": s}``;
- ``{"op": "quit"}``: ends the process.

Anything that fails answers ``{"error": "one line"}``, and the worker waits for the next request.
What the detectors print goes to stderr, so stdout carries the answers only.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

from ..contracts.errors import one_line
from ..data.corpus import Corpus
from ..data.suite import DetectorSpec, SplitSpec
from .fitting import fitted_detector, three_way_split
from .scoring import batch_size_for
from .throughput import Lane, TimingJob, detector_lane, uncached, warm_up
from .timing import CallClock, inference_mode

#: Bumped whenever a request or an answer changes; the parent refuses a worker of another protocol.
PROTOCOL = 1


class Worker:
    """The lanes one worker holds, and the answers to requests."""

    def __init__(self) -> None:
        self.lanes: list[Lane] = []
        self.clocks: list[CallClock] = []
        self.calls: list[int] = []
        self.stack = ExitStack()

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "hello":
            from ..contracts.version import __version__

            return {"protocol": PROTOCOL, "facebench": __version__, "python": platform.python_version(),
                    "module": str(Path(__file__).resolve())}
        if op == "load":
            return self.load(request["lanes"])
        if op == "call":
            return self.call(int(request["lane"]))
        raise ValueError(f"unknown request {op!r}")

    def load(self, lanes: list[dict[str, Any]]) -> dict[str, Any]:
        self.stack.close()
        self.lanes, self.clocks, self.calls, self.stack = [], [], [], ExitStack()
        loaded = []
        for item in lanes:
            spec = DetectorSpec(**item["detector"])
            corpus = Corpus.open(Path(item["corpus"]))
            split = SplitSpec(**item["split"])
            detector = fitted_detector(spec, item["label"], corpus, split)
            test = three_way_split(corpus, split)[2]
            lane, images = detector_lane(TimingJob(item["name"], item["name"], detector, test,
                                                   batch_size_for(spec, detector)))
            self.stack.enter_context(uncached(detector))  # time real work, not the detector's own caches
            warm_up([lane], int(item.get("warmup", 1)))
            if lane.error is not None:
                raise lane.error
            self.lanes.append(lane)
            self.clocks.append(CallClock(lane.device))
            self.calls.append(0)
            loaded.append({"name": lane.name, "device": lane.device, "batch_size": lane.size, "images": images})
        return {"lanes": loaded}

    def call(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self.lanes):
            raise ValueError(f"no lane {index}: {len(self.lanes)} loaded")
        lane = self.lanes[index]
        with inference_mode():
            seconds = self.clocks[index].time(lane.fn, lane.batch(self.calls[index]))
        self.calls[index] += 1
        return {"seconds": seconds}


def serve(requests: IO[str], answers: IO[str]) -> None:
    """Answer ``requests`` (JSON lines) on ``answers`` until "quit" or the end of input."""
    worker = Worker()
    try:
        for line in requests:
            if not line.strip():
                continue
            try:
                request = json.loads(line)
                if request.get("op") == "quit":
                    break
                reply = worker.answer(request)
            except Exception as exc:  # noqa: BLE001 - the parent reports it; the worker stays up
                reply = {"error": one_line(exc)}
            answers.write(json.dumps(reply) + "\n")
            answers.flush()
    finally:
        worker.stack.close()


def main() -> None:
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # detectors' prints must not mix with the answers
    sys.stdout = sys.stderr
    serve(sys.stdin, answers)


if __name__ == "__main__":
    main()
