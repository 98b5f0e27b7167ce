"""Stage 4 of the face renderer, the first layer: the background (gradients, soft shapes, textures)."""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import ndimage

from .canvas import Canvas, rgb
from .layout import Layout
from .params import BACKGROUND_STYLES, OUTDOOR_SCENES, WALL_PATTERNS, FaceParams, option_name


def paint_background(cv: Canvas, p: FaceParams, lay: Layout) -> None:
    """Two-colour gradient plus blurred ellipses, in unframed image coordinates.

    Shapes either blend towards ``bg_shape_color`` or darken, so compositing them all reduces to
    two scalar fields: what is left of the gradient (``keep``) and the weight of the shape colour.
    Walls and outdoor scenes are textures, built and blurred on a coarser grid.
    """
    if option_name(BACKGROUND_STYLES, p.bg_style) in ("wall", "outdoor"):
        _textured_background(p, cv.res, out=cv.rgb)
        return
    keep, light = _bg_shape_fields(p, cv.res, cv.px)
    top, bottom = rgb(p.bg_top), rgb(p.bg_bottom)
    g = _along_gradient(p, cv.px[None, :], cv.px[:, None])
    cv.rgb[:] = (top + g * (bottom - top)) * keep + light * rgb(p.bg_shape_color)


def _along_gradient(p: FaceParams, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """0 (``bg_top``) .. 1 (``bg_bottom``) along the background's gradient, at image coordinates x, y."""
    a = math.radians(p.bg_angle)
    return np.clip(0.5 + math.sin(a) * x + math.cos(a) * y, 0.0, 1.0)


def _bg_shape_fields(p: FaceParams, n: int, px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(keep, light) [n, n] of the soft background shapes on an n x n grid with centres ``px``."""
    keep = np.ones((n, n), dtype=np.float32)
    light = np.zeros((n, n), dtype=np.float32)
    for x, y, rx, ry, strength, softness in p.bg_shapes:
        x0, x1 = max(int((x - rx + 0.5) * n) - 1, 0), min(int((x + rx + 0.5) * n) + 2, n)
        y0, y1 = max(int((y - ry + 0.5) * n) - 1, 0), min(int((y + ry + 0.5) * n) + 2, n)
        if x0 >= x1 or y0 >= y1:
            continue
        box = (slice(y0, y1), slice(x0, x1))
        ix, iy = px[box[1]][None, :], px[box[0]][:, None]
        k = np.sqrt(((ix - x) * (1.0 / rx)) ** 2 + ((iy - y) * (1.0 / ry)) ** 2)
        edge = max(softness, 1.0 / (n * min(rx, ry)))  # at least a pixel wide
        t = np.clip((1.0 - k) * (1.0 / edge), 0.0, 1.0)
        alpha = (abs(strength) * t * t) * (3.0 - 2.0 * t)
        keep[box] *= 1.0 - alpha
        light[box] *= 1.0 - alpha
        if strength > 0:
            light[box] += alpha
    return keep, light


# Textured backgrounds are built sharp on a fixed grid over the image (so every resolution shows
# the same picture), blurred there with a Gaussian (the depth of field) and interpolated onto the
# pixels. No BLAS: a multi-threaded matrix product stalls whenever another process holds a core.
_BG_GRID = 128


@functools.lru_cache(maxsize=32)
def _lerp_taps(n_in: int, n_out: int, smooth: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices and weights interpolating n_in cell centres onto n_out cell centres over one span."""
    pos = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    base = np.floor(pos)
    f = (pos - base).astype(np.float32)
    if smooth:
        f = f * f * (3.0 - 2.0 * f)
    i0 = np.clip(base, 0, n_in - 1).astype(np.intp)
    i1 = np.clip(base + 1, 0, n_in - 1).astype(np.intp)
    for a in (i0, i1, f):
        a.setflags(write=False)
    return i0, i1, f


def _resize(a: np.ndarray, n: int, smooth: bool = False, out: np.ndarray | None = None) -> np.ndarray:
    """Interpolate the last two axes of ``a`` (square) to ``n`` x ``n``: bilinear or smoothstep."""
    i0, i1, f = _lerp_taps(a.shape[-1], n, smooth)
    lo = a[..., i0]
    cols = lo + f * (a[..., i1] - lo)  # columns first: the row gathers below copy whole rows
    lo, hi = cols[..., i0, :], cols[..., i1, :]
    hi -= lo
    hi *= f[:, None]
    return np.add(lo, hi, out=out)


def _noise(rng: np.random.Generator, k: int) -> np.ndarray:
    """Smooth unit-variance value noise on the background grid, about ``k`` blobs across."""
    n = _resize(rng.standard_normal((k, k)).astype(np.float32), _BG_GRID, smooth=True)
    return n * (1.0 / (float(n.std()) + 1e-6))


def _noise1d(rng: np.random.Generator, k: int) -> np.ndarray:
    i0, i1, f = _lerp_taps(k, _BG_GRID, True)
    r = rng.standard_normal(k).astype(np.float32)
    n = r[i0] + f * (r[i1] - r[i0])
    return n * (1.0 / (float(n.std()) + 1e-6))


def _grid_step(d: np.ndarray) -> np.ndarray:
    """Coverage of ``d < 0`` anti-aliased over one grid cell."""
    return np.clip(0.5 - d * _BG_GRID, 0.0, 1.0)


def _line_distance(x: np.ndarray, period: float) -> np.ndarray:
    """Distance to the nearest multiple of ``period``."""
    f = x * (1.0 / period)
    return np.abs(f - np.floor(f + 0.5)) * period


def _textured_background(p: FaceParams, res: int, out: np.ndarray | None = None) -> np.ndarray:
    """Channel-first [3, res, res] wall or outdoor texture with its soft shapes, out of focus."""
    rng = np.random.default_rng(p.bg_seed)
    g = (np.arange(_BG_GRID, dtype=np.float32) + 0.5) / _BG_GRID - 0.5
    x, y = g[None, :], g[:, None]
    if option_name(BACKGROUND_STYLES, p.bg_style) == "wall":
        tex = _wall_texture(p, rng, x, y)
    else:
        tex = _outdoor_texture(p, rng, x, y)
    keep, light = _bg_shape_fields(p, _BG_GRID, g)
    tex = np.clip(tex * keep + light * rgb(p.bg_shape_color), 0.0, 1.0).astype(np.float32)
    sigma = math.sqrt(max(p.bg_blur, 0.8 / _BG_GRID) ** 2 + (0.5 / res) ** 2) * _BG_GRID  # in cells
    tex = ndimage.gaussian_filter(tex, (0.0, sigma, sigma), mode="nearest", truncate=3.0)
    return _resize(tex, res, out=out)


def _wall_texture(p: FaceParams, rng, x, y) -> np.ndarray:
    """Plaster, brick, tile or wood panelling, shaded from bg_top to bg_bottom along bg_angle."""
    top, detail = rgb(p.bg_top), rgb(p.bg_detail)
    s = max(p.bg_scale, 4.0 / _BG_GRID)
    pattern = option_name(WALL_PATTERNS, p.bg_variant)
    fine = _noise(rng, 24)
    table = rng.normal(0.0, 1.0, (64, 64))
    if pattern == "plaster":
        k = max(int(round(1.0 / s)), 2)
        mod = 1.0 + 0.03 * _noise(rng, k) + 0.015 * fine + 0.04 * _noise(rng, 3)
        stain = np.clip(_noise(rng, 2 * k) - 1.5, 0.0, 1.0) * 0.2
        tex = top * mod
        tex = tex + stain * (detail - tex)
    elif pattern in ("brick", "tile"):
        h = s
        w = h * 2.2 if pattern == "brick" else h
        joint = h * (0.12 if pattern == "brick" else 0.07)
        row = np.floor(y * (1.0 / h)).astype(np.int64)
        xs = x + (row % 2) * (0.5 * w) if pattern == "brick" else x
        col = np.floor(xs * (1.0 / w)).astype(np.int64)
        mortar = np.maximum(_grid_step(_line_distance(y, h) - joint * 0.5),
                            _grid_step(_line_distance(xs, w) - joint * 0.5))
        tone = table[row % 64, col % 64] * (0.09 if pattern == "brick" else 0.035)
        face = top * (1.0 + tone + (0.05 if pattern == "brick" else 0.015) * fine)
        tex = face + mortar * (detail * (1.0 + 0.03 * fine) - face)
    else:  # wood: vertical planks with wavy grain and dark gaps
        col = np.floor(x * (1.0 / s)).astype(np.int64)
        tone = table[0, col % 64] * 0.08
        wave = _noise(rng, 6)
        grain = np.sin((x * (4.0 / s) + 0.35 * wave + table[1, col % 64]) * (2 * math.pi))
        tex = top * (1.0 + tone + 0.06 * grain + 0.03 * fine)
        gap = _grid_step(_line_distance(x, s) - s * 0.025)
        tex = tex + gap * (detail - tex)
    shade = _along_gradient(p, x, y)
    ratio = rgb(p.bg_bottom) / np.maximum(top, 0.02)
    return tex * (1.0 + shade * (ratio - 1.0))


def _outdoor_texture(p: FaceParams, rng, x, y) -> np.ndarray:
    """Sky over a horizon with trees (park) or buildings (city) and blurred foliage up close."""
    sky_top, ground, detail = rgb(p.bg_top), rgb(p.bg_bottom), rgb(p.bg_detail)
    yh = p.bg_horizon
    haze = 0.45 * sky_top + 0.55 * rgb((0.93, 0.94, 0.93))
    t = np.clip((y + 0.5) * (1.0 / (yh + 0.5)), 0.0, 1.0)
    sky = sky_top + (t * np.sqrt(t)) * (haze - sky_top)
    clouds = np.clip(0.6 * _noise(rng, 4) + 0.3 * _noise(rng, 10) - 0.3, 0.0, 1.0)
    sky = sky + (float(rng.uniform(0.0, 0.8)) * clouds) * (rgb((0.97, 0.97, 0.96)) - sky)
    gt = np.clip((y - yh) * (1.0 / max(0.5 - yh, 0.05)), 0.0, 1.0)
    far_ground = 0.7 * ground + 0.3 * haze
    land = far_ground + gt * (ground * 0.85 - far_ground)
    land = land * (1.0 + 0.06 * _noise(rng, 20))
    tex = sky + _grid_step(yh - y) * (land - sky)
    blotch = _noise(rng, 24)
    park = option_name(OUTDOOR_SCENES, p.bg_variant) == "park"
    if park:
        height = 0.07 + 0.04 * _noise1d(rng, 10) + 0.015 * _noise1d(rng, 30)
        trees = _grid_step((yh - height[None, :]) - y) * _grid_step(y - (yh + 0.01))
        foliage = detail * (1.0 + 0.22 * blotch + 0.12 * _noise(rng, 8))
        foliage = foliage + 0.25 * (haze - foliage)
        tex = tex + trees * (foliage - tex)
        near = float(rng.uniform(0.3, 1.0))
    else:
        edges = np.cumsum(rng.uniform(0.05, 0.14, 20)) - 0.6
        idx = np.clip(np.searchsorted(edges, x[0]), 0, 19)
        heights = rng.uniform(0.05, 0.35, 20)[idx][None, :]
        tones = rng.normal(0.0, 0.12, 20)[idx][None, :]
        body = _grid_step((yh - heights) - y) * _grid_step(y - (yh + 0.02))
        windows = (_grid_step(_line_distance(x, 0.022) - 0.006) * _grid_step(_line_distance(y, 0.03) - 0.008))
        building = detail * (1.0 + tones) * (1.0 - 0.25 * windows) + 0.04 * blotch
        building = building + 0.2 * (haze - building)
        tex = tex + body * (building - tex)
        near = float(rng.uniform(0.0, 0.5))
    # leaves close to the camera at the sides and top corners
    edge = (2.0 * np.abs(x)) ** 2 + 0.6 * np.clip(-2.0 * y, 0.0, 1.0) ** 2
    leaves = np.clip((0.8 * _noise(rng, 5) + 0.5 * blotch + 2.2 * edge * near - 1.6) * 2.5, 0.0, 1.0)
    if park:
        leaf_color = detail * (0.55 + 0.2 * blotch)
    else:
        leaf_color = rgb((0.15, 0.25, 0.1)) * (1.0 + 0.25 * blotch)
    return tex + leaves * (leaf_color - tex)
