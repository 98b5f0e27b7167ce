"""Stage 4 of the face renderer: the painters, the layers of a portrait from back to front.

The background and the face's features have their own modules; here are the hair, the body and
the head, and the order in which every layer is painted.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .background import paint_background
from .canvas import LABEL_FACE, LABEL_HAIR, LABEL_OTHER, Canvas, rgb, sd_circle, sd_ellipse
from .features import paint_earrings, paint_features, shadow_color
from .layout import Layout
from .params import HAIR_STYLES, NECKLINES, FaceParams, option_name


def _hair_style(p: FaceParams) -> str:
    return option_name(HAIR_STYLES, p.hair_style)


def _dome_light(u, v, lay: Layout, a: float, b: float, cy: float) -> np.ndarray:
    """Lambert-like term (wrapped) for a dome with semi-axes a, b centred at (0, cy)."""
    nx, ny = u * (1.0 / a), (v - cy) * (1.0 / b)
    nz = np.sqrt(np.clip(1.0 - nx * nx - ny * ny, 0.0, 1.0))
    lx, ly, lz = lay.light
    return np.clip((nx * lx + ny * ly + nz * lz + 0.3) * (1.0 / 1.3), 0.0, 1.0)


def _hair_texture(cv: Canvas, p: FaceParams, lay: Layout, u, v) -> np.ndarray:
    """Hair colour field: dome lighting, fanned strand lines (or curls) and a glossy sheen."""
    base = rgb(p.hair_color)
    lam = _dome_light(u, v, lay, lay.hw + 0.05, lay.hh + 0.05, lay.cy)
    shade = 0.55 + 0.55 * lam
    style = _hair_style(p)
    if style == "buzz":
        f = 600.0
        stubble = np.sin(u * f + np.sin(v * 170.0)) * np.sin(v * (f * 1.1) + np.sin(u * 150.0))
        fade = min(max(cv.inv_px / f * 1.5 - 0.5, 0.0), 1.0)
        shade = shade * (0.9 + (0.1 * fade) * stubble)
        lines = 0.0
    elif style == "curly":
        f = 190.0  # three plane waves at 60 degrees give a field of round curls
        wu, wv = u + 0.008 * np.sin(v * 55.0 + p.hair_phase), v + 0.008 * np.sin(u * 47.0 - p.hair_phase)
        curls = sum(np.sin((wu * math.cos(k) + wv * math.sin(k)) * f + p.hair_phase * (j + 1))
                    for j, k in enumerate((0.3, 0.3 + 2.094, 0.3 + 4.189)))
        fade = min(max(cv.inv_px / f * 0.6 - 0.3, 0.0), 1.0)
        rings = np.cos(curls * 2.2)  # contour rings of the wave sum read as coils
        shade = shade * (0.84 + (0.08 * fade) * (rings + 0.6 * np.clip(curls, -1.5, 1.5)))
        lines = 0.0
    else:
        pivot = lay.cy - lay.hh - 0.3
        dv = v - pivot
        fan = (u - lay.part_u) / dv
        f = p.hair_strands
        wob = (0.25 + 0.6 * p.hair_wave) * np.sin(v * 23.0 + p.hair_phase)
        fade = np.clip(dv * (cv.inv_px / f) * 0.5 - 0.5, 0.0, 1.0)
        t1 = np.cos((fan * f + wob) * (2 * math.pi))
        t2 = np.cos((fan * (f * 1.63) + wob * 1.63 + p.hair_phase) * (2 * math.pi))
        vary = 0.5 + 0.5 * np.sin(fan * (f * 0.53) + dv * 40.0 + p.hair_phase)  # broken strands
        lines = (np.clip(t1 * 4.0 - 3.0, 0.0, 1.0) * (0.35 * vary)
                 + np.clip(t2 * 4.0 - 3.0, 0.0, 1.0) * 0.15) * fade
        clumps = np.sin((fan * (f * 0.29) + wob * 0.5) * (2 * math.pi) + p.hair_phase)
        shade = shade * (1.0 - lines) * (0.92 + 0.08 * clumps)
    lam2 = lam * lam
    sheen = (lam2 * lam2) ** 2 * (0.35 * (1.0 - lines))
    return base * shade + (sheen * 0.6) * (1.0 - base * 0.5)


def _hair_back_shape(p: FaceParams, lay: Layout):
    """(extent, sdf) of the hair mass behind the head, or None for styles without one."""
    style = _hair_style(p)
    hw, hh, cy, vol = lay.hw, lay.hh, lay.cy, p.hair_volume
    if style == "long":
        def sdf(u, v):
            w, _, outside, end = _long_hair(u, v, p, lay)
            dome = sd_ellipse(w, v - (cy - vol * 0.2), hw + vol, hh + vol)
            body = np.maximum(np.maximum(outside, v - end), cy - v)
            return np.minimum(dome, body)

        half = hw + vol + _LONG_HAIR_SPREAD + 0.02
        return (-half, half, cy - hh - vol * 1.3, lay.hair_end + 0.02), sdf
    if style == "bun":
        r = hw * 0.42
        bx, by = lay.part_u * 0.3, cy - hh - vol - r * 0.45

        def sdf(u, v):
            return sd_circle(u - bx, v - by, r)

        return (bx - r, bx + r, by - r, by + r), sdf
    if style == "curly":
        return _curly_extent(p, lay), lambda u, v: _curly_sdf(u, v, p, lay)
    return None


#: How far long hair widens beyond the head towards its ends (face units).
_LONG_HAIR_SPREAD = 0.07


def _long_hair(u, v, p: FaceParams, lay: Layout):
    """Long hair's wavy strands, shared by its mass behind the head and the curtains in front.

    Returns ``|u|`` along the waves, ``t`` (0 at the head centre .. 1 at the hair's end), the signed
    distance past the hair's outer side and the ``v`` of its ragged end.
    """
    w = np.abs(u + (p.hair_wave * 0.012) * np.sin(v * 38.0 + p.hair_phase))
    t = np.clip((v - lay.cy) * (1.0 / (lay.hair_end - lay.cy)), 0.0, 1.0)
    outside = w - (lay.hw + p.hair_volume * 0.8 + _LONG_HAIR_SPREAD * t)
    end = lay.hair_end + 0.012 * np.sin(u * 70.0 + p.hair_phase)
    return w, t, outside, end


def _curly_ellipse(p: FaceParams, lay: Layout) -> tuple[float, float, float]:
    """(centre v, half width, half height) of curly hair's mass, before its bumps."""
    return lay.cy - lay.hh * 0.12, lay.hw + p.hair_volume, lay.hh + p.hair_volume * 0.9


def _curly_extent(p: FaceParams, lay: Layout):
    cy, a, b = _curly_ellipse(p, lay)
    a, b = a + 0.015, b + 0.015
    return (-a, a, cy - b, cy + b)


def _curly_sdf(u, v, p: FaceParams, lay: Layout) -> np.ndarray:
    """A voluminous ellipse with a bumpy outline."""
    cy, a, b = _curly_ellipse(p, lay)
    theta = np.arctan2(v - cy, u)
    bumps = 0.5 + 0.5 * np.sin(theta * 22.0 + p.hair_phase)
    return sd_ellipse(u, v - cy, a, b) + 0.012 * bumps


def _paint_hair_back(cv: Canvas, p: FaceParams, lay: Layout) -> None:
    """Hair mass behind the head (long hair, bun, curls), slightly darker than the front."""
    shape = _hair_back_shape(p, lay)
    if shape is None:
        return
    extent, sdf = shape
    box = cv.box(*extent)
    if box is None:
        return
    u, v = cv.uv(box)
    alpha = cv.cover(sdf(u, v))
    color = _hair_texture(cv, p, lay, u, v) * 0.85  # the back mass sits in the head's shade
    cv.paint(box, alpha, color, LABEL_HAIR)


def _shoulders_sdf(u, v, lay: Layout) -> np.ndarray:
    """Everything below a shoulder line that is flat at the neck and slopes ever faster outwards."""
    x = np.maximum(np.abs(u - lay.body_x) - lay.neck_w * 0.7, 0.0)
    arm = np.maximum(x - 0.28, 0.0)
    line = lay.shirt_top + 0.18 * x + 0.25 * x * x + 6.0 * arm * arm
    return (line - v) / np.sqrt(1.0 + (0.18 + 0.5 * x + 12.0 * arm) ** 2)


def _neckline_sdf(u, v, p: FaceParams, lay: Layout) -> np.ndarray:
    """The opening of the shirt (crew or V) around the base of the neck."""
    top, x = lay.shirt_top, u - lay.body_x
    if option_name(NECKLINES, p.neckline) == "v":
        k, tip = 0.55, top + 0.12
        return np.maximum((np.abs(x) - k * (tip - v)) * (1.0 / math.sqrt(1.0 + k * k)), top - 0.06 - v)
    return sd_ellipse(x, v - top, lay.neck_w * 1.35, 0.05)


def _paint_neck(cv: Canvas, p: FaceParams, lay: Layout) -> None:
    """Neck column plus the skin inside the neckline; darker under the jaw and at its sides."""
    top = lay.cy + lay.hh * 0.3
    half_box = max(lay.neck_w * 1.6, 0.12)
    box = cv.box(lay.body_x - half_box, lay.body_x + half_box, top, lay.shirt_top + 0.2)
    if box is None:
        return
    u, v = cv.uv(box)
    x = u - lay.body_x
    half = lay.neck_w + np.minimum(0.8 * np.maximum(v - (lay.shirt_top - 0.02), 0.0), lay.neck_w * 0.25)
    column = np.maximum(np.abs(x) - half, top - v)
    chest = np.maximum(_neckline_sdf(u, v, p, lay), _shoulders_sdf(u, v, lay))
    alpha = cv.cover(np.minimum(column, chest))
    edge = np.clip(np.abs(x) * (1.0 / lay.neck_w), 0.0, 1.0)
    side = np.clip(0.85 + 0.25 * x * (lay.light2[0] / lay.neck_w), 0.6, 1.1)
    jaw = np.clip((v - lay.chin) * (1.0 / 0.07), 0.0, 1.0)
    shade = (0.62 + 0.25 * jaw) * side * (1.0 - 0.25 * edge ** 4)
    cv.paint(box, alpha, rgb(p.skin) * shade, LABEL_OTHER)


def _paint_shirt(cv: Canvas, p: FaceParams, lay: Layout) -> None:
    """Shoulders below a sloping line, minus the neckline, with a trim and soft shading."""
    box = cv.box(-0.9, 0.9, lay.shirt_top - 0.01, 0.9)
    if box is None:
        return
    u, v = cv.uv(box)
    cut = _neckline_sdf(u, v, p, lay)
    alpha = cv.cover(np.maximum(_shoulders_sdf(u, v, lay), -cut))
    lx = lay.light2[0]
    shade = 0.82 + 0.18 * np.clip(u * (lx / 0.4), -1.0, 1.0) - 0.25 * np.exp(-np.maximum(cut, 0.0) * 40.0)
    shade = shade - 0.3 * cv.soft(np.abs(cut) - 0.004, 0.004)  # trim along the neckline
    cv.paint(box, alpha, rgb(p.shirt_color) * shade, LABEL_OTHER)


def _paint_ears(cv: Canvas, p: FaceParams, lay: Layout) -> None:
    """Ears at the sides (the head covers their inner half) with a darker concha."""
    skin = rgb(p.skin)
    rx, ry = lay.ear_r
    for side, ex in zip((-1, 1), lay.ear_x):
        box = cv.box(ex - rx, ex + rx, lay.ear_y - ry, lay.ear_y + ry)
        if box is None:
            continue
        u, v = cv.uv(box)
        x, y = (u - ex) * side, v - lay.ear_y
        lit = 0.9 + 0.15 * side * lay.light2[0]
        cv.paint(box, cv.cover(sd_ellipse(x, y, rx, ry)), skin * (0.88 * lit), LABEL_OTHER)
        inner = sd_ellipse(x - rx * 0.12, y + ry * 0.05, rx * 0.55, ry * 0.62)
        cv.paint(box, 0.45 * cv.soft(inner, rx * 0.3), skin * 0.55)


def _head_sdf(u, v, p: FaceParams, lay: Layout) -> np.ndarray:
    """Egg-shaped head: an ellipse whose lower half narrows towards the chin by ``jaw``."""
    y = (v - lay.cy) * (1.0 / lay.hh)
    taper = 1.0 - (0.12 + 0.28 * p.jaw) * np.clip(y, 0.0, 1.0) ** 2
    return sd_ellipse(u / taper, v - lay.cy, lay.hw, lay.hh)


def _paint_head(cv: Canvas, p: FaceParams, lay: Layout) -> None:
    """Face skin with wrapped Lambert shading, blushed cheeks and a lighter lit side."""
    hw, hh, cy = lay.hw, lay.hh, lay.cy
    box = cv.box(-hw, hw, cy - hh, cy + hh)
    if box is None:
        return
    u, v = cv.uv(box)
    alpha = cv.cover(_head_sdf(u, v, p, lay))
    lam = _dome_light(u, v, lay, hw * 1.05, hh * 1.05, cy)
    shade = p.ambient + (1.1 - p.ambient) * lam
    skin = rgb(p.skin)
    color = skin * shade
    blush_color = skin * rgb((1.05, 0.72, 0.7))
    cheeks = np.zeros_like(u)
    for ex in lay.eye_x:
        dx, dy = (u - ex * 1.05) * (1.0 / (hw * 0.28)), (v - (lay.nose_y - hh * 0.05)) * (1.0 / (hw * 0.22))
        cheeks = cheeks + np.exp(-(dx * dx + dy * dy))
    color = color + (p.blush * cheeks) * (blush_color * shade - color)
    cv.paint(box, alpha, color, LABEL_FACE)


def _hairline(u, p: FaceParams, lay: Layout) -> np.ndarray:
    """v of the lower edge of the front hair, as a function of u (temples lower than the top)."""
    part = lay.part_u if _hair_style(p) in ("short", "long") else 0.0
    reach = lay.hw * 0.85
    w = np.where(u > part, (u - part) * (1.0 / (reach - part)), (part - u) * (1.0 / (reach + part)))
    w = np.clip(w, 0.0, 1.25)  # past the temples the sideburns keep dropping
    top = lay.cy - lay.hh * p.hairline
    side = lay.eye_y - lay.hh * p.hair_side
    line = top + (side - top) * w * w
    w = np.minimum(w, 1.0)
    if p.fringe > 0:
        drop = p.fringe * max(lay.brow_y - lay.ew * 0.5 - top, 0.0)
        scallop = 0.012 * np.abs(np.sin((u - part) * 55.0 + p.hair_phase))
        line = line + (drop - scallop * p.fringe) * (1.0 - w * w)
    return line


def _hair_front_sdf(u, v, p: FaceParams, lay: Layout) -> np.ndarray:
    """Hair on top of the head down to the hairline, plus face-framing curtains for long hair."""
    style = _hair_style(p)
    hw, hh, cy, vol = lay.hw, lay.hh, lay.cy, p.hair_volume
    if style == "curly":
        outer = _curly_sdf(u, v, p, lay)
    else:
        t = vol if style in ("short", "buzz") else vol * 0.6
        outer = sd_ellipse(u, v - (cy - t * 0.3), hw + t, hh + t * 1.3)
        outer = outer + t * np.clip((v - cy + hh * 0.2) * (1.0 / (hh * 0.5)), 0.0, 1.0)  # hug the sides
        if style == "short":  # ragged tips
            outer = outer + 0.003 * np.sin(np.arctan2(v - cy, u) * 40.0 + p.hair_phase)
    cap = np.maximum(outer, v - _hairline(u, p, lay))
    if style == "long":
        w, t, outside, end = _long_hair(u, v, p, lay)
        inner = hw * (0.84 + 0.12 * t)
        curtain = np.maximum(np.maximum(inner - w, outside), np.maximum(v - end, (lay.eye_y - hh * 0.35) - v))
        cap = np.minimum(cap, curtain)
    return cap


def _paint_hair_front(cv: Canvas, p: FaceParams, lay: Layout) -> None:
    """Soft shadow of the hair on the skin, then the hair itself."""
    style = _hair_style(p)
    half = lay.hw + p.hair_volume + 0.1
    bottom = lay.hair_end + 0.02 if style == "long" else lay.eye_y + lay.hh * 0.2
    box = cv.box(-half, half, lay.cy - lay.hh - p.hair_volume * 1.5 - 0.03, bottom)
    if box is None:
        return
    u, v = cv.uv(box)
    face_box = cv.box(-lay.hw, lay.hw, lay.cy - lay.hh, lay.chin)
    if face_box is not None:  # the hair's soft shadow falls on the skin only
        fu, fv = cv.uv(face_box)
        on_face = cv.label[face_box] == LABEL_FACE
        shadow = cv.soft(_hair_front_sdf(fu, fv - 0.012, p, lay), 0.02) * on_face
        cv.paint(face_box, 0.3 * shadow, shadow_color(p))
    d = _hair_front_sdf(u, v, p, lay)
    alpha = 0.75 * cv.soft(d, 0.006) if style == "buzz" else cv.cover(d)
    cv.paint(box, alpha, _hair_texture(cv, p, lay, u, v), LABEL_HAIR)


_LAYERS: tuple[Callable[[Canvas, FaceParams, Layout], None], ...] = (
    paint_background, _paint_hair_back, _paint_neck, _paint_shirt, _paint_ears, _paint_head,
    paint_features, _paint_hair_front, paint_earrings,
)


def paint_portrait(cv: Canvas, p: FaceParams, lay: Layout) -> None:
    """Paint every layer of the portrait ``p`` onto ``cv``, back to front."""
    for layer in _LAYERS:
        layer(cv, p, lay)
