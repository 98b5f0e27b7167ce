"""Contact sheets: one row per pair (real first, then its fakes), labelled with artifacts, masks outlined."""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from facebench.harness.corpus import Corpus

LABEL_HEIGHT = 16
OUTLINE = (255, 40, 40)


def _outline(mask: np.ndarray) -> np.ndarray:
    """Pixels on the border of ``mask``."""
    inner = mask.copy()
    inner[1:-1, 1:-1] = mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
    return mask & ~inner


def contact_sheet(corpus: Corpus, pairs: int = 8, tile: int = 128) -> Image.Image:
    """The first ``pairs`` pairs of ``corpus`` (by pair name) as one RGB image."""
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
            image = np.array(Image.fromarray(corpus.load_images([row])[0]).resize((tile, tile), Image.BILINEAR))
            for name in json.loads(row["masks"]):
                if name not in row["artifact_names"]:
                    continue  # region masks (face, hair, background) are ground truth, not artifacts
                mask = np.asarray(Image.fromarray(corpus.load_mask(row, name)).resize((tile, tile), Image.NEAREST))
                image[_outline(mask)] = OUTLINE
            x, y = c * tile, r * (tile + LABEL_HEIGHT)
            sheet.paste(Image.fromarray(image), (x, y))
            label = "real" if row["label"] == 0 else ("+".join(row["artifact_names"]) or "fake (no artifact)")
            draw.text((x + 3, y + tile + 2), label, fill=(230, 230, 230), font=font)
    return sheet
