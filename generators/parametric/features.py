"""Stage 4 of the face renderer, the face's features: eyes, brows, nose, mouth, glasses, earrings."""

from __future__ import annotations

import math

import numpy as np

from .canvas import LABEL_FACE, LABEL_OTHER, Canvas, rgb, sd_circle, sd_ellipse, sd_round_box, sd_segment
from .layout import Layout
from .params import EARRINGS, GLASSES, FaceParams, option_name


def shadow_color(p: FaceParams) -> np.ndarray:
    """The colour of shadows on the skin of ``p``, shaped for the canvas."""
    return rgb(p.skin) * rgb((0.55, 0.45, 0.45))


def _paint_soft_ellipse(cv, cx, cy, rx, ry, softness, strength, color) -> None:
    """A blurred ellipse overlay (shadows, highlights)."""
    pad = softness
    box = cv.box(cx - rx - pad, cx + rx + pad, cy - ry - pad, cy + ry + pad)
    if box is None:
        return
    u, v = cv.uv(box)
    cv.paint(box, strength * cv.soft(sd_ellipse(u - cx, v - cy, rx, ry), softness), color)


def _paint_eye(cv: Canvas, p: FaceParams, lay: Layout, index: int) -> None:
    """Sclera, textured iris, pupil, corneal highlight, lid shadow, lid line, lashes and crease."""
    side = (-1, 1)[index]
    ex, ey, ew, eh, ri = lay.eye_x[index], lay.eye_y, lay.ew, lay.eh, lay.ri
    skin = rgb(p.skin)
    _paint_soft_ellipse(cv, ex, ey - eh * 0.6, ew * 1.25, ew * 0.75, ew * 0.6, 0.16, shadow_color(p))
    box = cv.box(ex - ew * 1.4, ex + ew * 1.4, ey - ew * 1.3, ey + ew * 0.9)
    if box is None:
        return
    u, v = cv.uv(box)
    lu, lv = (u - ex) * side, v - ey  # lu > 0 towards the outer corner
    a = math.radians(p.eye_tilt)
    tu, tv = lu * math.cos(a) - lv * math.sin(a), lu * math.sin(a) + lv * math.cos(a)
    # opening: intersection of two discs through both corners
    eh_lo = eh * 0.8
    r_up, r_lo = (ew * ew + eh * eh) / (2 * eh), (ew * ew + eh_lo * eh_lo) / (2 * eh_lo)
    d_up = np.sqrt(tu * tu + (tv - (r_up - eh)) ** 2) - r_up
    d_lo = np.sqrt(tu * tu + (tv + (r_lo - eh_lo)) ** 2) - r_lo
    opening = cv.cover(np.maximum(d_up, d_lo))
    corner = np.clip(np.abs(tu) * (1.0 / ew), 0.0, 1.0)
    sclera_shade = (0.9 + 0.1 * np.clip((tv + eh) * (0.5 / eh), 0.0, 1.0)) * (1.0 - 0.18 * corner ** 3)
    cv.paint(box, opening, rgb(p.sclera) * sclera_shade)
    # iris and pupil
    ix, iy = lay.iris[index]
    dx, dy = u - ix, v - iy
    r = np.sqrt(dx * dx + dy * dy)
    rn = r * (1.0 / ri)
    phi = np.arctan2(dy, dx * side)
    streaks = 1.0 + 0.16 * np.sin(phi * 17.0 + p.hair_phase) * np.sin(phi * 7.0 + 1.3)
    limbal = 1.0 - 0.55 * np.clip((rn - 0.72) * (1.0 / 0.28), 0.0, 1.0) ** 2
    collarette = 1.0 + 0.25 * np.exp(-((rn - 0.55) * (1.0 / 0.15)) ** 2)
    lid_shade = 1.0 - 0.3 * np.clip(-dy * (1.0 / ri), 0.0, 1.0)
    iris = rgb((p.iris_left, p.iris_right)[index])
    iris_color = np.clip(iris * (streaks * limbal * collarette * lid_shade), 0.0, 1.0)
    cv.paint(box, cv.cover(r - ri) * opening, iris_color)
    pupil = (p.pupil_left, p.pupil_right)[index] * ri
    aspect = max((p.pupil_aspect_left, p.pupil_aspect_right)[index], 0.05)
    pw, ph = pupil / math.sqrt(aspect), pupil * math.sqrt(aspect)
    wobble = (p.pupil_wobble_left, p.pupil_wobble_right)[index]
    d_pupil = _sd_pupil_wobble(dx, dy, pw, ph, wobble) if wobble else sd_ellipse(dx, dy, pw, ph)
    cv.paint(box, cv.cover(d_pupil) * opening, rgb((0.03, 0.025, 0.025)))
    # corneal highlight, offset towards the light (same offset in both eyes)
    shift = (p.highlight_shift_left, p.highlight_shift_right)[index]
    hx = ix + (lay.light2[0] * 0.5 + shift[0]) * ri
    hy = iy + (lay.light2[1] * 0.5 + shift[1]) * ri
    glint = cv.cover(sd_circle(u - hx, v - hy, p.highlight_size * ri)) * opening
    cv.paint(box, 0.92 * glint, rgb((1.0, 1.0, 1.0)))
    # shadow of the upper lid on the eyeball
    lid_shadow = np.clip(1.0 + d_up * (1.0 / (0.45 * eh)), 0.0, 1.0)
    cv.paint(box, 0.3 * opening * lid_shadow, rgb((0.2, 0.15, 0.15)))
    _paint_lids(cv, p, lay, box, tu, tv, d_up, d_lo, skin)


def _sd_pupil_wobble(dx, dy, pw: float, ph: float, wobble) -> np.ndarray:
    """Approximate signed distance to the star-shaped curve r(t) = r0(t) (1 + sum c_k cos(k t + phi_k)).

    ``r0`` is the radius of the ellipse with semi-axes ``pw``, ``ph`` at angle ``t``; dividing
    ``r - r(t)`` by the gradient norm of that implicit function keeps the edge anti-aliased.
    """
    r = np.sqrt(dx * dx + dy * dy)
    t = np.arctan2(dy, dx)
    ct, st = np.cos(t), np.sin(t)
    q = 1.0 / np.sqrt((ph * ct) ** 2 + (pw * st) ** 2)
    r0 = (pw * ph) * q
    dr0 = r0 * (q * q) * ((ph * ph - pw * pw) * ct * st)  # d r0 / dt
    w, dw = np.ones_like(r), np.zeros_like(r)
    for k, (c, phase) in enumerate(wobble, start=2):
        w = w + c * np.cos(k * t + phase)
        dw = dw - (k * c) * np.sin(k * t + phase)
    w = np.maximum(w, 0.05)
    big_r = r0 * w
    slope = (dr0 * w + r0 * dw) / big_r
    return (r - big_r) / np.sqrt(1.0 + slope * slope)


def _paint_lids(cv, p: FaceParams, lay: Layout, box, tu, tv, d_up, d_lo, skin) -> None:
    """Upper lid line thickening outwards, lashes, crease and a faint lower lid."""
    ew, eh = lay.ew, lay.eh
    out = np.clip(tu * (1.0 / ew), 0.0, 1.0)
    t = p.lid_thickness * ew * (0.7 + 0.7 * out)
    span = np.maximum(np.maximum(-tu - ew * 0.95, tu - ew * 1.12), tv - eh * 0.2)  # upper arc only
    lid = np.maximum(np.abs(d_up - t * 0.35) - t * 0.5, span)
    lid_color = rgb(p.brow_color) * 0.4
    cv.paint(box, 0.95 * cv.cover(lid), lid_color)
    lash_len = ew * 0.28
    comb = np.cos((tu * (1.0 / ew) * 7.0 - d_up * (1.0 / ew) * 2.5) * (2 * math.pi))
    band = np.clip(1.0 - np.abs(d_up - t - lash_len * 0.5) * (2.0 / lash_len), 0.0, 1.0)
    fade = min(max(ew * cv.inv_px / 8.0 - 0.5, 0.0), 1.0)
    reach = np.clip(tu * (1.0 / ew) + 0.3, 0.0, 1.0) * (span < 0) * np.clip(-tv * (3.0 / eh), 0.0, 1.0)
    cv.paint(box, (p.lashes * 0.8 * fade) * np.clip(comb * 3.0 - 1.5, 0.0, 1.0) * band * reach, lid_color)
    crease = np.maximum(np.maximum(np.abs(d_up - eh * 0.75) - ew * 0.025, np.abs(tu) - ew * 0.85), tv)
    cv.paint(box, 0.3 * cv.soft(crease, ew * 0.06), skin * 0.6)
    lower = np.maximum(np.maximum(np.abs(d_lo - ew * 0.03) - ew * 0.02, np.abs(tu) - ew * 0.9), -tv)
    cv.paint(box, 0.22 * cv.soft(lower, ew * 0.04), skin * 0.55)


def _paint_brows(cv: Canvas, p: FaceParams, lay: Layout) -> None:
    """Arched, tapering brows with a faint hair stroke texture."""
    ew = lay.ew
    length = ew * 2.3
    color = rgb(p.brow_color)
    for index, side in enumerate((-1, 1)):
        inner = lay.eye_x[index] - side * ew * 1.0
        u0, u1 = sorted((inner, inner + side * length))
        box = cv.box(u0 - ew * 0.3, u1 + ew * 0.3, lay.brow_y - ew * 0.8, lay.brow_y + ew * 0.6)
        if box is None:
            continue
        u, v = cv.uv(box)
        a = (u - inner) * side
        t = np.clip(a * (1.0 / length), 0.0, 1.0)
        center = lay.brow_y - ew * (p.brow_arch * np.sin(math.pi * t ** 0.8) + p.brow_tilt * t)
        thick = p.brow_thickness * ew * (1.15 - 0.75 * t)
        d = np.maximum(np.abs(v - center) - thick * 0.5, np.abs(a - length * 0.5) - length * 0.5)
        strokes = 0.8 + 0.2 * np.sin(a * (90.0 / ew * 0.1) + (v - center) * (40.0 / ew * 0.1))
        alpha = cv.cover(d) * strokes * np.clip(t * 6.0, 0.35, 1.0) * 0.9
        cv.paint(box, alpha, color)


def _paint_nose(cv: Canvas, p: FaceParams, lay: Layout) -> None:
    """Side shadow away from the light, nostrils, alae and a tip highlight."""
    nw, nx, ny, ey = lay.nw, lay.nose_x, lay.nose_y, lay.eye_y
    dark = shadow_color(p)
    lx = lay.light2[0]
    mid_x, length = (nx + lay.bridge_x) * 0.5, ny - ey
    for side in (-1, 1):
        weight = min(max(0.3 - 0.9 * side * lx, 0.0), 1.0)
        _paint_soft_ellipse(cv, mid_x + side * nw * 0.62, ey + length * 0.55, nw * 0.18, length * 0.42,
                            nw * 0.45, p.nose_shadow * weight, dark)
    _paint_soft_ellipse(cv, nx - lx * nw * 0.2, ny + nw * 0.22, nw * 0.75, nw * 0.22, nw * 0.35,
                        p.nose_shadow * 0.7, dark)
    box = cv.box(nx - nw * 1.3, nx + nw * 1.3, ny - nw * 1.1, ny + nw * 0.5)
    if box is None:
        return
    u, v = cv.uv(box)
    for side in (-1, 1):
        cx, cy = nx + side * nw * 0.62, ny - nw * 0.3
        ring = np.abs(sd_circle(u - cx, v - cy, nw * 0.4)) - nw * 0.04
        lower = np.clip((v - cy) * (3.0 / nw) + 0.4, 0.0, 1.0)
        outer = np.clip((u - cx) * side * (4.0 / nw) + 0.8, 0.0, 1.0)
        cv.paint(box, 0.45 * cv.soft(ring, nw * 0.1) * lower * outer, dark)
        nostril = sd_ellipse(u - (nx + side * nw * 0.36), v - (ny - nw * 0.03), nw * 0.2, nw * 0.1)
        cv.paint(box, 0.75 * cv.soft(nostril, nw * 0.08), rgb(p.skin) * 0.3)
    tip = np.minimum(rgb(p.skin) * 1.18 + 0.04, 1.0)
    _paint_soft_ellipse(cv, nx + lay.light2[0] * nw * 0.25, ny - nw * 0.5 + lay.light2[1] * nw * 0.15,
                        nw * 0.28, nw * 0.25, nw * 0.3, 0.35, tip)
    _paint_soft_ellipse(cv, lay.bridge_x + lx * nw * 0.25, ey + length * 0.45, nw * 0.09, length * 0.35,
                        nw * 0.15, 0.18, tip)


def _paint_mouth(cv: Canvas, p: FaceParams, lay: Layout) -> None:
    """Two-toned lips with a cupid's bow, a dark parting line and a lower-lip highlight."""
    mx, my, mw = lay.mouth_x, lay.mouth_y, lay.mw
    hu, hl = p.upper_lip * mw, p.lower_lip * mw
    _paint_soft_ellipse(cv, mx, my + hl + mw * 0.3, mw * 0.45, mw * 0.12, mw * 0.25, 0.18, shadow_color(p))
    box = cv.box(mx - mw * 1.1, mx + mw * 1.1, my - hu - mw * 0.3, my + hl + mw * 0.2)
    if box is None:
        return
    u, v = cv.uv(box)
    x = u - mx
    xn = np.clip(x * (1.0 / mw), -1.0, 1.0)
    span = 1.0 - xn * xn
    line = my - lay.smile_lift * xn * xn
    dip = np.exp(-(x * (1.0 / (0.12 * mw))) ** 2)  # cupid's bow: a dip between two peaks
    peaks = np.exp(-((np.abs(x) - 0.25 * mw) * (1.0 / (0.15 * mw))) ** 2)
    bow = 1.0 - 0.35 * dip + 0.12 * peaks
    top = line - hu * span ** 0.7 * bow
    bottom = line + hl * span ** 0.55
    ends = np.abs(x) - mw
    lips = rgb(p.lip_color)
    cv.paint(box, cv.cover(np.maximum(np.maximum(top - v, v - line), ends)), lips * 0.8)
    lower = np.maximum(np.maximum(line - v, v - bottom), ends)
    sheen = np.exp(-((x + lay.light2[0] * mw * 0.25) * (1.0 / (0.35 * mw))) ** 2
                   - ((v - (line + hl * 0.45)) * (1.0 / (0.25 * hl))) ** 2)
    cv.paint(box, cv.cover(lower), lips * (1.0 + 0.25 * sheen))
    parting = np.maximum(np.abs(v - line) - mw * 0.022 * (0.5 + span), np.abs(x) - mw * 1.04)
    cv.paint(box, 0.85 * cv.cover(parting), lips * 0.35)


def paint_earrings(cv: Canvas, p: FaceParams, lay: Layout) -> None:
    """Studs or hoops hanging from the ear lobes (labelled as other)."""
    metal = rgb(p.earring_color)
    rx, ry = lay.ear_r
    sizes = (p.earring_size_left, p.earring_size_right)
    for index, kind_index in enumerate((p.earring_left, p.earring_right)):
        kind = option_name(EARRINGS, kind_index)
        if kind == "none" or sizes[index] <= 0.0:
            continue
        side = (-1, 1)[index]
        ex, ey = lay.ear_x[index] + side * rx * 0.15, lay.ear_y + ry * 0.8
        size = (0.009 if kind == "stud" else 0.02) * sizes[index]
        cy = ey if kind == "stud" else ey + size * 0.9
        box = cv.box(ex - size * 1.3, ex + size * 1.3, cy - size * 1.3, cy + size * 1.3)
        if box is None:
            continue
        u, v = cv.uv(box)
        d = sd_circle(u - ex, v - cy, size)
        if kind == "hoop":
            d = np.abs(d) - 0.0025 * sizes[index]
        towards_light = ((u - ex) * lay.light2[0] + (v - cy) * lay.light2[1]) * (1.0 / size)
        lit = 0.75 + 0.5 * np.clip(towards_light, -1.0, 1.0)
        cv.paint(box, cv.cover(d), metal * lit, LABEL_OTHER)


def _paint_glasses(cv: Canvas, p: FaceParams, lay: Layout) -> None:
    """Thin frames around both eyes, a bridge over the nose, temples towards the ears, tinted lenses.

    The lenses only tint and reflect faintly, so the iris, pupil and corneal highlight stay visible.
    Frame pixels are labelled as face.
    """
    kind = option_name(GLASSES, p.glasses)
    if kind == "none":
        return
    ew = lay.ew
    lw = 1.45 * ew * p.glasses_size  # lens half width
    lh = lw * (0.88 if kind == "round" else 0.7)
    gy = lay.eye_y - 0.12 * ew
    t = max(p.glasses_frame, 0.02) * ew  # frame thickness
    gx = lay.glass_x
    rx, ry = lay.ear_r
    hinge_v, ear_v = gy - lh * 0.45, lay.ear_y - ry * 0.5
    u0 = min(lay.ear_x[0] + rx * 0.2, gx[0] - lw) - 2 * t
    u1 = max(lay.ear_x[1] - rx * 0.2, gx[1] + lw) + 2 * t
    box = cv.box(u0, u1, min(gy - lh, ear_v) - 3 * t - 0.01, gy + lh + 3 * t + 0.01)
    if box is None:
        return
    u, v = cv.uv(box)
    lx, ly = lay.light2

    def lens_sdf(su, sv):
        d = []
        for cx in gx:
            x, y = su - cx, sv - gy
            if kind == "round":
                d.append(sd_ellipse(x, y, lw, lh))
            else:
                d.append(sd_round_box(x, y, lw, lh, lh * 0.45))
        return d

    def frame_sdf(su, sv, lenses):
        thick = t * (1.0 + 0.6 * np.clip((gy - sv) * (1.0 / lh), 0.0, 1.0)) if kind == "rect" else t
        d = np.minimum(np.abs(lenses[0]) - thick * 0.5, np.abs(lenses[1]) - thick * 0.5)
        inner0, inner1 = gx[0] + lw * 0.97, gx[1] - lw * 0.97
        mid, half = (inner0 + inner1) * 0.5, (inner1 - inner0) * 0.5
        xn = np.clip((su - mid) * (1.0 / max(half, 1e-6)), -1.0, 1.0)
        arc = (gy - lh * 0.3) - (lh * 0.12) * (1.0 - xn * xn)
        d = np.minimum(d, np.maximum(np.abs(sv - arc) - t * 0.45, np.abs(su - mid) - half))
        for i, side in enumerate((-1, 1)):
            hinge = (gx[i] + side * lw * 0.96, hinge_v)
            end = (lay.ear_x[i] - side * rx * 0.2, ear_v)
            d = np.minimum(d, sd_segment(su, sv, hinge, end) - t * 0.4)
        return d

    lenses = lens_sdf(u, v)
    frame = frame_sdf(u, v, lenses)
    # soft shadow of the frame on the skin, cast away from the light
    off = 0.15 * ew
    on_face = cv.label[box] == LABEL_FACE
    shadow = cv.soft(frame_sdf(u + lx * off, v + ly * off, lens_sdf(u + lx * off, v + ly * off)), t * 1.5)
    cv.paint(box, (0.22 * shadow) * on_face, shadow_color(p))
    # lenses: faint tint plus a soft reflection streak in the upper outer part
    inside = cv.cover(np.minimum(lenses[0], lenses[1]))
    tint = 0.6 * rgb(p.glasses_color) + 0.4 * rgb((0.55, 0.62, 0.7))
    cv.paint(box, p.glasses_tint * inside, tint)
    c, s = math.cos(math.radians(35.0)), math.sin(math.radians(35.0))
    for i, side in enumerate((-1, 1)):
        x, y = u - (gx[i] + side * lw * 0.45), v - (gy - lh * 0.5)
        streak = sd_ellipse(x * c + y * s * side, -x * s * side + y * c, lw * 0.09, lh * 0.55)
        cv.paint(box, (0.16 * inside) * cv.soft(streak, lw * 0.12), rgb((1.0, 1.0, 1.0)))
    # the frame, lit from the light's side
    cx = np.where(u < (gx[0] + gx[1]) * 0.5, gx[0], gx[1])
    rel = ((u - cx) * lx + (v - gy) * ly) * (1.0 / lw)
    frame_color = rgb(p.glasses_color) * (0.8 + 0.25 * np.clip(rel, -1.0, 1.0)) + 0.06
    cv.paint(box, cv.cover(frame), frame_color, LABEL_FACE)


def paint_features(cv: Canvas, p: FaceParams, lay: Layout) -> None:
    """Eyes, brows, nose, mouth and glasses."""
    for index in (0, 1):
        _paint_eye(cv, p, lay, index)
    _paint_brows(cv, p, lay)
    _paint_nose(cv, p, lay)
    _paint_mouth(cv, p, lay)
    _paint_glasses(cv, p, lay)
