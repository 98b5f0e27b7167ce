"""Null check of the format shortcut: the spectrum detector on identical pictures, reals JPEG and fakes PNG.

Writes the same N random pictures twice in a Synthbuster-style tree (``RAISE/`` as JPEG at
quality Q, ``gen/`` as PNG), imports it with the ``dataset`` source without harmonising and
with each ``harmonise`` quality, fits the spectrum detector on half the pictures and prints its
AUC on the other half. The pixels differ only by the reals' JPEG compression, so any AUC above
0.5 is a detector scoring on format. Also with a resize (native side > resolution).

    python benchmarks/shortcut_null.py [--n 200] [--side 96] [--quality 92]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter
from sklearn.metrics import roc_auc_score

HARMONISE = ("", "jpeg:95", "jpeg:90", "jpeg:85", "jpeg:80", "jpeg:78", "jpeg:75", "jpeg:50")


def build(root: Path, n: int, side: int, quality: int) -> None:
    rng = np.random.default_rng(0)
    for folder in ("RAISE", "gen"):
        (root / folder).mkdir(parents=True)
    for i in range(n):
        sigma = (rng.uniform(1, 4), rng.uniform(1, 4), 0)
        base = gaussian_filter(rng.normal(0, 1, (side, side, 3)), sigma=sigma)
        pixels = np.clip(128 + 60 * base / base.std() + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(root / "RAISE" / f"{i:04d}.jpg", quality=quality)
        Image.fromarray(pixels).save(root / "gen" / f"{i:04d}.png")


def auc(root: Path, resolution: int, harmonise: str) -> float:
    from facebench.detectors.spectrum import SpectrumDetector
    from facebench.generators.dataset import DatasetGenerator

    generator = DatasetGenerator(str(root), resolution=resolution, harmonise=harmonise)
    batch = generator.generate(range(generator.count()))
    labels = np.array([r.label for r in batch.records])
    train = np.arange(len(labels)) % 4 < 2  # seeds alternate real/fake: pictures 2k train, 2k+1 test
    detector = SpectrumDetector()
    detector.fit(batch.images[train], labels[train])
    return float(roc_auc_score(labels[~train], detector.score(batch.images[~train])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--side", type=int, default=96)
    parser.add_argument("--quality", type=int, default=92)
    args = parser.parse_args()
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "tree"
        build(root, args.n, args.side, args.quality)
        for resolution in (args.side, args.side // 2):
            for harmonise in HARMONISE:
                print(f"reals JPEG q{args.quality}, fakes PNG, {args.side} px -> {resolution} px, harmonise "
                      f"{harmonise or 'none'}: spectrum AUC {auc(root, resolution, harmonise):.3f}")


if __name__ == "__main__":
    main()
