"""The format and size shortcut guard: do a corpus's reals and fakes differ in how their files were made?

A dataset whose reals are JPEG photos and whose fakes are PNG renders can be told apart by
compression alone; a detector that scores well on it may have learnt the format, not the
generator. The ``dataset`` source records each image's file facts in ``meta["file"]``
(``format``, ``quality`` and ``subsampling`` for JPEG, ``width``, ``height``, ``exif``) and
``meta["harmonised"]`` ("jpeg:Q") when it re-encoded every image the same way. This module
compares the two classes on those facts and says, in words, where they differ.
Corpora without file facts (generated ones) get no findings.

Harmonising hides a format difference only when it is coarser than the first compression: a
JPEG re-encoded at a quality near its own keeps that compression's traces. On a null tree
(200 identical pictures, reals JPEG q92, fakes PNG, 96 px, no resize) the spectrum detector's AUC
was 1.00 unharmonised, 0.99 after jpeg:95, 0.99 after 90, 1.00 after 85, 0.75 after 80, 0.66
after 78 and 0.51 after 75 (benchmarks/shortcut_null.py), hence :data:`HARMONISE_MARGIN`.
(Halving the size there hid the format by itself: AUC 0.55 before harmonising. The guard
cannot know how much resizing a detector's input gets, so it judges the files.)
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

#: Largest difference between the classes' shares of a format (or of EXIF) that is not reported.
SHARE_TOLERANCE = 0.1
#: Largest difference between the classes' median JPEG quality estimates that is not reported.
QUALITY_TOLERANCE = 5
#: Largest ratio between the classes' median widths (or heights) that is not reported.
SIZE_TOLERANCE = 1.1
#: How far below the lowest JPEG quality of the original files a harmonise quality must be to hide them.
HARMONISE_MARGIN = 17
#: The run-record ``info`` key holding each corpus's findings.
INFO_KEY = "shortcuts"


@dataclass(frozen=True)
class FileFacts:
    """How one image's file was made."""

    format: str
    width: int
    height: int
    exif: bool = False
    quality: int | None = None
    subsampling: str | None = None
    #: The JPEG quality every image was re-encoded at before scoring ("jpeg:Q"); None: not harmonised.
    harmonised: int | None = None


def facts_from_meta(meta: Mapping[str, Any]) -> FileFacts | None:
    """The file facts a record's meta holds (of the original file, with the harmonise quality), or None."""
    facts = meta.get("file")
    if not isinstance(facts, dict) or "format" not in facts:
        return None
    width, height = int(facts.get("width") or 0), int(facts.get("height") or 0)
    spec = str(meta.get("harmonised") or "")
    harmonised = int(spec[5:]) if spec.startswith("jpeg:") and spec[5:].isdigit() else None
    quality = facts.get("quality")
    return FileFacts(str(facts["format"]), width, height, bool(facts.get("exif")),
                     int(quality) if quality is not None else None, facts.get("subsampling"), harmonised)


def _shares(values: Iterable[Any]) -> dict[Any, float]:
    counts = Counter(values)
    total = sum(counts.values())
    return {value: n / total for value, n in counts.items()} if total else {}


def _differ(a: Mapping[Any, float], b: Mapping[Any, float]) -> bool:
    return any(abs(a.get(k, 0.0) - b.get(k, 0.0)) > SHARE_TOLERANCE for k in set(a) | set(b))


def _median_quality(facts: list[FileFacts]) -> int | None:
    qualities = [f.quality for f in facts if f.format == "jpeg" and f.quality is not None]
    return round(statistics.median(qualities)) if qualities else None


def describe_format(facts: list[FileFacts]) -> str:
    """A class's formats in words: "JPEG q~92", "PNG", or "JPEG q~90 (60%) and PNG (40%)"."""
    quality = _median_quality(facts)

    def name(fmt: str) -> str:
        return f"JPEG q~{quality}" if fmt == "jpeg" and quality is not None else fmt.upper()

    shares = sorted(_shares(f.format for f in facts).items(), key=lambda item: (-item[1], item[0]))
    if len(shares) == 1:
        return name(shares[0][0])
    return " and ".join(f"{name(fmt)} ({share:.0%})" for fmt, share in shares)


def _median_size(facts: list[FileFacts]) -> tuple[float, float]:
    return statistics.median(f.width for f in facts), statistics.median(f.height for f in facts)


def compare_classes(reals: list[FileFacts], fakes: list[FileFacts]) -> list[str]:
    """Sentences naming each way the real and fake files differ (format, JPEG quality, chroma
    subsampling, size, EXIF); empty when they match or a class has no facts."""
    if not reals or not fakes:
        return []
    encoding = _encoding_findings(reals, fakes)
    qualities = {f.harmonised for f in reals + fakes}
    harmonised = qualities.pop() if len(qualities) == 1 else None
    if harmonised is not None and encoding:
        known = [q for q in (_median_quality(reals), _median_quality(fakes)) if q is not None]
        lowest = min(known) if known else None  # no JPEG among the originals: nothing for the re-encoding to keep
        encoding = [] if lowest is None or harmonised <= lowest - HARMONISE_MARGIN else [
            f"reals are {describe_format(reals)}, fakes are {describe_format(fakes)}, and harmonise jpeg:{harmonised} "
            f"keeps the traces of the JPEG q~{lowest} compression: harmonise at jpeg:{lowest - HARMONISE_MARGIN} or lower"]
    return encoding + _size_findings(reals, fakes)


def _encoding_findings(reals: list[FileFacts], fakes: list[FileFacts]) -> list[str]:
    """How the classes' files differ in format, JPEG quality, chroma subsampling and EXIF."""
    findings = []
    format_differs = _differ(_shares(f.format for f in reals), _shares(f.format for f in fakes))
    if format_differs:
        findings.append(f"reals are {describe_format(reals)}, fakes are {describe_format(fakes)}: "
                        "a detector can score on format alone")
    quality_r, quality_f = _median_quality(reals), _median_quality(fakes)
    if not format_differs and quality_r is not None and quality_f is not None and abs(quality_r - quality_f) > QUALITY_TOLERANCE:
        findings.append(f"reals are JPEG q~{quality_r}, fakes are JPEG q~{quality_f}: "
                        "a detector can score on compression alone")
    sampling_r = _shares(f.subsampling for f in reals if f.format == "jpeg")
    sampling_f = _shares(f.subsampling for f in fakes if f.format == "jpeg")
    if sampling_r and sampling_f and max(sampling_r, key=sampling_r.__getitem__) != max(sampling_f, key=sampling_f.__getitem__):
        findings.append(f"real JPEGs use chroma subsampling {max(sampling_r, key=sampling_r.__getitem__)}, fake JPEGs "
                        f"{max(sampling_f, key=sampling_f.__getitem__)}: a detector can score on colour sampling alone")
    exif_r, exif_f = _shares(f.exif for f in reals).get(True, 0.0), _shares(f.exif for f in fakes).get(True, 0.0)
    if abs(exif_r - exif_f) > SHARE_TOLERANCE:
        findings.append(f"{exif_r:.0%} of reals carry EXIF, {exif_f:.0%} of fakes: "
                        "a tool reading the files can score on metadata alone")
    return findings


def _size_findings(reals: list[FileFacts], fakes: list[FileFacts]) -> list[str]:
    """Whether the classes' median widths or heights differ (harmonising does not change sizes)."""
    (width_r, height_r), (width_f, height_f) = _median_size(reals), _median_size(fakes)
    ratios = [max(a, b) / max(min(a, b), 1) for a, b in ((width_r, width_f), (height_r, height_f))]
    if max(ratios) <= SIZE_TOLERANCE:
        return []
    return [f"reals are {width_r:.0f}x{height_r:.0f} pixels, fakes {width_f:.0f}x{height_f:.0f} (medians): "
            "a detector can score on size, or on how much each was resized, alone"]


def rows_shortcuts(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """:func:`compare_classes` over manifest rows (``label`` and the ``meta`` JSON text)."""
    by_label: dict[int, list[FileFacts]] = {0: [], 1: []}
    for row in rows:
        try:
            meta = json.loads(row.get("meta") or "{}")
        except ValueError:
            continue
        facts = facts_from_meta(meta) if isinstance(meta, dict) else None
        if facts is not None and int(row["label"]) in by_label:
            by_label[int(row["label"])].append(facts)
    return compare_classes(by_label[0], by_label[1])


def corpus_shortcuts(corpus: Any) -> list[str]:
    """The findings of a :class:`~facebench.harness.data.corpus.Corpus` (its label and meta columns only)."""
    return rows_shortcuts(corpus.manifest.select(["label", "meta"]).to_pylist())


def run_shortcuts(run: Mapping[str, Any]) -> dict[str, list[str]]:
    """The findings a run record holds, by corpus label (empty for runs without any); ``info`` may
    be the store's JSON text."""
    info = run.get("info")
    if isinstance(info, str):
        try:
            info = json.loads(info)
        except ValueError:
            info = None
    found = info.get(INFO_KEY) if isinstance(info, dict) else None
    if not isinstance(found, dict):
        return {}
    return {str(label): [str(s) for s in sentences] for label, sentences in found.items() if isinstance(sentences, list)}


def shortcut_lines(run: Mapping[str, Any]) -> list[str]:
    """One line per finding of a run: "corpus LABEL: SENTENCE"."""
    return [f"corpus {label}: {sentence}" for label, sentences in run_shortcuts(run).items() for sentence in sentences]
