"""The known-answer matrix: every detector on every single-artifact parametric corpus.

Each cue detector must reach a high AUC on the artifact it targets and stay near chance on
the others, unless physics says otherwise; those exceptions are written down below with
the reason. ``facebench matrix`` runs it, prints the table and writes a heatmap.

Every cell is judged on its bootstrap interval of AUC (pairs resampled), never on the point
value alone (:func:`verdict`): a target is met when the whole interval lies at or above
``PASS_AUC`` and missed when it lies below; an off-target cell is near chance when the
interval lies inside ``CHANCE_BAND`` and unexpected when it lies wholly outside it, above or
below (an inverse response), unless ``EXCEPTIONS`` explains it. An interval that straddles the
level cannot be judged at this sample size: a third state, neither pass nor fail.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Iterable, Sequence

from PIL import Image, ImageDraw, ImageFont
from rich import box
from rich.table import Table

from ..contracts import registry
from ..contracts.constants import MIN_IMAGES_PER_CLASS
from .text import fmt_interval
from ..data.suite import DetectorSpec, GeneratorSpec, SplitSpec, Suite

@functools.lru_cache(maxsize=1)
def targets() -> dict[str, tuple[str, ...]]:
    """What each cue detector claims to respond to: the ``targets`` its class declares, by detector,
    in the registry's order (read without importing the detectors)."""
    return registry.targets("detector")


#: The artifacts that change the whole photograph's high frequencies after the camera.
_SPECTRAL = ("upsampling", "hf_smooth", "hf_excess", "periodic", "size", "format")

#: (detector, artifact) pairs where an AUC away from chance off target is physics, not a fault.
EXCEPTIONS: dict[tuple[str, str], str] = {
    **{("spectrum", a): "every spectral artifact changes the radial spectrum it reads" for a in _SPECTRAL},
    **{("dct", a): "every spectral artifact changes the DCT magnitudes it reads" for a in _SPECTRAL},
    **{("hf_falloff", a): "every spectral artifact changes the high end of the spectrum" for a in _SPECTRAL},
    **{("srm", a): "anything applied after the camera changes pixel-level noise statistics"
       for a in (*_SPECTRAL, "blob", "background_blur", "hair_bleed")},
    **{(d, a): "blurring part of the picture removes high frequencies this detector reads"
       for d in ("spectrum", "dct", "hf_falloff", "residual_period") for a in ("background_blur", "hair_bleed")},
    ("residual_period", "upsampling"): "upsampling by 2 leaves a period-2 residual",
    ("residual_period", "size"): "resampling leaves periodic interpolation residue",
    ("residual_period", "format"): "JPEG leaves k/8 peaks that the PNG fake lacks",
    ("dct", "eyes_fixed"): "the DCT map keeps where the face sits; aligned faces all sit alike",
    ("spectrum", "eyes_fixed"): "FFHQ framing changes the face's scale and so the spectral slope",
    ("hf_falloff", "eyes_fixed"): "FFHQ framing changes the face's scale and so the spectral slope",
    ("residual_period", "eyes_fixed"): "FFHQ framing enlarges the face, changing the texture scale of the residual",
    ("srm", "eyes_fixed"): "FFHQ framing enlarges the face, changing the texture scale of the residual",
    ("bg_blur", "hair_bleed"): "melting hair blurs the head outline the detector compares",
    ("bg_blur", "eyes_fixed"): "FFHQ framing moves the face, and with it the sharp area",
    ("bg_blur", "missing_camera_noise"): "on a flat background, blur shows only as lost sensor noise, which this artifact removes",
    **{(d, "eyes_fixed"): "FFHQ alignment gives every fake the same eye size in pixels while reals vary; "
       "the measurement noise of this eye feature depends on that size"
       for d in ("pupil", "corneal", "iris_colour")},
    **{("pupil", a): "interpolation and periodic residue are strongest at the high-contrast pupil edge, "
       "where they bend the outline the detector fits" for a in ("upsampling", "periodic", "size")},
    **{("corneal", a): "the pattern is strongest on the small, bright, high-contrast highlight and "
       "changes its thresholded shape" for a in ("periodic", "upsampling")},
    **{(d, "missing_camera_noise"): "sensor noise fills the high end of the spectrum, where the scene has little "
       "energy at high resolution; removing it (a 3x3 median denoise) lowers that end"
       for d in ("spectrum", "dct", "hf_falloff", "residual_period")},
    **{(d, "earring_single"): "an earring is a small, sharp, high-contrast object: its edges add a little "
       "high-frequency energy to the whole image" for d in ("spectrum", "dct")},
}

#: The smallest image side at which a detector's cue is measurable on the parametric faces;
#: below it the detector's row is shown but not judged. At 128 px irises span 2..4 px and the
#: eye finder's misses dominate the eye rows (their targets measure 0.75..0.87 and eye_position
#: answers 0.34 on upsampling, 0.49 at 256 px); at 256 px pupils span 1.5..3 px.
MIN_RESOLUTION: dict[str, int] = {"pupil": 512, "eye_position": 256, "corneal": 256, "iris_colour": 256}

#: ``facebench matrix``'s defaults: the smallest image side at which every eye row but pupil's
#: is judged, and enough seeds for about 40 test pairs per corpus, where every judged target's
#: interval clears PASS_AUC (at 60 seeds eye_position's and earring's did not); about five
#: minutes of CPU (docs/matrix.md).
DEFAULT_RESOLUTION = 256
DEFAULT_COUNT = 80

#: A target is met when its whole AUC interval lies at or above this level.
PASS_AUC = 0.9
#: An off-target cell is near chance when its whole AUC interval lies inside this band.
CHANCE_BAND = (0.35, 0.65)


class Verdict(str, Enum):
    """What one cell of the matrix says, judged on its AUC interval."""

    MET = "met"  # target: the interval lies at or above PASS_AUC
    MISSED = "missed"  # target: the interval lies below PASS_AUC
    NEAR_CHANCE = "near chance"  # off target: the interval lies inside CHANCE_BAND
    EXPLAINED = "explained"  # off target, away from chance, with a written reason in EXCEPTIONS
    UNEXPECTED = "unexpected"  # off target: the interval lies wholly above or below CHANCE_BAND
    UNDECIDED = "cannot judge at this size"  # the interval straddles the level, or there is none
    NOT_JUDGED = "not judged"  # no value, or images smaller than the detector's cue needs

    @property
    def fails(self) -> bool:
        """True for the verdicts ``facebench matrix --strict`` fails on."""
        return self in (Verdict.MISSED, Verdict.UNEXPECTED)


@dataclass(frozen=True)
class Matrix:
    """AUC and its bootstrap interval per (detector, artifact); NaN where a cell has no value."""

    detectors: tuple[str, ...]
    artifacts: tuple[str, ...]
    auc: dict[tuple[str, str], float]
    resolution: int | None = None  # image side the corpora were rendered at, when known
    ci: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    pairs: int | None = None  # the fewest test pairs (real, fake) of any cell, when known
    #: per cell, the smaller of its real and fake test image counts, when known
    sizes: dict[tuple[str, str], int] = field(default_factory=dict)

    def value(self, detector: str, artifact: str) -> float:
        return self.auc.get((detector, artifact), math.nan)

    def interval(self, detector: str, artifact: str) -> tuple[float, float]:
        """(low, high) of the cell's AUC interval; NaNs when it has none."""
        return self.ci.get((detector, artifact), (math.nan, math.nan))

    def too_small_for(self, detector: str) -> bool:
        """True when the images are smaller than ``detector``'s cue needs (its row is then not judged)."""
        return self.resolution is not None and self.resolution < MIN_RESOLUTION.get(detector, 0)

    def too_few_images(self, detector: str, artifact: str) -> bool:
        """True when the cell has fewer than MIN_IMAGES_PER_CLASS real or fake test images: too small to
        judge, whatever its interval says (a bootstrap over a few pairs can read [1.00, 1.00])."""
        size = self.sizes.get((detector, artifact))
        return size is not None and size < MIN_IMAGES_PER_CLASS


def matrix_suite(artifacts: Sequence[str], detectors: Sequence[str], count: int = DEFAULT_COUNT,
                 resolution: int = DEFAULT_RESOLUTION, seed: int = 0) -> Suite:
    """One parametric corpus per artifact (reals plus that artifact's fakes), every detector on each."""
    generators = tuple(
        GeneratorSpec(name="parametric", label=artifact, count=count, seed_start=seed, batch_size=20,
                      params={"resolution": resolution, "artifacts": artifact})
        for artifact in artifacts
    )
    return Suite(
        name="matrix", source="known-answer matrix", generators=generators,
        detectors=tuple(DetectorSpec(name=d, label=d) for d in detectors), split=SplitSpec(0.5, seed),
        description="every detector on every single-artifact parametric corpus",
    )


def build_matrix(metrics: Iterable[dict[str, Any]], detectors: Sequence[str], artifacts: Sequence[str],
                 resolution: int | None = None) -> Matrix:
    """The matrix from stored metric rows of a matrix run (corpus label = artifact)."""
    rows = [m for m in metrics if m["metric"] == "auc" and m["artifact"] == "all"]
    auc = {(m["detector"], m["corpus"]): float(m["value"]) for m in rows}
    ci = {(m["detector"], m["corpus"]): (float(m["ci_low"]), float(m["ci_high"]))
          for m in rows if m.get("ci_low") is not None and m.get("ci_high") is not None}
    sizes = {(m["detector"], m["corpus"]): min(int(m["n_real"]), int(m["n_fake"]))
             for m in rows if m.get("n_real") is not None and m.get("n_fake") is not None}
    fewest = min(sizes.values()) if sizes else None
    return Matrix(tuple(detectors), tuple(artifacts), auc, resolution, ci, fewest, sizes)


def verdict(matrix: Matrix, detector: str, artifact: str) -> Verdict | None:
    """The cell's verdict from its AUC interval; None for a detector that claims no cue (learned, external)."""
    claimed = targets().get(detector)
    if claimed is None:
        return None
    if math.isnan(matrix.value(detector, artifact)) or matrix.too_small_for(detector):
        return Verdict.NOT_JUDGED
    low, high = matrix.interval(detector, artifact)
    if math.isnan(low) or math.isnan(high) or matrix.too_few_images(detector, artifact):
        return Verdict.UNDECIDED
    if artifact in claimed:
        if low >= PASS_AUC:
            return Verdict.MET
        return Verdict.MISSED if high < PASS_AUC else Verdict.UNDECIDED
    if CHANCE_BAND[0] <= low and high <= CHANCE_BAND[1]:
        return Verdict.NEAR_CHANCE
    if (detector, artifact) in EXCEPTIONS:
        return Verdict.EXPLAINED
    if low > CHANCE_BAND[1] or high < CHANCE_BAND[0]:
        return Verdict.UNEXPECTED
    return Verdict.UNDECIDED


def verdicts(matrix: Matrix) -> dict[tuple[str, str], Verdict]:
    """Every judged cell's verdict, in table order (detectors that claim no cue are left out)."""
    found = {}
    for detector in matrix.detectors:
        for artifact in matrix.artifacts:
            judged = verdict(matrix, detector, artifact)
            if judged is not None:
                found[(detector, artifact)] = judged
    return found


def _auc_text(matrix: Matrix, detector: str, artifact: str) -> str:
    low, high = matrix.interval(detector, artifact)
    interval = "" if math.isnan(low) else f" {fmt_interval(low, high)}"
    if matrix.too_few_images(detector, artifact):
        interval = f" (n<{MIN_IMAGES_PER_CLASS})"
    return f"AUC {matrix.value(detector, artifact):.3f}{interval}"


def violations(matrix: Matrix) -> list[str]:
    """The cells ``--strict`` fails on: a target whose interval lies below PASS_AUC, or an off-target
    cell whose interval lies wholly outside CHANCE_BAND without a written exception."""
    found = []
    low, high = CHANCE_BAND
    for (detector, artifact), judged in verdicts(matrix).items():
        where = f"{detector} on {artifact}: {_auc_text(matrix, detector, artifact)}"
        if judged is Verdict.MISSED:
            found.append(f"{where} on its own target, below {PASS_AUC}")
        elif judged is Verdict.UNEXPECTED:
            side = "above" if matrix.interval(detector, artifact)[0] > high else "below"
            found.append(f"{where} off target, {side} the chance band [{low}, {high}], unexplained")
    return found


def undecided(matrix: Matrix) -> list[str]:
    """The cells whose interval straddles their level: they cannot be judged at this sample size."""
    return [f"{detector} on {artifact}: {_auc_text(matrix, detector, artifact)}"
            for (detector, artifact), judged in verdicts(matrix).items() if judged is Verdict.UNDECIDED]


def unjudged_rows(matrix: Matrix) -> list[str]:
    """One line per detector whose cue needs larger images than the matrix has."""
    return [f"{d} needs {MIN_RESOLUTION[d]} px" for d in matrix.detectors if matrix.too_small_for(d)]


#: The mark each verdict adds to a cell, in the Markdown table, the terminal table and the heatmap.
MARKS: dict[Verdict, str] = {Verdict.EXPLAINED: "*", Verdict.UNEXPECTED: "!", Verdict.MISSED: "!",
                             Verdict.UNDECIDED: "?", Verdict.NOT_JUDGED: "†"}


def _cell_text(matrix: Matrix, detector: str, artifact: str, with_interval: bool) -> str:
    value = matrix.value(detector, artifact)
    if math.isnan(value):
        return "-"
    low, high = matrix.interval(detector, artifact)
    text = f"{value:.2f}"
    if with_interval and matrix.too_few_images(detector, artifact):
        text += f" (n<{MIN_IMAGES_PER_CLASS})"
    elif with_interval and not math.isnan(low):
        text += f" {fmt_interval(low, high)}"
    return text


def legend(matrix: Matrix, not_judged_mark: str = MARKS[Verdict.NOT_JUDGED], target_mark: str = "bold") -> list[str]:
    """What the marks mean, and which rows are not judged at this size."""
    low, high = CHANCE_BAND
    lines = [f"Judged on the 95% bootstrap interval of AUC (pairs resampled): a target ({target_mark}) is met when its "
             f"interval lies at or above {PASS_AUC}; an off-target cell is near chance when its interval lies "
             f"inside [{low}, {high}].",
             "!: unexpected (a target whose interval lies below the level, or an off-target interval wholly "
             "outside the band, above or below). ?: cannot judge at this size (the interval straddles the level, "
             f"or the cell has fewer than {MIN_IMAGES_PER_CLASS} real or fake test images, shown as "
             f"(n<{MIN_IMAGES_PER_CLASS}); more seeds, --count, help). "
             "*: away from chance, explained by physics (facebench.harness.report.matrix.EXCEPTIONS)."]
    rows = unjudged_rows(matrix)
    if rows:
        lines.append(f"{not_judged_mark}: row not judged at {matrix.resolution} px; " + ", ".join(rows)
                     + " (facebench.harness.report.matrix.MIN_RESOLUTION).")
    return lines


def markdown(matrix: Matrix) -> str:
    """The matrix as a Markdown table of AUC [interval] with verdict marks; targets in bold."""
    lines = ["| detector | " + " | ".join(matrix.artifacts) + " |", "|---" * (len(matrix.artifacts) + 1) + "|"]
    for detector in matrix.detectors:
        cells = []
        for artifact in matrix.artifacts:
            text = _cell_text(matrix, detector, artifact, with_interval=True)
            if artifact in targets().get(detector, ()):
                text = f"**{text}**"
            judged = verdict(matrix, detector, artifact)
            if judged in MARKS and judged is not Verdict.NOT_JUDGED:
                text += " " + MARKS[judged]
            cells.append(text)
        lines.append(f"| {_row_label(matrix, detector)} | " + " | ".join(cells) + " |")
    return "\n".join([*lines, "", *legend(matrix)]) + "\n"


_STYLES: dict[Verdict, str] = {Verdict.MET: "bold green", Verdict.NEAR_CHANCE: "", Verdict.EXPLAINED: "cyan",
                               Verdict.UNEXPECTED: "bold red", Verdict.MISSED: "bold red",
                               Verdict.UNDECIDED: "yellow", Verdict.NOT_JUDGED: "dim"}


def rich_table(matrix: Matrix) -> Table:
    """The matrix for the terminal, one artifact per row and one detector per column (so it fits):
    AUC per cell, coloured and marked by verdict; targets underlined."""
    title = "Known-answer matrix: AUC (rows: artifacts, columns: detectors)"
    table = Table(title=title, box=box.SIMPLE_HEAD, padding=(0, 0, 0, 1), pad_edge=False,
                  min_width=len(title))  # a narrow matrix would otherwise break its title over lines
    table.add_column("artifact", no_wrap=True)
    for detector in matrix.detectors:
        header = detector.replace("_", "\n") + ("\n†" if matrix.too_small_for(detector) else "")
        table.add_column(header, justify="right", overflow="fold")
    for artifact in matrix.artifacts:
        cells = []
        for detector in matrix.detectors:
            judged = verdict(matrix, detector, artifact)
            text = _cell_text(matrix, detector, artifact, with_interval=False)
            if judged in MARKS and judged is not Verdict.NOT_JUDGED and text != "-":
                text += MARKS[judged]
            style = _STYLES.get(judged, "") if judged is not None else ""
            if artifact in targets().get(detector, ()):
                style = f"{style} underline".strip()
            cells.append(f"[{style}]{text}[/]" if style else text)
        table.add_row(artifact, *cells)
    return table


def summary(matrix: Matrix) -> str:
    """One line: how many cells got each verdict."""
    counts: dict[Verdict, int] = {}
    for judged in verdicts(matrix).values():
        counts[judged] = counts.get(judged, 0) + 1
    return ", ".join(f"{counts[v]} {v.value}" for v in Verdict if v in counts) or "no cue detector cells"


@dataclass(frozen=True)
class HeatmapLayout:
    """Where the parts of :func:`heatmap`'s image lie, in pixels."""

    cell: int
    left: int  # x of the grid's first column
    top: int  # y of the grid's first row
    width: int
    height: int
    bar_top: int  # y of the colour bar

    def cell_origin(self, row: int, column: int) -> tuple[int, int]:
        """Top-left pixel of the cell in ``row`` (detector) and ``column`` (artifact)."""
        return self.left + column * self.cell, self.top + row * self.cell


_TITLE_HEIGHT = 28
#: The bundled font has no dagger; the image marks rows that are not judged with this instead.
_IMAGE_NOT_JUDGED = "(not judged)"
_BAR_HEIGHT = 12
#: AUC levels labelled under the colour bar.
_BAR_TICKS = (0.0, CHANCE_BAND[0], 0.5, CHANCE_BAND[1], PASS_AUC, 1.0)


def _fonts() -> tuple[ImageFont.ImageFont, ImageFont.ImageFont, ImageFont.ImageFont]:
    """(text, small, title) fonts: Pillow's bundled font, so nothing is read from the system."""
    return ImageFont.load_default(size=10), ImageFont.load_default(size=9), ImageFont.load_default(size=14)


def heatmap_title(matrix: Matrix) -> str:
    size = [f"{matrix.pairs} test pairs per corpus" if matrix.pairs else "", f"{matrix.resolution} px" if matrix.resolution else ""]
    detail = ", ".join(part for part in size if part)
    return "Known-answer matrix: AUC per detector and artifact" + (f" ({detail})" if detail else "")


def _row_label(matrix: Matrix, detector: str, not_judged_mark: str = MARKS[Verdict.NOT_JUDGED]) -> str:
    return detector + (f" {not_judged_mark}" if matrix.too_small_for(detector) else "")


def heatmap_layout(matrix: Matrix, cell: int = 56) -> HeatmapLayout:
    """The geometry :func:`heatmap` draws with."""
    text, _, title = _fonts()
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    left = 12 + int(max(measure.textlength(_row_label(matrix, d, _IMAGE_NOT_JUDGED), font=text)
                        for d in matrix.detectors))
    top = _TITLE_HEIGHT + 12 + int(max(measure.textlength(a, font=text) for a in matrix.artifacts))
    grid_bottom = top + cell * len(matrix.detectors)
    bar_top = grid_bottom + 14
    legend_lines = _wrapped(legend(matrix, _IMAGE_NOT_JUDGED, "framed"))
    legend_width = max(measure.textlength(line, font=text) for line in legend_lines)
    width = int(max(left + cell * len(matrix.artifacts), left + 240, legend_width + 16,
                    measure.textlength(heatmap_title(matrix), font=title) + 16)) + 8
    height = bar_top + _BAR_HEIGHT + 22 + 14 * len(legend_lines) + 8
    return HeatmapLayout(cell, left, top, width, height, bar_top)


def _wrapped(lines: list[str], width: int = 110) -> list[str]:
    """The legend's lines, wrapped at ``width`` characters for the image."""
    import textwrap

    return [part for line in lines for part in textwrap.wrap(line, width)]


def heatmap(matrix: Matrix, cell: int = 56) -> Image.Image:
    """The matrix as an image: a title, AUC 0.5 white, 1.0 dark red, below 0.5 blue, targets framed in
    black, each cell's interval under its value, verdict marks, a colour bar and a legend."""
    text_font, small_font, title_font = _fonts()
    layout = heatmap_layout(matrix, cell)
    image = Image.new("RGB", (layout.width, layout.height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((8, 6), heatmap_title(matrix), fill="black", font=title_font)
    label_height = layout.top - _TITLE_HEIGHT - 4
    for j, artifact in enumerate(matrix.artifacts):  # column labels, written vertically
        label = Image.new("RGB", (label_height, 14), "white")
        ImageDraw.Draw(label).text((0, 1), artifact, fill="black", font=text_font)
        image.paste(label.rotate(90, expand=True), (layout.left + j * cell + cell // 2 - 7, _TITLE_HEIGHT))
    for i, detector in enumerate(matrix.detectors):
        draw.text((4, layout.top + i * cell + cell // 2 - 6), _row_label(matrix, detector, _IMAGE_NOT_JUDGED),
                  fill="black", font=text_font)
        for j, artifact in enumerate(matrix.artifacts):
            _draw_cell(draw, matrix, detector, artifact, layout.cell_origin(i, j), cell, (text_font, small_font))
    _draw_colour_bar(draw, layout, small_font)
    for k, line in enumerate(_wrapped(legend(matrix, _IMAGE_NOT_JUDGED, "framed"))):
        draw.text((8, layout.bar_top + _BAR_HEIGHT + 22 + 14 * k), line, fill="black", font=text_font)
    return image


def _draw_cell(draw: ImageDraw.ImageDraw, matrix: Matrix, detector: str, artifact: str, origin: tuple[int, int],
               cell: int, fonts: tuple[ImageFont.ImageFont, ImageFont.ImageFont]) -> None:
    text_font, small_font = fonts
    x, y = origin
    value = matrix.value(detector, artifact)
    judged = verdict(matrix, detector, artifact)
    fill: tuple[int, ...] = _colour(value)
    if judged is Verdict.NOT_JUDGED:  # faded towards grey: shown, not judged
        fill = tuple((c + 2 * 225) // 3 for c in fill)
    draw.rectangle([x, y, x + cell - 1, y + cell - 1], fill=fill, outline=(200, 200, 200))
    if artifact in targets().get(detector, ()):
        draw.rectangle([x + 1, y + 1, x + cell - 2, y + cell - 2], outline="black", width=2)
    if judged is not None and judged.fails:  # unexpected: an amber frame and a black "!" badge
        draw.rectangle([x + 3, y + 3, x + cell - 4, y + cell - 4], outline=(255, 190, 0), width=3)
        draw.rectangle([x + cell - 14, y + 2, x + cell - 3, y + 14], fill="black")
        draw.text((x + cell - 10, y + 2), "!", fill="white", font=text_font)
    elif judged in MARKS and judged is not Verdict.NOT_JUDGED and not math.isnan(value):
        draw.text((x + cell - 10, y + 3), MARKS[judged], fill=_ink(value), font=text_font)
    ink = "black" if judged is Verdict.NOT_JUDGED else _ink(value)
    draw.text((x + 8, y + cell // 2 - 10), _cell_text(matrix, detector, artifact, with_interval=False),
              fill=ink, font=text_font)
    low, high = matrix.interval(detector, artifact)
    if matrix.too_few_images(detector, artifact):
        draw.text((x + 4, y + cell // 2 + 4), f"n<{MIN_IMAGES_PER_CLASS}", fill=ink, font=small_font)
    elif not math.isnan(low):
        draw.text((x + 4, y + cell // 2 + 4), f"{low:.2f}-{high:.2f}", fill=ink, font=small_font)


def _draw_colour_bar(draw: ImageDraw.ImageDraw, layout: HeatmapLayout, font: ImageFont.ImageFont) -> None:
    width = max(layout.cell * 4, 240)
    x0, y0 = layout.left, layout.bar_top
    draw.text((4, y0), "AUC", fill="black", font=font)
    for k in range(width):
        draw.line([x0 + k, y0, x0 + k, y0 + _BAR_HEIGHT], fill=_colour(k / (width - 1)))
    draw.rectangle([x0, y0, x0 + width - 1, y0 + _BAR_HEIGHT], outline=(120, 120, 120))
    for tick in _BAR_TICKS:
        x = x0 + round(tick * (width - 1))
        draw.line([x, y0 + _BAR_HEIGHT, x, y0 + _BAR_HEIGHT + 3], fill="black")
        label = f"{tick:g}"
        draw.text((x - 3 * len(label), y0 + _BAR_HEIGHT + 5), label, fill="black", font=font)


def _ink(value: float) -> str:
    return "white" if not math.isnan(value) and (value > 0.85 or value < 0.15) else "black"


def _colour(value: float) -> tuple[int, int, int]:
    if math.isnan(value):
        return (235, 235, 235)
    t = min(max((value - 0.5) / 0.5, -1.0), 1.0)
    if t >= 0:
        return (int(255 - 75 * t), int(255 - 235 * t), int(255 - 235 * t))
    return (int(255 + 175 * t), int(255 + 120 * t), 255)
