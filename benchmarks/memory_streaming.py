"""Peak memory of scoring a corpus grows with batch size, not corpus size.

Builds (or reuses) two parametric corpora at 64 px, 2,000 and 20,000 images, fits the
spectrum detector once on the same 400-image subset, then in a fresh process per corpus
scores the whole corpus the way the runner does (``score_split``: batches read from disk)
and computes every metric with 1,000-resample bootstrap intervals. Prints the peak RSS of
each process and their ratio (target: at most 1.5).

    python benchmarks/memory_streaming.py [--out results/memory]

Fitting is not part of the figure: a detector's ``fit`` receives its fit split as one array.
"""

from __future__ import annotations

import argparse
import json
import pickle
import resource
import subprocess
import sys
from pathlib import Path

SIZES = (2_000, 20_000)


def build(out: Path) -> dict[int, Path]:
    from facebench.harness.run.corpora import build_corpus
    from facebench.harness.data.suite import GeneratorSpec

    corpora = {}
    for size in SIZES:
        spec = GeneratorSpec(name="parametric", label=f"stream{size}", count=size // 2, batch_size=200,
                             params={"resolution": 64, "artifacts": "upsampling"})
        corpus, _ = build_corpus(spec, out / "corpora")
        corpora[size] = corpus.root
    return corpora


def fit(out: Path, corpus_root: Path) -> Path:
    from facebench.detectors.spectrum import SpectrumDetector
    from facebench.harness.data.corpus import Corpus

    corpus = Corpus.open(corpus_root)
    subset = corpus.select(ids=corpus.ids[:400])
    detector = SpectrumDetector()
    detector.fit(subset.load_images(), subset.labels)
    path = out / "spectrum.pkl"
    path.write_bytes(pickle.dumps(detector))
    return path


def score(corpus_root: str, detector_path: str) -> None:
    """Child process: score every image and compute metrics with intervals; print the peak RSS."""
    import numpy as np

    from facebench.harness.data.corpus import Corpus
    from facebench.harness.run.metrics import metrics_with_ci
    from facebench.harness.run.scoring import score_split

    detector = pickle.loads(Path(detector_path).read_bytes())
    corpus = Corpus.open(corpus_root)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows, scores, throughput = score_split(detector, corpus, 64, "spectrum")
    after_scoring = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    labels = np.array([r["label"] for r in rows])
    pairs = np.array([r["pair"] for r in rows])
    metrics = metrics_with_ci(labels, scores, pairs, n_resamples=1000)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"images": len(rows), "peak_rss_mb": peak, "rss_before_scoring_mb": before, "peak_after_scores_mb": after_scoring,
                      "auc": metrics["auc"]["value"], "images_per_s": throughput["images_per_s"]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("results/memory"))
    args = parser.parse_args()
    corpora = build(args.out)
    detector = fit(args.out, corpora[SIZES[0]])
    figures = {}
    for size, root in corpora.items():
        done = subprocess.run([sys.executable, __file__, "--child", str(root), str(detector)],
                              check=True, capture_output=True, text=True)
        figures[size] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{size:>6} images: peak RSS {figures[size]['peak_rss_mb']:.0f} MB "
              f"(before scoring {figures[size]['rss_before_scoring_mb']:.0f} MB, "
              f"after scoring {figures[size]['peak_after_scores_mb']:.0f} MB), "
              f"AUC {figures[size]['auc']:.3f}, {figures[size]['images_per_s']:.0f} images/s")
    ratio = figures[SIZES[1]]["peak_rss_mb"] / figures[SIZES[0]]["peak_rss_mb"]
    print(f"peak RSS ratio {SIZES[1]} / {SIZES[0]} images: {ratio:.2f} (target <= 1.5)")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        score(sys.argv[2], sys.argv[3])
    else:
        main()
