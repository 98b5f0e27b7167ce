"""One self-contained HTML page for a run: tables, plots, a gallery and each detector's worst misses.

:func:`render_report` returns the page; :func:`write_report` writes it atomically. The page
loads nothing: styles and the script (table sorting; the accuracy table's filter, selects and
column toggle) are inline, plots are SVG and thumbnails PNG, both as ``data:`` URIs, so the file
opens from disk or a CI artifact, offline. The accuracy table shows :data:`HEADLINE_METRICS` by
default and stacks each row as a card on screens narrower than 640 px.
"""

from __future__ import annotations

import base64
import html
import importlib.util
import io
import math
import os
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from . import plots
from ..data.environment import run_calibration
from ..contracts.errors import FacebenchError
from ..contracts.constants import CLEAN
from ..contracts.filemodes import as_if_created_plainly
from ..contracts.values import is_missing
from ..run.metrics import MIN_IMAGES_PER_CLASS
from .text import (BALANCE_NOTE, DEGENERATE_MARK, DEGENERATE_NOTE, SMALL_MARK, SMALL_NOTE,
                                      Cell, Leaderboard, build_leaderboard, control_verdict, environment_line,
                                      fmt_interval, perturbation_sort_key, sensitivity_not_applicable, split_controls)
from ..data.results import Results
from ..data.shortcuts import shortcut_lines

#: Pairs per corpus in the gallery strip, and its tile side in pixels.
GALLERY_PAIRS = 4
GALLERY_TILE = 96
#: Side of a miss thumbnail in pixels, and how many false positives / negatives per detector.
THUMB = 80
MISSES = 3
#: Tables with more rows than this scroll inside a box of limited height.
TALL_TABLE = 20
#: Accuracy table metric columns: (metric, header, higher is better). Threshold metrics are
#: class-balanced; AP stands beside its chance level (the fake share).
ACCURACY_COLUMNS = (
    ("auc", "AUC", True),
    ("ap", "AP", True),
    ("ap_chance", "AP chance", False),
    ("balanced_accuracy", "BalAcc@0.5", True),
    ("balanced_accuracy_calibrated", "BalAcc@cal", True),
    ("eer", "EER", False),
    ("tpr_at_fpr_1", "TPR@1%FPR", True),
    ("tpr_at_fpr_0.1", "TPR@0.1%FPR", True),
    ("ece", "ECE", False),
    ("brier", "Brier", False),
    ("score_shift", "score shift", True),
    ("flip_rate", "flip rate", True),
)
#: The accuracy table's columns shown by default; the others appear with its "all columns" toggle.
HEADLINE_METRICS = ("auc", "ap", "ap_chance", "balanced_accuracy", "balanced_accuracy_calibrated")
#: The accuracy table's name columns a reader can filter by (each a :class:`Cell` attribute).
FILTER_KEYS = ("detector", "corpus", "artifact", "perturbation")
#: Throughput figures per device: (field, header, digits, higher is better).
THROUGHPUT_COLUMNS = (
    ("images_per_s", "img/s", 1, True),
    ("images_per_s_q1", "img/s q1", 1, True),
    ("images_per_s_q3", "img/s q3", 1, True),
    ("rounds", "rounds", 0, True),
    ("latency_p50_ms", "p50 ms/img", 3, False),
    ("latency_p95_ms", "p95 ms/img", 3, False),
    ("latency_p99_ms", "p99 ms/img", 3, False),
    ("decode_images_per_s", "decode img/s", 1, True),
    ("peak_rss_mb", "peak RSS MB", 0, False),
)
ENVIRONMENT_KEYS = (
    "cpu_model", "cpu_cores", "cpu_cores_usable", "memory_gb", "gpu", "gpu_count", "gpu_memory_gb", "torch",
    "torch_threads", "cuda", "numpy", "python", "platform", "facebench", "git_commit",
)


def esc(value: Any) -> str:
    """``value`` as text safe inside HTML elements and quoted attributes."""
    return html.escape("" if value is None else str(value), quote=True)


@dataclass
class Section:
    """One ``<section>``: an anchor id, a heading and its HTML body."""

    key: str
    title: str
    body: str

    def html(self) -> str:
        return f'<section id="{esc(self.key)}">\n<h2>{esc(self.title)}</h2>\n{self.body}\n</section>'


def _note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'


# --------------------------------------------------------------------------- corpora


def open_corpora(results: Results, results_dir: str | Path | None = None) -> tuple[dict[str, Any], list[str]]:
    """The run's corpora by label, opened from the folders the run recorded, else from the corpora
    cache ``results_dir/corpora`` (the folder its cache key names); a corpus opens only when its
    digest is the recorded one. Plus a note for each one that could not be opened."""
    from ..data.corpus import Corpus, CorpusError

    found: dict[str, Any] = {}
    notes: list[str] = []
    for record in sorted(results.corpora, key=lambda c: c.label):
        candidates = [Path(record.path)] if record.path else []
        cached = record.cache_folder(Path(results_dir) / "corpora") if results_dir is not None else None
        if cached is not None:
            candidates.append(cached)
        opened = None
        for path in candidates:
            try:
                corpus = Corpus.open(path)
            except (CorpusError, OSError):
                continue
            if record.digest and corpus.digest != record.digest:
                continue
            opened = corpus
            break
        if opened is None:
            where = record.path or "no folder recorded in the run"
            notes.append(f"corpus {record.label!r}: not found ({where}); no images shown for it")
        else:
            found[record.label] = opened
    return found, notes


def _png_uri(image: Any) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


# --------------------------------------------------------------------------- header


def _duration(run: dict[str, Any]) -> str:
    info = run["info"] if isinstance(run.get("info"), dict) else {}
    seconds = info.get("seconds")
    if seconds is None:
        try:
            seconds = (datetime.fromisoformat(run["finished"]) - datetime.fromisoformat(run["started"])).total_seconds()
        except (KeyError, TypeError, ValueError):
            return "-"
    seconds = float(seconds)
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes} min {rest} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def _when(stamp: Any) -> str:
    return "-" if not stamp else str(stamp).replace("T", " ").replace("+00:00", " UTC")


def _header(results: Results, board: Leaderboard) -> str:
    run = results.run
    info = run["info"] if isinstance(run.get("info"), dict) else {}
    env = board.environment
    status = str(run.get("status") or "?")
    facts = [
        ("run", esc(run.get("run_id"))),
        ("status", f'<span class="status status-{esc(status)}">{esc(status)}</span>'),
        ("started", esc(_when(run.get("started")))),
        ("finished", esc(_when(run.get("finished")))),
        ("duration", esc(_duration(run))),
        ("facebench", esc(env.get("facebench") or run.get("facebench_version") or "?")),
        ("git commit", f"<code>{esc(str(env.get('git_commit'))[:12])}</code>" if env.get("git_commit") else "-"),
        ("suite source", esc(info.get("suite_source") or "-")),
    ]
    if results.source:
        facts.append(("results", f"<code>{esc(results.source)}</code>"))
    digests = {c.label: c.digest for c in results.corpora if c.digest}
    if digests:
        facts.append(("corpora", ", ".join(
            f'{esc(label)} <code title="{esc(digest)}">{esc(str(digest)[:16])}</code>'
            for label, digest in sorted(digests.items()))))
    items = "\n".join(f"<div><dt>{name}</dt><dd>{value}</dd></div>" for name, value in facts)
    return (
        f"<header>\n<h1>facebench report: suite {esc(run.get('suite') or '?')}</h1>\n"
        f'<dl class="facts">\n{items}\n</dl>\n'
        f'<p class="env">{esc(environment_line(board))}</p>\n</header>'
    )


HOW_TO_READ = (
    "Fake is the positive class: a higher score means 'more likely fake'. AUC 0.5 is chance and 1.0 "
    "separates every fake from every real. Intervals are 95% bootstrap intervals over real/fake pairs "
    "(a real and the fakes made from it are resampled together). Threshold figures are class-balanced: "
    f"{BALANCE_NOTE}; no threshold is picked on the test labels. AP moves with the fake share, so read it "
    f"against AP chance; AUC does not. A row marked small has fewer than {MIN_IMAGES_PER_CLASS} real or fake "
    "test images: it shows no interval and sorts after every other row; a row marked degenerate scored every "
    "test image alike (AUC 0.5 with a zero-width interval) and sorts last too. EER, ECE and "
    "Brier are lower-is-better. Unless a table says otherwise, figures are on the clean test split, with each "
    "detector trained on the corpus it is tested on; 'artifact all' means every test image, a named artifact "
    "means the reals plus the fakes carrying it."
)


# --------------------------------------------------------------------------- tables


def _num_cell(value: Any, digits: int = 3, low: Any = None, high: Any = None) -> str:
    if is_missing(value) or not math.isfinite(float(value)):
        return '<td class="num" data-v="">-</td>'
    text = f"{float(value):.{digits}f}"
    if not is_missing(low) and not is_missing(high):
        text += f'<span class="ci">{fmt_interval(low, high)}</span>'
    return f'<td class="num" data-v="{float(value)!r}">{text}</td>'


def _metric_cell(cell: Cell, metric: str) -> str:
    """One figure of the accuracy table; a row too small to judge shows ``(n<30)`` in place of its interval,
    a degenerate row ``(degenerate)`` in place of its AUC interval."""
    if metric not in cell.values and metric != "ap_chance":
        return _num_cell(math.nan)
    value, low, high = cell.values.get(metric, (cell.value(metric), None, None))
    if is_missing(value) or not math.isfinite(float(value)):
        return _num_cell(value)
    if metric == "auc" and cell.degenerate:
        note, mark = DEGENERATE_NOTE, DEGENERATE_MARK
    elif cell.small:
        note, mark = SMALL_NOTE, SMALL_MARK
    else:
        return _num_cell(value, 3, low, high)
    return (f'<td class="num" data-v="{float(value)!r}" title="{esc(note)}">{float(value):.3f}'
            f'<span class="ci">{esc(mark)}</span></td>')


def _labelled(cell_html: str, label: str, classes: str = "") -> str:
    """``cell_html`` (a ``<td ...>``) with ``data-label`` (the narrow layout's caption) and extra classes."""
    attrs = f' data-label="{esc(label)}"'
    if classes:
        if cell_html.startswith('<td class="'):
            return cell_html.replace('<td class="', f'<td{attrs} class="{classes} ', 1)
        attrs += f' class="{classes}"'
    return cell_html.replace("<td", "<td" + attrs, 1)


def _head(label: str, numeric: bool = False, descending_first: bool = False, title: str = "",
          sticky: bool = False, classes: str = "") -> str:
    attrs = ' data-type="num"' if numeric else ""
    attrs += ' data-first="descending"' if descending_first else ""
    attrs += f' title="{esc(title)}"' if title else ""
    names = " ".join(n for n in ("num" if numeric else "sticky" if sticky else "", classes) if n)
    kind = f' class="{names}"' if names else ""
    return f'<th scope="col"{kind}{attrs}><button type="button">{esc(label)}</button></th>'


def _table(table_id: str, heads: Sequence[str], rows: Sequence[str], caption: str = "", classes: str = "") -> str:
    caption_html = f"<caption>{esc(caption)}</caption>" if caption else ""
    tall = " tall" if len(rows) > TALL_TABLE else ""
    return (
        f'<div class="scroll{tall}"><table id="{esc(table_id)}" class="sortable{" " + classes if classes else ""}">'
        f'{caption_html}\n'
        f"<thead><tr>{''.join(heads)}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody></table></div>"
    )


def _accuracy_section(board: Leaderboard) -> Section:
    cells, _ = split_controls(board.cells)
    if not cells:
        return Section("accuracy", "Accuracy leaderboard", _note("No metric rows in this run."))
    cross = any(not c.within for c in cells)
    columns = [col for col in ACCURACY_COLUMNS if any(not is_missing(c.value(col[0])) for c in cells)]
    columns = [col for col in columns if col[0] != "ap_chance" or any(col[0] == "ap" for col in columns)]
    extra = {metric: "" if metric in HEADLINE_METRICS else "extra" for metric, _, _ in columns}
    heads = [_head("detector", sticky=True), _head("corpus")] + ([_head("trained on")] if cross else [])
    heads += [_head("artifact"), _head("perturbation")]
    heads += [_head(label, True, better, title=metric, classes=extra[metric]) for metric, label, better in columns]
    heads.append(_head("real/fake", True, True, "test images: reals / fakes"))
    rows = []
    for cell in cells:
        out = [f'<th scope="row" class="sticky">{esc(cell.detector)}</th>',
               f'<td data-label="corpus">{esc(cell.corpus)}</td>']
        out += [f'<td data-label="trained on">{esc(cell.train_corpus)}</td>'] if cross else []
        out += [f'<td data-label="artifact">{esc(cell.artifact)}</td>',
                f'<td data-label="perturbation">{esc(cell.perturbation)}</td>']
        for metric, label, _ in columns:
            out.append(_labelled(_metric_cell(cell, metric), label, " ".join(n for n in (extra[metric], metric) if n)))
        n_real, n_fake = cell.n_real, cell.n_fake
        total = (n_real or 0) + (n_fake or 0)
        title = f' title="{esc(SMALL_NOTE)}"' if cell.small else ""
        out.append(f'<td class="num" data-label="real/fake" data-v="{total}"{title}>{esc(cell.counts)}</td>')
        rows.append(_accuracy_row(cell, "".join(out)))
    hidden = sum(1 for metric in extra.values() if metric)
    text = (f"{len(cells)} rows, one per test corpus{', training corpus' if cross else ''}, artifact, perturbation "
            "and detector. Click a column header to sort; click again to reverse. Rows marked small or degenerate "
            "sort last. Filter by any words of the detector, corpus, artifact and perturbation, or pick one of each"
            + (f"; the other {hidden} metrics (EER, TPR at low FPR, calibration) are behind 'all columns'." if hidden
               else "."))
    table = _table("accuracy-table", heads, rows, classes="compact stack")
    unpaired = "".join(_note(f"Corpus {corpus}: counterfactual sensitivity (score shift, flip rate) {reason}.")
                       for corpus, reason in sorted(sensitivity_not_applicable(board.run).items()))
    return Section("accuracy", "Accuracy leaderboard", _note(text) + unpaired + "\n"
                   + _table_tools(cells, len(rows), hidden) + "\n" + table)


def _accuracy_row(cell: Cell, cells_html: str) -> str:
    """A ``<tr>`` with the names the filter reads; small and degenerate rows marked to sort last."""
    classes = [name for name, on in (("small", cell.small), ("degenerate", cell.degenerate)) if on]
    words = " ".join((cell.detector, cell.corpus, cell.train_corpus, cell.artifact, cell.perturbation)).lower()
    attrs = "".join(f' data-{key}="{esc(getattr(cell, key))}"' for key in FILTER_KEYS)
    attrs += f' data-words="{esc(words)}"'
    if classes:
        attrs += f' class="{" ".join(classes)}" data-last="1"' + (' data-small="1"' if cell.small else "")
    return f"<tr{attrs}>{cells_html}</tr>"


def _table_tools(cells: Sequence[Cell], total: int, hidden: int) -> str:
    """The accuracy table's filter box, one select per name column, the column toggle and a row count."""
    orders = {"perturbation": perturbation_sort_key, "artifact": lambda name: (name != "all", name)}
    picks = []
    for key in FILTER_KEYS:
        names = sorted({getattr(c, key) for c in cells}, key=orders.get(key, str))
        if len(names) < 2:
            continue
        options = "".join(f'<option value="{esc(n)}">{esc(n)}</option>' for n in names)
        picks.append(f'<label>{esc(key)} <select data-key="{esc(key)}"><option value="">all</option>'
                     f"{options}</select></label>")
    toggle = (f'<button type="button" class="toggle-columns" aria-pressed="false" aria-controls="accuracy-table">'
              f"all columns (+{hidden})</button>" if hidden else "")
    return (
        '<div class="table-tools" data-table="accuracy-table">'
        '<label>filter <input type="search" class="filter" placeholder="e.g. dct jpeg" '
        'aria-label="show rows whose detector, corpus, artifact and perturbation hold every word"></label>'
        + "".join(picks) + toggle
        + f'<span class="row-count" aria-live="polite">{total} of {total} rows</span></div>'
    )


def _controls_section(board: Leaderboard) -> Section | None:
    """The null and none control rows (clean), in a fixed order, each with its verdict; None if the run has none."""
    _, controls = split_controls(board.cells)
    cells = [c for c in controls if c.artifact in ("none", "null") and c.perturbation == CLEAN]
    if not cells:
        return None
    cross = any(not c.within for c in cells)
    heads = [_head("corpus"), *([_head("trained on")] if cross else []), _head("control"), _head("detector")]
    heads += [_head("AUC", True), _head("score shift", True), _head("real/fake", True), _head("verdict")]
    rows = []
    for c in sorted(cells, key=lambda c: (c.corpus, c.train_corpus, c.artifact, c.detector)):
        out = [f"<td>{esc(c.corpus)}</td>", *([f"<td>{esc(c.train_corpus)}</td>"] if cross else [])]
        out += [f"<td>{esc(c.artifact)}</td>", f"<td>{esc(c.detector)}</td>"]
        for metric in ("auc", "score_shift"):
            value, low, high = c.values.get(metric, (math.nan, None, None))
            out.append(_num_cell(value, 3, low, high))
        out.append(f'<td class="num" data-v="{(c.n_real or 0) + (c.n_fake or 0)}">{esc(c.n_real)}/{esc(c.n_fake)}</td>')
        verdict = control_verdict(c)
        style = ' class="fail"' if verdict.startswith("FLAG") else ""
        out.append(f"<td{style}>{esc(verdict)}</td>")
        rows.append("<tr>" + "".join(out) + "</tr>")
    text = ("Controls are not ranked. null: each fake is another real image of the same generator and camera, so a "
            "sound pipeline's AUC interval covers 0.5 with real width; an interval that excludes 0.5 means a leak "
            "(pairs across the split, file format, image size) or a shortcut the detector reads. none: each fake is "
            "a byte copy of its real, so the score shift must be exactly 0; its AUC is 0.5 by construction.")
    return Section("controls", "Controls", _note(text) + "\n" + _table("controls-table", heads, rows))


def _throughput_section(board: Leaderboard, colours: dict[str, str]) -> Section:
    rows = board.throughput
    if not rows:
        body_html = _note("No throughput rows in this run.") + _environment(board)
        return Section("throughput", "Throughput leaderboard", body_html)
    devices = sorted({str(r.get("device") or "?") for r in rows}, key=lambda d: (d != "cpu", d))
    several = len(devices) > 1
    groups: dict[tuple, dict[str, dict[str, Any]]] = {}
    for r in rows:
        key = (r["kind"], r["name"], r["batch_size"] if r["kind"] == "sweep" else None)
        groups.setdefault(key, {}).setdefault(str(r.get("device") or "?"), r)
    columns = [c for c in THROUGHPUT_COLUMNS if any(not is_missing(r.get(c[0])) for r in rows)]
    heads = [_head("kind"), _head("name")]
    heads += [] if several else [_head("device")]
    heads.append(_head("batch", True, title="batch size" + (" per device" if several else "")))
    for device in devices:
        prefix = f"{device} " if several else ""
        heads += [_head(prefix + label, True, better) for _, label, _, better in columns]
    errors = any(r.get("error") for r in rows)
    heads += [_head("error")] if errors else []
    body = []
    for (kind, name, _), by_device in groups.items():
        out = [f"<td>{esc(kind)}</td>", f'<td class="det">{esc(name)}</td>']
        out += [] if several else [f"<td>{esc(devices[0])}</td>"]
        batches = list(dict.fromkeys(by_device[d].get("batch_size") for d in devices if d in by_device))
        first = batches[0] if batches and batches[0] is not None else ""
        out.append(f'<td class="num" data-v="{esc(first)}">{esc(" / ".join(str(b) for b in batches))}</td>')
        for device in devices:
            r = by_device.get(device, {})
            out += [_num_cell(r.get(field), digits) for field, _, digits, _ in columns]
        if errors:
            message = "; ".join(str(r["error"]) for r in by_device.values() if r.get("error"))
            out.append(f'<td class="err">{esc(message)}</td>')
        body.append("<tr>" + "".join(out) + "</tr>")
    text = ("Detectors: test images scored per second at their batch size, timed apart from scoring on the test "
            "images held in memory (warm-up, then several rounds; img/s is the median round, q1 and q3 its rounds' "
            "quartiles; decode: images read from disk per second while scoring); sweep: the same timing at each "
            "batch size; generators: images made per second while the corpus was built (q1, q3 over batches; a "
            "reused corpus keeps its figures). Latencies are per image.")
    figure = _plots([(plots.throughput_bars(rows), "images per second per generator and detector"),
                     (plots.throughput_sweep(rows, colours), "images per second against batch size")],
                    "Images per second (log scale), and against batch size in the sweep"
                    + (" (dashed: not the CPU)." if several else "."))
    body_html = _note(text) + "\n" + _table("throughput-table", heads, body) + "\n" + figure + _environment(board)
    return Section("throughput", "Throughput leaderboard", body_html)


def _environment(board: Leaderboard) -> str:
    env = board.environment
    keys = [k for k in ENVIRONMENT_KEYS if env.get(k) not in (None, "")]
    if not keys:
        return _note("The run recorded no environment.")
    items = "".join(f"<div><dt>{esc(k)}</dt><dd>{esc(env[k])}</dd></div>" for k in keys)
    calibration = run_calibration(board.run)
    if not is_missing(calibration.get("units_per_s")):
        speed = f"{float(calibration['units_per_s']):.1f} units/s ({calibration.get('workload', '?')})"
        items += f"<div><dt>calibration</dt><dd>{esc(speed)}</dd></div>"
    return f'<h3>Environment</h3>\n<dl class="facts small">{items}</dl>'


def _shortcuts_section(board: Leaderboard) -> Section | None:
    lines = shortcut_lines(board.run)
    if not lines:
        return None
    items = "\n".join(f"<li>{esc(line)}</li>" for line in lines)
    return Section("shortcuts", f"Format shortcuts ({len(lines)})",
                   _note("Reals and fakes of these corpora differ in how their files were made; a high score may "
                         "measure that, not the generator. Re-encode both classes alike with the dataset "
                         "source's harmonise = \"jpeg:Q\", Q well below the originals' JPEG quality.") + f"<ul>{items}</ul>")


def _errors_section(board: Leaderboard) -> Section | None:
    if not board.errors:
        return None
    items = "\n".join(f"<li><b>{esc(e['task'])}</b>: {esc(e['message'])}</li>" for e in board.errors)
    return Section("errors", f"Errors ({len(board.errors)})",
                   _note("These tasks failed; their figures are missing from the tables.") + f"<ul>{items}</ul>")


# --------------------------------------------------------------------------- plots


def _figure(uri: str, caption: str, alt: str = "", width: int | None = None) -> str:
    style = f' style="width:{int(width)}px"' if width else ""
    return (f'<figure{style}><img src="{uri}" alt="{esc(alt or caption)}" decoding="async">'
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def _plots(uris: Iterable[tuple[str | None, str]], caption: str) -> str:
    """Plot panels (``(uri, alt text)``) side by side, wrapping on narrow screens, then one caption."""
    images = "".join(f'<img src="{uri}" alt="{esc(alt)}" decoding="async">' for uri, alt in uris if uri)
    return f'<figure class="plots"><div class="panels">{images}</div><figcaption>{esc(caption)}</figcaption></figure>'


def _clean_scores(results: Results) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """``[corpus][detector] -> (labels, scores)`` of the clean, within-generator test split."""
    gathered: dict[tuple[str, str], tuple[list[int], list[float]]] = defaultdict(lambda: ([], []))
    for s in results.scores:
        if (s.get("perturbation") or CLEAN) != CLEAN or (s.get("train_corpus") or s["corpus"]) != s["corpus"]:
            continue
        if is_missing(s.get("score")):
            continue
        labels, scores = gathered[(s["corpus"], s["detector"])]
        labels.append(int(s["label"]))
        scores.append(float(s["score"]))
    out: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = defaultdict(dict)
    for (corpus, detector), (labels, scores) in sorted(gathered.items()):
        out[corpus][detector] = (np.array(labels), np.array(scores))
    return dict(out)


def _roc_section(results: Results, colours: dict[str, str]) -> Section:
    title = "ROC and precision-recall curves"
    if not results.scores:
        return Section("roc", title, _note("No per-image scores in this run, so no curves."))
    by_corpus = _clean_scores(results)
    if not by_corpus:
        return Section("roc", title, _note("No clean within-generator scores in this run, so no curves."))
    figures = [_plots([(plots.roc(curves, colours, corpus), f"ROC curves on {corpus}"),
                       (plots.pr(curves, colours, corpus), f"precision-recall curves on {corpus}")],
                      f"Corpus {corpus}: clean test split, each detector trained on this corpus; fake is the "
                      "positive class.") for corpus, curves in by_corpus.items()]
    return Section("roc", title, "\n".join(figures))


def _within_clean(cells: Iterable[Cell]) -> list[Cell]:
    return [c for c in cells if c.within and c.perturbation == CLEAN]


def _heatmap_section(board: Leaderboard) -> Section:
    title = "Detector x artifact AUC"
    cells = _within_clean(board.cells)
    if not any(c.artifact != "all" for c in cells):
        return Section("heatmap", title, _note("No per-artifact rows in this run, so no heatmap."))
    detectors = sorted({c.detector for c in cells})
    columns: list[tuple[str, str]] = []
    for c in sorted(cells, key=lambda c: (c.corpus, c.artifact != "all", c.artifact)):
        if (c.corpus, c.artifact) not in columns:
            columns.append((c.corpus, c.artifact))
    values = np.full((len(detectors), len(columns)), np.nan)
    for c in cells:
        values[detectors.index(c.detector), columns.index((c.corpus, c.artifact))] = c.value("auc")
    labels = [f"{corpus}: {artifact}" for corpus, artifact in columns]
    uri = plots.heatmap(values, detectors, labels, "AUC, clean test split", "corpus: artifact", "detector")
    caption = ("AUC per detector and artifact (reals plus the fakes carrying it); 0.5 white, 1 dark red, "
               "below 0.5 blue.")
    return Section("heatmap", title, _figure(uri, caption))


def _robustness_section(board: Leaderboard, colours: dict[str, str]) -> Section:
    title = "Robustness"
    cells = [c for c in board.cells if c.within and c.artifact == "all"]
    corpora = sorted({c.corpus for c in cells if c.perturbation != CLEAN})
    if not corpora:
        return Section("robustness", title, _note("No perturbed test sets in this run, so no robustness curves."))
    figures = []
    for corpus in corpora:
        aucs: dict[str, dict[str, float]] = defaultdict(dict)
        clean: dict[str, float] = {}
        for c in cells:
            if c.corpus != corpus:
                continue
            if c.perturbation == CLEAN:
                clean[c.detector] = c.value("auc")
            else:
                aucs[c.detector][c.perturbation] = c.value("auc")
        uris = plots.robustness(aucs, clean, colours, corpus)
        figures.append(_plots([(uri, f"robustness on {corpus}") for uri in uris],
                              f"Corpus {corpus}: AUC on the test split under each test-time perturbation, artifact "
                              "all (hollow marker, 'clean': no perturbation; dotted: chance)."))
    return Section("robustness", title, "\n".join(figures))


def _cross_section(board: Leaderboard) -> Section:
    title = "Cross-generator AUC"
    cells = [c for c in board.cells if c.perturbation == CLEAN and c.artifact == "all"]
    if all(c.within for c in cells):
        return Section("cross", title, _note("Every detector was tested only on the corpus it was trained on "
                                             "(set cross_generator = true in the suite for this matrix)."))
    trains = sorted({c.train_corpus for c in cells})
    tests = sorted({c.corpus for c in cells})
    panels = []
    for detector in sorted({c.detector for c in cells}):
        values = np.full((len(trains), len(tests)), np.nan)
        for c in cells:
            if c.detector == detector:
                values[trains.index(c.train_corpus), tests.index(c.corpus)] = c.value("auc")
        panels.append((plots.heatmap(values, trains, tests, detector, "tested on", "trained on"),
                       f"cross-generator AUC of {detector}"))
    caption = "AUC per detector, trained on the row's corpus and tested on the column's (clean, artifact all)."
    return Section("cross", title, _plots(panels, caption))


# --------------------------------------------------------------------------- images


def _gallery_section(corpora: dict[str, Any], notes: list[str], has_paths: bool) -> Section:
    from .gallery import contact_sheet

    title = "Gallery"
    if not has_paths:
        return Section("gallery", title, _note("This run did not record its corpus folders (an older run), "
                                               "so no images are shown."))
    parts = [_note(n) for n in notes]
    for label, corpus in sorted(corpora.items()):
        try:
            sheet = contact_sheet(corpus, GALLERY_PAIRS, GALLERY_TILE)
        except Exception as exc:  # a damaged corpus must not lose the rest of the page
            parts.append(_note(f"corpus {label!r}: no gallery ({type(exc).__name__}: {exc})"))
            continue
        parts.append(_figure(_png_uri(sheet), f"Corpus {label}: the first {GALLERY_PAIRS} pairs, real first, "
                             "then its fakes; artifact masks outlined in red.", f"real/fake pairs of {label}",
                             width=sheet.width))
    if len(parts) == len(notes):
        parts.append(_note("No corpus could be opened."))
    return Section("gallery", title, '<div class="gallery">' + "\n".join(parts) + "</div>")


@dataclass
class Misses:
    """One detector's hardest test images on one corpus; ``tie`` is the score when every image got the same."""

    reals: list[dict]
    fakes: list[dict]
    tie: float | None = None


def _misses(results: Results) -> dict[tuple[str, str], Misses]:
    """``(corpus, detector) ->`` highest-scored reals and lowest-scored fakes on the clean within split."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for s in results.scores:
        if (s.get("perturbation") or CLEAN) == CLEAN and (s.get("train_corpus") or s["corpus"]) == s["corpus"] \
                and not is_missing(s.get("score")):
            groups[(s["corpus"], s["detector"])].append(s)
    out = {}
    for key, rows in sorted(groups.items()):
        scores = [float(r["score"]) for r in rows]
        if max(scores) == min(scores):
            out[key] = Misses([], [], scores[0])
            continue
        reals = sorted((r for r in rows if int(r["label"]) == 0), key=lambda r: (-r["score"], r["id"]))[:MISSES]
        fakes = sorted((r for r in rows if int(r["label"]) == 1), key=lambda r: (r["score"], r["id"]))[:MISSES]
        out[key] = Misses(reals, fakes)
    return out


def _thumbnails(corpus: Any, ids: set[str]) -> dict[str, str]:
    from PIL import Image

    rows = corpus.select(ids=sorted(ids)).rows()
    if not rows:
        return {}
    images = corpus.load_image_list(rows)  # each at its own size: a corpus may hold many
    return {row["id"]: _png_uri(Image.fromarray(image).resize((THUMB, THUMB), Image.LANCZOS))
            for row, image in zip(rows, images)}


def _thumb(uri: str | None, score: dict) -> str:
    artifacts = ", ".join(score.get("artifact_names") or []) or ("real" if int(score["label"]) == 0 else "no artifact")
    caption = f"{float(score['score']):.3f} · {artifacts}"
    image = (f'<img src="{uri}" width="{THUMB}" height="{THUMB}" alt="{esc(score["id"])}" title="{esc(score["id"])}">'
             if uri else '<div class="missing">not found</div>')
    return f'<figure class="thumb">{image}<figcaption>{esc(caption)}</figcaption></figure>'


def _misses_section(results: Results, corpora: dict[str, Any], has_paths: bool) -> Section:
    title = "Most confident misses"
    if not results.scores:
        return Section("misses", title, _note("No per-image scores in this run, so no misses to show."))
    if not has_paths:
        return Section("misses", title, _note("This run did not record its corpus folders, so no images are shown."))
    misses = _misses(results)
    wanted: dict[str, set[str]] = defaultdict(set)
    for (corpus, _), found in misses.items():
        wanted[corpus].update(r["id"] for r in found.reals + found.fakes)
    uris: dict[tuple[str, str], str] = {}
    notes = []
    for corpus, ids in sorted(wanted.items()):
        if corpus not in corpora:
            notes.append(f"corpus {corpus!r} could not be opened; its misses are listed without images.")
            continue
        try:
            uris.update({(corpus, i): uri for i, uri in _thumbnails(corpora[corpus], ids).items()})
        except Exception as exc:  # a missing image file: captions only
            notes.append(f"corpus {corpus!r}: images unreadable ({type(exc).__name__}: {exc})")
    blocks = [_note("Per corpus and detector, on the clean test split with the detector trained on that corpus: "
                    f"the {MISSES} reals with the highest scores (likeliest false positives) and the {MISSES} "
                    "fakes with the lowest scores (likeliest false negatives). Captions: score and artifacts.")]
    blocks += [_note(n) for n in notes]
    cards = []
    for (corpus, detector), found in misses.items():
        heading = f"<h3>{esc(detector)} on {esc(corpus)}</h3>"
        if found.tie is not None:
            cards.append(f'<div class="card">{heading}'
                         f'{_note(f"Every test image scored {found.tie:.3f}: no misses to rank.")}</div>')
            continue
        strip = lambda rows, corpus=corpus: "".join(_thumb(uris.get((corpus, r["id"])), r) for r in rows)  # noqa: E731
        cards.append(
            f'<div class="card">{heading}'
            f'<h4>reals scored most fake</h4><div class="thumbs">{strip(found.reals)}</div>'
            f'<h4>fakes scored most real</h4><div class="thumbs">{strip(found.fakes)}</div></div>'
        )
    return Section("misses", title, "\n".join(blocks) + '\n<div class="cards">' + "\n".join(cards) + "</div>")


# --------------------------------------------------------------------------- page

#: The page's styles and script, package data files inlined into every page (it loads nothing).
STATIC_FILES = ("report.css", "report.js")


def static_text(name: str) -> str:
    """The text of one of the report's package data files (:data:`STATIC_FILES`)."""
    return resources.files(__package__).joinpath("static", name).read_text(encoding="utf-8")


def render_report(results: Results, results_dir: str | Path | None = None) -> str:
    """The run as one self-contained HTML page (a ``str``).

    Corpus images for the gallery and the misses come from the folders the run recorded
    (``results.corpora``), else from the corpora cache under ``results_dir/corpora``; sections
    without data say so in a line instead.
    """
    if importlib.util.find_spec("matplotlib") is None:
        raise FacebenchError("the HTML report draws its plots with matplotlib, which is not installed; "
                             "pip install matplotlib")
    board = build_leaderboard(results.run, results.metrics, results.throughput, results.errors)
    colours = plots.detector_colours([c.detector for c in board.cells] + [s["detector"] for s in results.scores])
    has_paths = any(c.path for c in results.corpora) or results_dir is not None
    corpora, notes = open_corpora(results, results_dir) if has_paths else ({}, [])
    sections = [s for s in (
        _errors_section(board),
        _shortcuts_section(board),
        _accuracy_section(board),
        _controls_section(board),
        _throughput_section(board, colours),
        _roc_section(results, colours),
        _heatmap_section(board),
        _robustness_section(board, colours),
        _cross_section(board),
        _gallery_section(corpora, notes, has_paths),
        _misses_section(results, corpora, has_paths),
    ) if s is not None]
    nav = "".join(f'<a href="#{esc(s.key)}">{esc(s.title)}</a>' for s in sections)
    title = f"facebench {results.run.get('suite') or ''} {results.run_id}".strip()
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>\n{static_text('report.css')}</style>\n</head>\n<body><main>\n"
        + _header(results, board)
        + f'\n<nav aria-label="sections">{nav}</nav>\n'
        + f'<section id="how-to-read" class="howto"><b>How to read this.</b> {esc(HOW_TO_READ)}</section>\n'
        + "\n".join(s.html() for s in sections)
        + f"\n<footer>Written by facebench {esc(results.run.get('facebench_version') or '')} "
        f"(<code>facebench report</code>); self-contained, no network needed.</footer>\n"
        f"</main>\n<script>\n{static_text('report.js')}</script>\n</body></html>\n"
    )


def write_report(results: Results, path: str | Path, results_dir: str | Path | None = None) -> Path:
    """Write :func:`render_report` to ``path`` atomically (a temporary file, then a rename)."""
    path = Path(path)
    text = render_report(results, results_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        as_if_created_plainly(tmp)  # mkstemp makes it private; a report is for sharing (umask respected)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
