"""Throughput measured the same way for generators and detectors."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


def synchronize(device: str) -> None:
    """Wait for queued GPU work so the clock reads finished work only."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)


@dataclass
class ThroughputMeter:
    """Accumulates (items, seconds) per batch; use :meth:`batch` around each batch's work."""

    device: str = "cpu"
    batch_seconds: list[float] = field(default_factory=list)
    batch_items: list[int] = field(default_factory=list)

    def batch(self, n_items: int = 0) -> "_BatchTimer":
        """Time one batch; set ``timer.items`` inside the block when the count is known only then."""
        return _BatchTimer(self, n_items)

    @property
    def items(self) -> int:
        return int(sum(self.batch_items))

    @property
    def seconds(self) -> float:
        return float(sum(self.batch_seconds))

    def summary(self) -> dict[str, Any]:
        """images, seconds, images_per_s, and per-image latency percentiles in ms."""
        per_image_ms = [1000 * s / n for s, n in zip(self.batch_seconds, self.batch_items) if n]
        return asdict(
            Throughput(
                device=self.device,
                images=self.items,
                seconds=self.seconds,
                images_per_s=self.items / self.seconds if self.seconds > 0 else float("nan"),
                latency_p50_ms=float(np.percentile(per_image_ms, 50)) if per_image_ms else float("nan"),
                latency_p95_ms=float(np.percentile(per_image_ms, 95)) if per_image_ms else float("nan"),
            )
        )


@dataclass(frozen=True)
class Throughput:
    device: str
    images: int
    seconds: float
    images_per_s: float
    latency_p50_ms: float
    latency_p95_ms: float


class _BatchTimer:
    def __init__(self, meter: ThroughputMeter, n_items: int):
        self.meter = meter
        self.items = n_items

    def __enter__(self) -> "_BatchTimer":
        synchronize(self.meter.device)
        self.start = time.perf_counter()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            synchronize(self.meter.device)
            self.meter.batch_seconds.append(time.perf_counter() - self.start)
            self.meter.batch_items.append(self.items)
