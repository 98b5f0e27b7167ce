"""Contact sheets: one row per pair (real first, then its fakes), labelled with artifacts, masks outlined."""

from __future__ import annotations

import json
import re
from collections import defaultdict

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from ..data.corpus import Corpus

LABEL_HEIGHT = 16  # one line of label under each tile; more lines when a label must wrap
LABEL_LINES = 3  # most lines a label wraps onto; the last is cut with an ellipsis
OUTLINE = (255, 40, 40)


def _outline(mask: np.ndarray) -> np.ndarray:
    """Pixels on the border of ``mask``."""
    inner = mask.copy()
    inner[1:-1, 1:-1] = mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
    return mask & ~inner


#: A mask whose bounding box is smaller than this fraction of the image side is boxed and zoomed in an inset.
SMALL_MASK = 0.2
INSET = 0.5  # inset side, fraction of the tile


def _extent(mask: np.ndarray) -> int:
    """The longer side of ``mask``'s bounding box, in pixels."""
    ys, xs = np.nonzero(mask)
    return int(max(xs.max() - xs.min(), ys.max() - ys.min())) + 1


def _zoom_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """A square around ``mask``'s pixels, at least a tenth of the image side, inside the image."""
    height, width = mask.shape
    ys, xs = np.nonzero(mask)
    x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
    side = min(max(x1 - x0, y1 - y0, min(height, width) // 10) + 6, height, width)
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    left = min(max(cx - side // 2, 0), width - side)
    top = min(max(cy - side // 2, 0), height - side)
    return left, top, left + side, top + side


def _tile(image: np.ndarray, masks: list[np.ndarray], tile: int) -> np.ndarray:
    """One image as a tile: large mask pieces outlined; small ones boxed, the largest zoomed in an inset."""
    out = np.array(Image.fromarray(image).resize((tile, tile), Image.BILINEAR))
    side = image.shape[0]
    if not masks:
        return out
    pieces, count = ndimage.label(np.logical_or.reduce(masks), structure=np.ones((3, 3)))
    small = [i for i in range(1, count + 1) if _extent(pieces == i) < SMALL_MASK * side]
    large = np.isin(pieces, [i for i in range(1, count + 1) if i not in small])
    resized = np.asarray(Image.fromarray(large).resize((tile, tile), Image.NEAREST))
    out[_outline(resized)] = OUTLINE
    if not small:
        return out
    sheet = Image.fromarray(out)
    draw = ImageDraw.Draw(sheet)
    scale = tile / side
    boxes = {i: _zoom_box(pieces == i) for i in small}
    for box in boxes.values():
        draw.rectangle([int(v * scale) for v in box], outline=OUTLINE)
    largest = max(small, key=lambda i: int((pieces == i).sum()))
    x0, y0, x1, y1 = boxes[largest]
    inset_side = max(int(tile * INSET), 8)
    inset = np.array(Image.fromarray(image[y0:y1, x0:x1]).resize((inset_side, inset_side), Image.LANCZOS))
    zoomed = np.asarray(Image.fromarray(pieces[y0:y1, x0:x1] > 0).resize((inset_side, inset_side), Image.NEAREST))
    inset[_outline(zoomed)] = OUTLINE
    inset[[0, -1], :] = OUTLINE
    inset[:, [0, -1]] = OUTLINE
    scaled = [(int(a * scale), int(b * scale), int(c * scale), int(d * scale)) for a, b, c, d in boxes.values()]
    sheet.paste(Image.fromarray(inset), inset_corner(scaled, tile, inset_side))
    return np.asarray(sheet)


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> int:
    """The area two ``(left, top, right, bottom)`` boxes share."""
    return max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))


def inset_corner(boxes: list[tuple[int, int, int, int]], tile: int, side: int) -> tuple[int, int]:
    """The top-left point of an inset of ``side`` px in a corner of a ``tile`` px tile, covering as little
    of ``boxes`` (the marked spots, tile pixels) as it can: bottom-right unless that hides a spot,
    then bottom-left, top-right, top-left."""
    far = tile - side
    corners = [(far, far), (0, far), (far, 0), (0, 0)]
    return min(corners, key=lambda c: sum(_overlap((c[0], c[1], c[0] + side, c[1] + side), b) for b in boxes))


def label_lines(text: str, width: int, draw: ImageDraw.ImageDraw, font, most: int = LABEL_LINES) -> list[str]:
    """``text`` wrapped to lines no wider than ``width`` px (breaking after spaces and ``_``, before ``+``),
    at most ``most`` lines; a piece that still does not fit is cut with an ellipsis."""

    def fits(line: str) -> bool:
        return draw.textlength(line, font=font) <= width

    def cut(line: str) -> str:
        while line and not fits(line + "…"):
            line = line[:-1]
        return line + "…"

    lines: list[str] = []
    for word in re.findall(r"\+?[^ +_]+[ _]?|\+", text):
        if lines and fits((lines[-1] + word).rstrip()):
            lines[-1] += word
        else:
            lines.append(word)
    lines = [line.rstrip() for line in lines]
    if len(lines) > most:
        lines = lines[: most - 1] + [cut(" ".join(lines[most - 1 :]))]
    return [line if fits(line) else cut(line) for line in lines]


def contact_sheet(corpus: Corpus, pairs: int = 8, tile: int = 128) -> Image.Image:
    """The first ``pairs`` pairs of ``corpus`` (by pair name) as one RGB image.

    Each row is a pair, real first. Artifact masks are outlined in red; a small one (eyes,
    earrings) is boxed and shown magnified in the tile's corner.
    """
    if pairs < 1 or tile < 16:
        raise ValueError("pairs must be >= 1 and tile >= 16")
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in corpus.rows():
        groups[row["pair"]].append(row)
    # reals first, then a fake with no artifact (a StyleGAN2 image before its edits), then the edited fakes
    order = lambda r: (r["label"], bool(r["artifact_names"]), r["id"])  # noqa: E731
    chosen = [sorted(groups[p], key=order) for p in sorted(groups)[:pairs]]
    columns = max((len(g) for g in chosen), default=1)
    font = ImageFont.load_default()
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    labels = [[label_lines(_label(row), tile - 5, measure, font) for row in group] for group in chosen]
    line_height = font.getbbox("Ag")[3] + 2
    label_height = LABEL_HEIGHT + line_height * (max(len(lines) for row in labels for lines in row) - 1)
    sheet = Image.new("RGB", (columns * tile, max(len(chosen), 1) * (tile + label_height)), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for r, group in enumerate(chosen):
        for c, row in enumerate(group):
            # region masks (face, hair, background) are ground truth, not artifacts: not drawn
            masks = [corpus.load_mask(row, name) for name in json.loads(row["masks"]) if name in row["artifact_names"]]
            image = _tile(corpus.load_images([row])[0], masks, tile)
            x, y = c * tile, r * (tile + label_height)
            sheet.paste(Image.fromarray(image), (x, y))
            for n, line in enumerate(labels[r][c]):
                draw.text((x + 3, y + tile + 2 + n * line_height), line, fill=(230, 230, 230), font=font)
    return sheet


def _label(row: dict) -> str:
    if row["label"] == 0:
        return "real"
    return "+".join(row["artifact_names"]) or "fake (no artifact)"
