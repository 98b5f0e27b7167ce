"""Contact sheets: one row per pair (real first, then its fakes), labelled with artifacts, masks outlined."""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from facebench.harness.corpus import Corpus

LABEL_HEIGHT = 16
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
    sheet.paste(Image.fromarray(inset), (tile - inset_side, tile - inset_side))
    return np.asarray(sheet)


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
    chosen = [sorted(groups[p], key=lambda r: (r["label"], r["id"])) for p in sorted(groups)[:pairs]]
    columns = max((len(g) for g in chosen), default=1)
    sheet = Image.new("RGB", (columns * tile, max(len(chosen), 1) * (tile + LABEL_HEIGHT)), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for r, group in enumerate(chosen):
        for c, row in enumerate(group):
            # region masks (face, hair, background) are ground truth, not artifacts: not drawn
            masks = [corpus.load_mask(row, name) for name in json.loads(row["masks"]) if name in row["artifact_names"]]
            image = _tile(corpus.load_images([row])[0], masks, tile)
            x, y = c * tile, r * (tile + LABEL_HEIGHT)
            sheet.paste(Image.fromarray(image), (x, y))
            label = "real" if row["label"] == 0 else ("+".join(row["artifact_names"]) or "fake (no artifact)")
            draw.text((x + 3, y + tile + 2), label, fill=(230, 230, 230), font=font)
    return sheet
