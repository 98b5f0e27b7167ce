"""Plug-ins that pause before each batch, so a test can kill a run at a known stage.

``python tests/faults/slow_plugins.py ARGS...`` is ``facebench ARGS...`` with two more
plug-ins registered: ``slow_parametric`` (the parametric generator) and ``slow_spectrum``
(the spectrum detector). Both make exactly the pixels and scores of the originals; each
batch first sleeps ``FACEBENCH_FAULTS_PAUSE_GENERATE`` or ``FACEBENCH_FAULTS_PAUSE_SCORE``
seconds (default 0).
"""

from __future__ import annotations

import os
import sys
import time

from facebench.detectors.spectrum import SpectrumDetector
from facebench.generators.parametric import ParametricGenerator


def pause(stage: str) -> None:
    time.sleep(float(os.environ.get(f"FACEBENCH_FAULTS_PAUSE_{stage}", "0")))


class SlowParametric(ParametricGenerator):
    name = "slow_parametric"

    def generate(self, seeds):
        pause("GENERATE")
        return super().generate(seeds)


class SlowSpectrum(SpectrumDetector):
    name = "slow_spectrum"

    def score(self, images):
        pause("SCORE")
        return super().score(images)


def register(module: str = __name__) -> None:
    from facebench.harness.contracts import registry

    registry.register("generator", f"{module}:SlowParametric")
    registry.register("detector", f"{module}:SlowSpectrum")


if __name__ == "__main__":
    register("__main__")
    from facebench.harness.cli import main

    sys.argv = ["facebench", *sys.argv[1:]]
    sys.exit(main())
