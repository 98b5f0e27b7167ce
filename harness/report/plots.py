"""Matplotlib figures for the HTML report, each returned as an SVG ``data:`` URI.

Figures are made with :class:`matplotlib.figure.Figure` directly (no pyplot), so rendering
never touches the process's interactive backend. Text stays text in the SVG (``svg.fonttype
none``) and long curves are thinned, which keeps each plot to a few tens of kilobytes.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np

#: Most points drawn per curve; longer ROC / PR curves are thinned to this many.
MAX_POINTS = 300
#: Value of each perturbation kind that leaves the image as it is: where the clean AUC is drawn.
IDENTITY = {"jpeg": 100.0, "blur": 0.0, "resize": 1.0, "noise": 0.0, "crop": 0.0}
AXIS_LABELS = {
    "jpeg": "JPEG quality",
    "blur": "blur sigma (px)",
    "resize": "resize factor",
    "noise": "noise std (0..255)",
    "crop": "crop (% removed)",
}
_STYLE = {
    "svg.fonttype": "none",
    "svg.hashsalt": "facebench",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.fontsize": 8,
    "legend.frameon": False,
}
#: Heatmap colours: AUC 0.5 white, 1 dark red, 0 dark blue (as in ``facebench matrix``).
HEATMAP_CMAP = "RdBu_r"


@contextmanager
def _style() -> Iterator[None]:
    import matplotlib

    with matplotlib.rc_context(_STYLE):
        yield


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def svg_uri(fig: Any) -> str:
    """``fig`` as a base64 ``data:image/svg+xml`` URI."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def detector_colours(detectors: Sequence[str]) -> dict[str, str]:
    """One fixed colour per detector (sorted names, matplotlib's tab10 cycle)."""
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
               "#bcbd22", "#17becf"]
    return {name: palette[i % len(palette)] for i, name in enumerate(sorted(set(detectors)))}


def _thin(x: np.ndarray, y: np.ndarray, limit: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    if len(x) <= limit:
        return x, y
    keep = np.unique(np.linspace(0, len(x) - 1, limit).round().astype(int))
    return x[keep], y[keep]


# --------------------------------------------------------------------------- ROC / PR

#: Size in inches of one panel: a panel fits a 400 px wide screen unscaled, three fit a desktop line.
PANEL = (3.6, 3.1)


def _curves(curves: Mapping[str, tuple[np.ndarray, np.ndarray]]):
    for detector, (labels, scores) in curves.items():
        if len(np.unique(labels)) == 2:
            yield detector, np.asarray(labels), np.asarray(scores)


def roc(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], colours: Mapping[str, str], title: str) -> str:
    """ROC curves, one line per detector, AUC in the legend; ``curves[detector] = (labels, scores)``."""
    from sklearn.metrics import roc_auc_score, roc_curve

    with _style():
        fig = _figure(*PANEL)
        ax = fig.subplots()
        for detector, labels, scores in _curves(curves):
            fpr, tpr, _ = roc_curve(labels, scores)
            ax.plot(*_thin(fpr, tpr), color=colours.get(detector), lw=1.4,
                    label=f"{detector} ({roc_auc_score(labels, scores):.3f})")
        ax.plot([0, 1], [0, 1], color="#999999", lw=0.8, ls=":", label="chance")
        ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="false positive rate (reals called fake)",
               ylabel="true positive rate", title=f"ROC: {title}")
        ax.legend(loc="lower right", title="detector (AUC)", title_fontsize=8)
        return svg_uri(fig)


def pr(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], colours: Mapping[str, str], title: str) -> str:
    """Precision-recall curves (fakes are the positives), one line per detector, AP in the legend."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    with _style():
        fig = _figure(*PANEL)
        ax = fig.subplots()
        prevalence = None
        for detector, labels, scores in _curves(curves):
            precision, recall, _ = precision_recall_curve(labels, scores)
            ax.plot(*_thin(recall, precision), color=colours.get(detector), lw=1.4, drawstyle="steps-post",
                    label=f"{detector} ({average_precision_score(labels, scores):.3f})")
            prevalence = float(np.mean(labels))
        if prevalence is not None:
            ax.axhline(prevalence, color="#999999", lw=0.8, ls=":", label="chance")
        ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="recall (fakes caught)", ylabel="precision",
               title=f"precision-recall: {title}")
        ax.legend(loc="lower left", title="detector (AP)", title_fontsize=8)
        return svg_uri(fig)


# --------------------------------------------------------------------------- heatmaps


def _heatmap_axes(ax: Any, values: np.ndarray, rows: Sequence[str], columns: Sequence[str]) -> Any:
    masked = np.ma.masked_invalid(values)
    image = ax.imshow(masked, cmap=HEATMAP_CMAP, vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
    ax.grid(False)
    ax.set_xticks(range(len(columns)), labels=list(columns), rotation=30 if len(columns) > 2 else 0,
                  ha="right" if len(columns) > 2 else "center")
    ax.set_yticks(range(len(rows)), labels=list(rows))
    for i in range(len(rows)):
        for j in range(len(columns)):
            value = values[i, j]
            text = "-" if math.isnan(value) else f"{value:.2f}"
            dark = not math.isnan(value) and abs(value - 0.5) > 0.3
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else "black")
    return image


def heatmap(values: np.ndarray, rows: Sequence[str], columns: Sequence[str], title: str,
            xlabel: str = "", ylabel: str = "") -> str:
    """A matrix of AUCs with each value written in its cell (NaN: ``-``)."""
    with _style():
        width = min(max(1.9 + 0.75 * len(columns), PANEL[0]), 10.0)
        height = min(max(1.6 + 0.4 * len(rows), 2.4), 8.0)
        fig = _figure(width, height)
        ax = fig.subplots()
        image = _heatmap_axes(ax, values, rows, columns)
        ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
        fig.colorbar(image, ax=ax, label="AUC", shrink=0.9)
        return svg_uri(fig)


# --------------------------------------------------------------------------- robustness


def robustness(aucs: Mapping[str, Mapping[str, float]], clean: Mapping[str, float], colours: Mapping[str, str],
               title: str) -> list[str]:
    """AUC against perturbation strength: one panel per kind, plus a bar panel for chains.

    ``aucs[detector][perturbation]`` for single-step perturbations (``jpeg:75``) and chains
    (``jpeg:50+blur:2``); ``clean[detector]`` is drawn at each kind's identity value (JPEG 100,
    blur 0, ...) as a hollow marker, and as a dashed reference over the chain bars.
    """
    from ..contracts.perturbations import parse

    kinds: dict[str, dict[str, list[tuple[float, float]]]] = {}
    chains: list[str] = []
    for detector, by_name in aucs.items():
        for name, value in by_name.items():
            steps = parse(name).steps
            if len(steps) == 1:
                kinds.setdefault(steps[0].kind, {}).setdefault(detector, []).append((steps[0].value, value))
            elif name not in chains:
                chains.append(name)
    from .text import perturbation_sort_key

    chains.sort(key=perturbation_sort_key)
    detectors = sorted(aucs)
    panels = [k for k in IDENTITY if k in kinds] + [k for k in kinds if k not in IDENTITY]
    out = [_strength_panel(kind, kinds[kind], clean, colours, detectors, title) for kind in panels]
    if chains:
        out.append(_chain_panel(chains, aucs, clean, colours, detectors, title))
    return out


def _panel_legend(fig: Any, ax: Any) -> None:
    """The axes' legend under the panel, in as many columns as fit its width."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        width = fig.get_figwidth() * 72 / (7.5 * 0.6)  # characters of 7.5 pt text across the figure
        ncols = max(1, min(len(labels), int(width // (max(len(t) for t in labels) + 6))))
        fig.legend(handles, labels, loc="outside lower center", ncols=ncols, fontsize=7.5)


def _strength_panel(kind: str, points: Mapping[str, list[tuple[float, float]]], clean: Mapping[str, float],
                    colours: Mapping[str, str], detectors: Sequence[str], title: str) -> str:
    identity = IDENTITY.get(kind)
    with _style():
        fig = _figure(PANEL[0], PANEL[1] + 0.1 * math.ceil(len(detectors) / 4))
        ax = fig.subplots()
        ticks: set[float] = set()
        for detector in detectors:
            chosen = sorted(points.get(detector, []))
            if not chosen:
                continue
            base = clean.get(detector, math.nan)
            has_clean = identity is not None and not math.isnan(base)
            with_clean = sorted(chosen + [(identity, base)]) if has_clean else chosen
            xs, ys = zip(*with_clean)
            ticks.update(xs)
            colour = colours.get(detector)
            ax.plot(xs, ys, lw=1.3, color=colour, label=detector)
            ax.plot(*zip(*chosen), ls="none", marker="o", ms=4, color=colour)
            if has_clean:
                ax.plot([identity], [base], ls="none", marker="o", ms=5, mfc="white", color=colour, zorder=3)
        ax.axhline(0.5, color="#999999", lw=0.8, ls=":")
        ordered = sorted(ticks)
        ax.set_xticks(ordered, labels=_tick_labels(ordered, identity))
        if kind == "jpeg" or (kind == "resize" and all(v <= 1 for v in ordered)):
            ax.invert_xaxis()  # stronger perturbation to the right
        ax.set(ylim=(0, 1.02), xlabel=AXIS_LABELS.get(kind, kind), ylabel="AUC", title=f"{kind}: {title}")
        _panel_legend(fig, ax)
        return svg_uri(fig)


def _tick_labels(ticks: Sequence[float], identity: float | None) -> list[str]:
    """``clean`` at the identity value; a label too close to the one before it drops a line."""
    span = (max(ticks) - min(ticks)) or 1.0
    labels: list[str] = []
    for i, tick in enumerate(ticks):
        text = "clean" if tick == identity else f"{tick:g}"
        if i and tick - ticks[i - 1] < 0.08 * span and not labels[-1].startswith("\n"):
            text = "\n" + text
        labels.append(text)
    return labels


def _chain_panel(chains: Sequence[str], aucs: Mapping[str, Mapping[str, float]], clean: Mapping[str, float],
                 colours: Mapping[str, str], detectors: Sequence[str], title: str) -> str:
    with _style():
        fig = _figure(max(PANEL[0], 1.2 + 0.9 * len(chains)), PANEL[1] + 0.1 * math.ceil(len(detectors) / 4))
        ax = fig.subplots()
        width = 0.8 / max(len(detectors), 1)
        for i, detector in enumerate(detectors):
            xs = np.arange(len(chains)) + (i - (len(detectors) - 1) / 2) * width
            ys = [aucs[detector].get(name, math.nan) for name in chains]
            ax.bar(xs, ys, width=width * 0.9, color=colours.get(detector), label=detector)
            base = clean.get(detector, math.nan)
            if not math.isnan(base):
                ax.hlines([base] * len(xs), xs - width / 2, xs + width / 2, colors="black", linestyles="--", lw=1)
        ax.axhline(0.5, color="#999999", lw=0.8, ls=":")
        ax.set_xticks(range(len(chains)), labels=list(chains), rotation=20 if len(chains) > 1 else 0,
                      ha="right" if len(chains) > 1 else "center")
        ax.grid(False, axis="x")
        ax.set(ylim=(0, 1.02), ylabel="AUC", title=f"chains: {title} (dashed: clean)")
        _panel_legend(fig, ax)
        return svg_uri(fig)


# --------------------------------------------------------------------------- throughput


def _device(row: Mapping[str, Any]) -> str:
    return str(row.get("device") or "?")


def throughput_bars(rows: Sequence[Mapping[str, Any]]) -> str | None:
    """Bars of images/s per generator and detector, a bar per device; None without such rows."""
    bars = sorted((r for r in rows if r["kind"] in ("generator", "detector") and _positive(r.get("images_per_s"))),
                  key=lambda r: (r["kind"] != "generator", -float(r["images_per_s"])))
    if not bars:
        return None
    devices = sorted({_device(r) for r in bars}, key=lambda d: (d != "cpu", d))
    shades = dict(zip(devices, ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3"]))
    with _style():
        fig = _figure(PANEL[0] + 0.6, max(2.2, 0.9 + 0.22 * len(bars)))
        ax = fig.subplots()
        ys = np.arange(len(bars))
        ax.barh(ys, [float(r["images_per_s"]) for r in bars], color=[shades.get(_device(r), "#777777") for r in bars])
        ax.set_yticks(ys, labels=[f"{r['name']}" + (f" [{_device(r)}]" if len(devices) > 1 else "") for r in bars])
        ax.invert_yaxis()
        ax.set_xscale("log")
        _plain_numbers(ax.xaxis, minor=False)
        ax.grid(False, axis="y")
        split = sum(r["kind"] == "generator" for r in bars)
        if 0 < split < len(bars):
            ax.axhline(split - 0.5, color="#999999", lw=0.8)
        ax.set(xlabel="images/s (log scale)", title="generators (top), detectors")
        return svg_uri(fig)


def throughput_sweep(rows: Sequence[Mapping[str, Any]], colours: Mapping[str, str] | None = None) -> str | None:
    """Images/s against batch size, a line per swept detector and device; None without sweep rows."""
    from matplotlib.ticker import NullLocator

    sweep = [r for r in rows if r["kind"] == "sweep" and _positive(r.get("images_per_s"))]
    if not sweep:
        return None
    by_name: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for r in sweep:
        by_name.setdefault((r["name"], _device(r)), []).append((int(r["batch_size"]), float(r["images_per_s"])))
    with _style():
        fig = _figure(PANEL[0], PANEL[1] + 0.15 * len(by_name))
        ax = fig.subplots()
        several = len({device for _, device in by_name}) > 1
        for (name, device), points in sorted(by_name.items()):
            xs, ys = zip(*sorted(points))
            colour = (colours or {}).get(name.split(" @ ")[0])
            ax.plot(xs, ys, marker="o", ms=4, lw=1.3, color=colour, ls="-" if device == "cpu" else "--",
                    label=f"{name} [{device}]" if several else name)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        _plain_numbers(ax.yaxis)
        sizes = sorted({int(r["batch_size"]) for r in sweep})
        ax.set_xticks(sizes, labels=[str(b) for b in sizes])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set(xlabel="batch size", ylabel="images/s (log scale)", title="batch-size sweep")
        _panel_legend(fig, ax)
        return svg_uri(fig)


def _plain_numbers(axis: Any, minor: bool = True) -> None:
    """Log-axis labels as plain numbers (2,000) rather than powers of ten; minor ticks at 2 and 5 labelled."""
    from matplotlib.ticker import FuncFormatter

    plain = FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}")
    axis.set_major_formatter(plain)
    axis.set_minor_formatter(FuncFormatter(lambda v, _: plain(v) if minor and f"{v:.0e}"[0] in "25" else ""))


def _positive(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and float(value) > 0
