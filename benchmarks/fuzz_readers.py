"""Fuzz facebench's file readers with randomly damaged copies of valid files.

Each example takes a small valid file, damages it at random (flipped bytes, truncation, a
run of bytes overwritten or inserted, a hostile pickle spliced in, a Parquet column retyped)
and reads it. A reader may accept the file or refuse it with its own one-line error; any
other exception, or a marker file appearing (code from the file ran), is a finding. Targets:

- ``corpus``: ``Corpus.open`` and everything a run reads (records, split, images, masks,
  verify) on a corpus whose manifest.parquet, corpus.json or image files are damaged;
  only ``CorpusError`` may escape.
- ``checkpoint``: the checkpoint detector's weights reader (``read_state_dict``) on damaged
  ``torch.save`` files (zip and legacy) and pickles; only ``CheckpointError``.
- ``pickle``: the StyleGAN2 network pickle reader (``read_network_pickle``) on damaged
  pickles of tensors, arrays and containers (protocols 2-5); only ``NetworkPickleError``.
- ``images``: the folder generator's decoder on damaged PNG, JPEG, BMP and WebP files; only
  ``FolderError``.

Usage::

    python benchmarks/fuzz_readers.py                        # 200 examples per target
    python benchmarks/fuzz_readers.py --examples 20000 --seed 7 --target corpus
    python benchmarks/fuzz_readers.py --out fuzz-findings    # keep the files that broke a reader

``--examples N`` runs longer; ``--seed`` makes a run repeatable (example i of a seed is
always the same file). Memory is capped (``--memory-gb``, default 4) so a file that claims a
huge allocation fails with MemoryError instead of swapping the machine. Exit status: 0 when
every reader behaved, 1 otherwise (each finding is printed with its target, seed and example
number). ``tests/faults/test_fuzz_script.py`` runs a few examples of each target.
"""

from __future__ import annotations

import argparse
import io
import os
import pickle
import random
import resource
import shutil
import sys
import tempfile
import traceback
from collections import Counter, OrderedDict
from pathlib import Path

import numpy as np

TARGETS = ("corpus", "checkpoint", "pickle", "images")


# -- damage -------------------------------------------------------------------------------------


class _Run:
    """Pickles as a call of os.system: spliced into files to see that no reader runs it."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def damage(data: bytes, rng: random.Random, payload: bytes = b"") -> bytes:
    """``data`` damaged 1-3 times at random; ``payload`` (a hostile pickle) may be spliced in."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(["flip", "truncate", "overwrite", "insert", "zero", "payload" if payload else "flip"])
        at = rng.randrange(len(out) + 1) if out else 0
        if kind == "flip" and out:
            for _ in range(rng.randint(1, 8)):
                out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
        elif kind == "truncate":
            del out[at:]
        elif kind == "overwrite":
            out[at : at + rng.randint(1, 16)] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif kind == "insert":
            out[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif kind == "zero":
            out[at : at + rng.randint(1, 64)] = bytes(min(64, len(out) - at))
        elif kind == "payload":
            out[at:at] = payload[2:-1] if rng.random() < 0.5 else payload  # with or without PROTO/STOP
    return bytes(out)


# -- targets ------------------------------------------------------------------------------------


class Target:
    name = ""
    allowed: tuple[type[BaseException], ...] = ()

    def __init__(self, work: Path):
        self.work = work
        self.marker = work / "RAN"
        self.payload = pickle.dumps(_Run(f"touch '{self.marker}'"), protocol=2)

    def example(self, rng: random.Random) -> tuple[Path, callable]:
        """A damaged file (or folder) and the call that reads it."""
        raise NotImplementedError


class CorpusTarget(Target):
    name = "corpus"

    def __init__(self, work: Path):
        super().__init__(work)
        from facebench.harness.data.corpus import CorpusError, write_corpus
        from facebench.harness.contracts.types import Batch, Record

        self.allowed = (CorpusError,)
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, size=(4, 16, 16, 3), dtype=np.uint8)
        mask = np.zeros((16, 16), bool)
        mask[:4] = True
        records = [Record(id=f"r{i}", label=i % 2, source="fuzz", source_version="1", seed=i // 2, pair=f"p{i // 2}",
                          artifacts={"a": {"strength": 0.5}} if i % 2 else {}, masks={"a": mask} if i % 2 else {},
                          landmarks={"eye_left": (3.0, 4.0)}, format="png" if i < 3 else "jpg") for i in range(4)]
        self.valid = work / "valid-corpus"
        write_corpus(self.valid, [Batch(images, records)], [{"name": "fuzz"}])
        self.files = sorted(p.relative_to(self.valid) for p in self.valid.rglob("*") if p.is_file())

    def example(self, rng):
        root = self.work / "corpus"
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(self.valid, root)
        if rng.random() < 0.3:
            self._retype_a_column(root, rng)
        else:
            for name in rng.sample(self.files, rng.randint(1, 2)):
                path = root / name
                path.write_bytes(damage(path.read_bytes(), rng))
        return root, lambda: self.read(root)

    @staticmethod
    def _retype_a_column(root: Path, rng: random.Random) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pq.read_table(root / "manifest.parquet")
        index = rng.randrange(table.num_columns)
        values = table.column(index).to_pylist()
        choice = rng.choice(["text", "null", "shuffle", "number", "drop"])
        if choice == "drop":
            table = table.remove_column(index)
        else:
            if choice == "text":
                values = [rng.choice(["", "..", "/abs", "x", "{", "[]", "\x00"]) for _ in values]
            elif choice == "null":
                values = [None if rng.random() < 0.5 else v for v in values]
            elif choice == "shuffle":
                rng.shuffle(values)
            else:
                values = [rng.choice([-1, 0, 1, 2, 2**40]) for _ in values]
            try:
                array = pa.array(values)
            except (pa.ArrowException, TypeError, ValueError):
                array = pa.array([str(v) for v in values])
            table = table.set_column(index, table.column_names[index], array)
        pq.write_table(table, root / "manifest.parquet")

    @staticmethod
    def read(root: Path):
        from facebench.harness.data.corpus import Corpus, verify

        corpus = Corpus.open(root)
        corpus.records(), corpus.labels, corpus.split(0.5), corpus.select(artifact="a")
        for rows, _ in corpus.iter_batches(3):
            for row in rows:
                for artifact in row["artifact_names"]:
                    corpus.load_mask(row, artifact)
        return verify(root)


class CheckpointTarget(Target):
    name = "checkpoint"

    def __init__(self, work: Path):
        super().__init__(work)
        import torch

        from facebench.detectors.checkpoint import CheckpointError

        self.allowed = (CheckpointError,)
        state = {"model": OrderedDict(conv=torch.randn(2, 3), bias=torch.zeros(3), steps=torch.tensor(7))}
        valid = []
        for zipped in (True, False):
            buffer = io.BytesIO()
            torch.save(state, buffer, _use_new_zipfile_serialization=zipped)
            valid.append(buffer.getvalue())
        self.valid = valid

    def example(self, rng):
        from facebench.detectors.checkpoint import read_state_dict

        path = self.work / rng.choice(["weights.pth", "weights.pt", "weights.bin"])
        path.write_bytes(damage(rng.choice(self.valid), rng, self.payload))
        return path, lambda: read_state_dict(path)


class PickleTarget(Target):
    name = "pickle"

    def __init__(self, work: Path):
        super().__init__(work)
        import torch

        from facebench.generators.stylegan2.pickles import NetworkPickleError

        self.allowed = (NetworkPickleError,)
        value = {"G_ema": {"w": torch.randn(2, 2), "b": torch.arange(3), "half": torch.ones(2, dtype=torch.float16)},
                 "arrays": [np.arange(4, dtype=np.float32), np.float64(1.5)], "meta": OrderedDict(a=(1, "x", None))}
        self.valid = [pickle.dumps(value, protocol=protocol) for protocol in (2, 3, 4, 5)]

    def example(self, rng):
        from facebench.generators.stylegan2.pickles import read_network_pickle

        path = self.work / "network.pkl"
        path.write_bytes(damage(rng.choice(self.valid), rng, self.payload))
        return path, lambda: read_network_pickle(path, key=None)


class ImagesTarget(Target):
    name = "images"

    def __init__(self, work: Path):
        super().__init__(work)
        from PIL import Image

        from facebench.generators.folder import FolderError

        self.allowed = (FolderError,)
        rgb = Image.fromarray(np.random.default_rng(0).integers(0, 256, (24, 24, 3), dtype=np.uint8))
        self.valid = []
        for image, fmt, suffix in ((rgb, "PNG", ".png"), (rgb, "JPEG", ".jpg"), (rgb.convert("P"), "PNG", ".png"),
                                   (rgb.convert("RGBA"), "PNG", ".png"), (rgb, "BMP", ".bmp"), (rgb.convert("L"), "JPEG", ".jpg"),
                                   (rgb.convert("CMYK"), "JPEG", ".jpg"), (rgb, "WEBP", ".webp")):
            buffer = io.BytesIO()
            try:
                image.save(buffer, format=fmt)
            except (OSError, KeyError):  # a Pillow built without this codec
                continue
            self.valid.append((buffer.getvalue(), suffix))

    def example(self, rng):
        from facebench.generators.folder import FolderGenerator

        folder = self.work / "photos"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        data, suffix = rng.choice(self.valid)
        path = folder / f"image{suffix}"
        path.write_bytes(damage(data, rng))
        return path, lambda: FolderGenerator(str(folder), resolution=16).generate([0])


CLASSES = {cls.name: cls for cls in (CorpusTarget, CheckpointTarget, PickleTarget, ImagesTarget)}


# -- driver -------------------------------------------------------------------------------------


def fuzz(target: str, examples: int, seed: int, out: Path | None = None, quiet: bool = False) -> list[str]:
    """Run ``examples`` examples of ``target``; returns the findings (empty: every read behaved)."""
    import warnings

    findings: list[str] = []
    outcomes: Counter[str] = Counter()
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{target}-") as folder:
        subject = CLASSES[target](Path(folder))
        for index in range(examples):
            rng = random.Random(f"{seed}:{target}:{index}")
            path, read = subject.example(rng)
            problem = None
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    read()
                outcomes["accepted"] += 1
            except subject.allowed as exc:
                outcomes["refused"] += 1
                if "\n" in str(exc):
                    problem = f"the error is not one line: {str(exc)!r}"
            except Exception as exc:  # noqa: BLE001 - this is what the fuzzer looks for
                problem = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=-3)}"
            if subject.marker.exists():
                problem = (problem or "") + " CODE FROM THE FILE RAN (marker file created)"
                subject.marker.unlink()
            if problem:
                outcomes["findings"] += 1
                findings.append(f"{target} seed={seed} example={index}: {problem}")
                if out is not None:
                    keep = out / f"{target}-{seed}-{index}"
                    (shutil.copytree if path.is_dir() else shutil.copy2)(path, keep if path.is_dir() else keep.with_suffix(path.suffix))
                if not quiet:
                    print(findings[-1], file=sys.stderr)
    if not quiet:
        print(f"{target}: {examples} examples, " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    return findings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=200, help="examples per target (default 200)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the damage (default 0)")
    parser.add_argument("--target", choices=[*TARGETS, "all"], default="all")
    parser.add_argument("--out", type=Path, help="folder to copy the files that broke a reader into")
    parser.add_argument("--memory-gb", type=float, default=4.0, help="address-space cap in GiB (0: none)")
    args = parser.parse_args(argv)
    if args.memory_gb > 0 and hasattr(resource, "RLIMIT_AS"):
        import torch  # noqa: F401 - load the big libraries before the cap

        limit = int(args.memory_gb * 2**30)
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (min(limit, hard) if hard != resource.RLIM_INFINITY else limit, hard))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
    findings = []
    for target in TARGETS if args.target == "all" else (args.target,):
        findings += fuzz(target, args.examples, args.seed, args.out)
    print(f"{len(findings)} finding(s)")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
