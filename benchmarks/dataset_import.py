"""Import speed of the ``dataset`` source: images/s and peak RSS for 1,000 and 10,000 small images.

Builds a CNNDetection-style tree in a temporary folder (half real JPEG q90, half fake PNG, sizes
48..96 px), then, in a fresh process per size, imports one subset as a corpus the way
``facebench generate dataset`` does (decode, check, crop to 64 px, write PNG, hash) and prints
images/s and the process's peak RSS: memory must not grow with the number of images.
Also times sha256 over the original files, the cost of a corpus of references instead of copies.

    python benchmarks/dataset_import.py [--images 10000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SIDES = (48, 64, 80, 96)


def build_tree(root: Path, n: int) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for folder in ("bench/0_real", "bench/1_fake"):
        (root / folder).mkdir(parents=True)
    for i in range(n):
        side = SIDES[i % len(SIDES)]
        image = Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8))
        if i % 2:
            image.save(root / "bench" / "1_fake" / f"{i:06d}.png", compress_level=1)
        else:
            image.save(root / "bench" / "0_real" / f"{i:06d}.jpg", quality=90)


def import_once(root: str, out: str) -> None:
    """Child process: import the tree as a corpus; print images/s and peak RSS as JSON."""
    from facebench.harness.data.suite import GeneratorSpec
    from facebench.harness.run.corpora import generate_corpus

    start = time.perf_counter()
    from facebench.generators.dataset import DatasetGenerator

    generator = DatasetGenerator(root, resolution=64)
    scanned = time.perf_counter() - start
    spec = GeneratorSpec(name="dataset", label="bench", count=generator.count(), batch_size=64,
                         params={"path": root, "resolution": 64})
    corpus, throughput = generate_corpus(spec, Path(out), generator=generator)
    seconds = time.perf_counter() - start
    print(json.dumps({"images": len(corpus), "seconds": round(seconds, 2), "scan_seconds": round(scanned, 2),
                      "images_per_s": round(len(corpus) / seconds, 1),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))


def hash_originals(root: Path) -> float:
    """Files per second for sha256 over every original file (what references would record and verify)."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    start = time.perf_counter()
    for path in files:
        hashlib.sha256(path.read_bytes()).hexdigest()
    return len(files) / (time.perf_counter() - start)


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    args = parser.parse_args()
    for n in sorted({1_000, args.images}):
        with tempfile.TemporaryDirectory() as tmp:
            tree = Path(tmp) / "tree"
            build_tree(tree, n)
            print(f"load before: {uptime()}")
            child = subprocess.run([sys.executable, __file__, "--child", str(tree), str(Path(tmp) / "corpus")],
                                   capture_output=True, text=True, check=True, env={**os.environ})
            figures = json.loads(child.stdout.strip().splitlines()[-1])
            figures["sha256_files_per_s"] = round(hash_originals(tree), 1)
            print(f"{n} images: {json.dumps(figures)}")
            print(f"load after: {uptime()}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        import_once(sys.argv[2], sys.argv[3])
    else:
        main()
