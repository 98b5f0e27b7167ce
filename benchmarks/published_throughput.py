"""Images/s of the published detectors at their published sizes, 224 px, batch 1 and 16.

The networks get seeded random weights of the published shapes (NPR: ResNet-50 stem and stages
1-2; CNNDetection: ResNet-50; UnivFD: CLIP ViT-L/14 image encoder, 24 blocks of width 1024,
patch 14, 768-d projection; RINE: the same encoder and the 4class head; PatchCraft: its
32-wide network and fixed filter bank; Fusing: ResNet-50, attention layers), saved in the published file layouts and loaded through the
detectors, so the figure includes their preprocessing. Speed does not depend on weight values.

    .venv/bin/python benchmarks/published_throughput.py [--device cuda] [--precision float16] [--detectors npr,univfd]

Figures are only meaningful on a quiet machine: the script prints the 1-minute load average
beside them and refuses to time when it exceeds --max-load (default 1.5) unless --force.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from facebench.detectors.checkpoint import Bottleneck, ResNet
from facebench.detectors.clip_vision import ClipVision
from facebench.detectors.cnndetection import CNNDetectionDetector
from facebench.detectors.fusing import FusingDetector, FusingNet
from facebench.detectors.npr import NPRDetector, NPRNet
from facebench.detectors.patchcraft import PatchCraftDetector, PatchCraftNet
from facebench.detectors.published import seeded_weights
from facebench.detectors.rine import RINEDetector, RINEHead
from facebench.detectors.univfd import UnivFDDetector

SIDE = 224


def make_detector(name: str, folder: Path, device: str, batch_size: int, precision: str = "float32"):
    if name == "npr":
        path = folder / "NPR.pth"
        if not path.exists():
            torch.save(seeded_weights(NPRNet().state_dict(), 0), path)
        return NPRDetector(weights=str(path), device=device, batch_size=batch_size, precision=precision)
    if name == "cnndetection":
        path = folder / "blur_jpg_prob0.5.pth"
        if not path.exists():
            torch.save({"model": seeded_weights(ResNet(Bottleneck, (3, 4, 6, 3), 1).state_dict(), 0)}, path)
        return CNNDetectionDetector(weights=str(path), device=device, batch_size=batch_size, precision=precision)
    if name == "univfd":
        clip, fc = folder / "ViT-L-14.pth", folder / "fc_weights.pth"
        if not clip.exists():
            encoder = ClipVision(width=1024, layers=24, patch=14, grid=16, output_dim=768)
            state = seeded_weights({f"visual.{k}": v for k, v in encoder.state_dict().items()}, 0)
            torch.save({k: v.half() for k, v in state.items()}, clip)  # the release holds half precision
            torch.save(seeded_weights({"weight": torch.zeros(1, 768), "bias": torch.zeros(1)}, 0), fc)
        return UnivFDDetector(weights=str(fc), clip=str(clip), device=device, batch_size=batch_size, precision=precision)
    if name == "rine":
        clip, head = folder / "ViT-L-14.pth", folder / "model_4class_trainable.pth"
        if not clip.exists():
            make_detector("univfd", folder, device, batch_size)
        if not head.exists():  # the 4class layout: two projection layers of 1024 features
            torch.save(seeded_weights(RINEHead(24, 1024, 2, 1024).state_dict(), 0), head)
        return RINEDetector(weights=str(head), clip=str(clip), device=device, batch_size=batch_size, precision=precision)
    if name == "patchcraft":
        path = folder / "RPTC.pth"
        if not path.exists():
            template = PatchCraftNet().state_dict()
            state = seeded_weights({k: v for k, v in template.items() if k != "group1.hpf.weight"}, 0)
            torch.save({"netC": {**state, "group1.hpf.weight": template["group1.hpf.weight"]}}, path)
        return PatchCraftDetector(weights=str(path), device=device, batch_size=batch_size, precision=precision)
    if name == "fusing":
        path = folder / "PSM.pth"
        if not path.exists():
            torch.save({"model": seeded_weights(FusingNet().state_dict(), 0)}, path)
        return FusingDetector(weights=str(path), device=device, batch_size=batch_size, precision=precision)
    raise SystemExit(f"unknown detector {name!r}; choose from npr, cnndetection, univfd, rine, patchcraft, fusing")


def images_per_second(detector, batch: int, device: str, min_seconds: float) -> float:
    images = np.random.default_rng(0).integers(0, 256, (batch, SIDE, SIDE, 3), dtype=np.uint8)
    detector.score(images)  # warm-up
    calls, start = 0, time.perf_counter()
    while True:
        detector.score(images)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds and calls >= 3:
            return calls * batch / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--detectors", default="npr,cnndetection,univfd,rine,patchcraft,fusing")
    parser.add_argument("--batches", default="1,16")
    parser.add_argument("--precision", default="float32", help="float32, float16 or bfloat16")
    parser.add_argument("--min-seconds", type=float, default=3.0)
    parser.add_argument("--max-load", type=float, default=1.5)
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    if load > args.max_load and not args.force:
        sys.exit(f"load average {load:.2f} > {args.max_load}: the machine is busy, figures would not mean much (--force to time anyway)")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, {args.precision}, {SIDE} px")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.detectors.split(","):
            for batch in (int(b) for b in args.batches.split(",")):
                detector = make_detector(name, Path(tmp), args.device, batch, args.precision)
                rate = images_per_second(detector, batch, args.device, args.min_seconds)
                print(f"{name:13s} batch {batch:3d}: {rate:8.2f} images/s  (load {os.getloadavg()[0]:.2f})", flush=True)


if __name__ == "__main__":
    main()
