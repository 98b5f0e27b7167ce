"""The known-answer matrix: every detector on every single-artifact parametric corpus.

Each cue detector must reach a high AUC on the artifact it targets and stay near chance on
the others, unless physics says otherwise; those exceptions are written down below with
the reason. ``facebench matrix`` runs it, prints the table and writes a heatmap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from PIL import Image, ImageDraw, ImageFont

from facebench.harness.suite import DetectorSpec, GeneratorSpec, SplitSpec, Suite

#: What each cue detector claims to respond to.
TARGETS: dict[str, tuple[str, ...]] = {
    "spectrum": ("upsampling",),
    "dct": ("upsampling",),
    "hf_falloff": ("hf_smooth", "hf_excess"),
    "residual_period": ("periodic",),
    "srm": ("missing_camera_noise",),
    "eye_position": ("eyes_fixed",),
    "pupil": ("irregular_pupils",),
    "corneal": ("highlight_mismatch",),
    "iris_colour": ("iris_mismatch",),
    "bg_blur": ("background_blur",),
    "earring": ("earring_single",),
}

#: The artifacts that change the whole photograph's high frequencies after the camera.
_SPECTRAL = ("upsampling", "hf_smooth", "hf_excess", "periodic", "size", "format")

#: (detector, artifact) pairs where a high AUC off target is physics, not a fault.
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
#: below it the target cell is shown but not judged (at 256 px pupils span 1.5..3 px).
MIN_RESOLUTION: dict[str, int] = {"pupil": 512}

PASS_AUC = 0.9
CHANCE_AUC = 0.65


@dataclass(frozen=True)
class Matrix:
    """AUC per (detector, artifact); NaN where a cell has no value."""

    detectors: tuple[str, ...]
    artifacts: tuple[str, ...]
    auc: dict[tuple[str, str], float]
    resolution: int | None = None  # image side the corpora were rendered at, when known

    def value(self, detector: str, artifact: str) -> float:
        return self.auc.get((detector, artifact), math.nan)

    def too_small_for(self, detector: str) -> bool:
        """True when the images are smaller than ``detector``'s cue needs (its target is then not judged)."""
        return self.resolution is not None and self.resolution < MIN_RESOLUTION.get(detector, 0)


def matrix_suite(artifacts: Sequence[str], detectors: Sequence[str], count: int = 60, resolution: int = 128,
                 seed: int = 0) -> Suite:
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
    auc = {(m["detector"], m["corpus"]): float(m["value"]) for m in metrics if m["metric"] == "auc" and m["artifact"] == "all"}
    return Matrix(tuple(detectors), tuple(artifacts), auc, resolution)


def violations(matrix: Matrix) -> list[str]:
    """Cells that break the expectations: a target below PASS_AUC, or an unexplained off-target hit."""
    found = []
    for detector in matrix.detectors:
        targets = TARGETS.get(detector)
        if targets is None:
            continue  # learned or external detectors claim no single cue
        for artifact in matrix.artifacts:
            value = matrix.value(detector, artifact)
            if math.isnan(value):
                continue
            if artifact in targets and value < PASS_AUC and not matrix.too_small_for(detector):
                found.append(f"{detector} on {artifact}: AUC {value:.3f} < {PASS_AUC} on its own target")
            elif artifact not in targets and value > CHANCE_AUC and (detector, artifact) not in EXCEPTIONS:
                found.append(f"{detector} on {artifact}: AUC {value:.3f} > {CHANCE_AUC} off target, unexplained")
    return found


def markdown(matrix: Matrix) -> str:
    """The matrix as a Markdown table; targets in bold, explained off-target hits marked with *."""
    lines = ["| detector | " + " | ".join(matrix.artifacts) + " |", "|---" * (len(matrix.artifacts) + 1) + "|"]
    for detector in matrix.detectors:
        cells = []
        for artifact in matrix.artifacts:
            value = matrix.value(detector, artifact)
            text = "-" if math.isnan(value) else f"{value:.2f}"
            if artifact in TARGETS.get(detector, ()):
                text = f"**{text}**" + ("†" if matrix.too_small_for(detector) else "")
            elif (detector, artifact) in EXCEPTIONS and value > CHANCE_AUC:
                text += "*"
            cells.append(text)
        lines.append(f"| {detector} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Bold: the detector's own target. *: off-target response explained by physics (facebench.harness.matrix.EXCEPTIONS).")
    small = [d for d in matrix.detectors if matrix.too_small_for(d)]
    if small:
        lines.append(f"†: not judged at {matrix.resolution} px; " + ", ".join(
            f"{d} needs {MIN_RESOLUTION[d]} px" for d in small) + " (facebench.harness.matrix.MIN_RESOLUTION).")
    return "\n".join(lines) + "\n"


def heatmap(matrix: Matrix, cell: int = 44) -> Image.Image:
    """The matrix as an image: AUC 0.5 white, 1.0 dark red, below 0.5 blue; targets framed."""
    font = ImageFont.load_default()
    left, top = 8 + 7 * max(len(d) for d in matrix.detectors), 8 + 7 * max(len(a) for a in matrix.artifacts)
    image = Image.new("RGB", (left + cell * len(matrix.artifacts) + 8, top + cell * len(matrix.detectors) + 8), "white")
    draw = ImageDraw.Draw(image)
    for j, artifact in enumerate(matrix.artifacts):  # column labels, written vertically
        label = Image.new("RGB", (top - 8, 14), "white")
        ImageDraw.Draw(label).text((0, 1), artifact, fill="black", font=font)
        image.paste(label.rotate(90, expand=True), (left + j * cell + cell // 2 - 7, 4))
    for i, detector in enumerate(matrix.detectors):
        draw.text((4, top + i * cell + cell // 2 - 6), detector, fill="black", font=font)
        for j, artifact in enumerate(matrix.artifacts):
            value = matrix.value(detector, artifact)
            x, y = left + j * cell, top + i * cell
            draw.rectangle([x, y, x + cell - 1, y + cell - 1], fill=_colour(value), outline=(200, 200, 200))
            if artifact in TARGETS.get(detector, ()):
                draw.rectangle([x + 1, y + 1, x + cell - 2, y + cell - 2], outline="black", width=2)
            text = "-" if math.isnan(value) else f"{value:.2f}"
            draw.text((x + 8, y + cell // 2 - 6), text, fill="white" if value > 0.85 else "black", font=font)
    return image


def _colour(value: float) -> tuple[int, int, int]:
    if math.isnan(value):
        return (235, 235, 235)
    t = min(max((value - 0.5) / 0.5, -1.0), 1.0)
    if t >= 0:
        return (int(255 - 75 * t), int(255 - 235 * t), int(255 - 235 * t))
    return (int(255 + 175 * t), int(255 + 120 * t), 255)
