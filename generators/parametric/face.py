"""Procedural frontal face portraits rendered from signed distance fields.

Every shape is an implicit function evaluated on a pixel grid (only inside the shape's bounding
box), turned into anti-aliased coverage and composited back to front. Geometry lives in *face
coordinates* ``(u, v)``: fractions of the image size at ``scale == 1``, ``v`` pointing down, with
the image centre at the origin before framing. Framing (translation, scale, roll) maps face
coordinates to pixels, so any resolution renders the same picture.

Colours are RGB tuples in ``[0, 1]``; angles are in degrees.
"""

from __future__ import annotations

import colorsys
import functools
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from scipy import ndimage

from ...harness.contracts.seeding import rng_for

Color = tuple[float, float, float]

HAIR_STYLES = ("short", "long", "bun", "buzz", "curly")
BACKGROUND_STYLES = ("studio", "bokeh", "room", "wall", "outdoor")
WALL_PATTERNS = ("plaster", "brick", "tile", "wood")  # bg_variant of a "wall" background
OUTDOOR_SCENES = ("park", "city")  # bg_variant of an "outdoor" background
NECKLINES = ("crew", "v")
EARRINGS = ("none", "stud", "hoop")
GLASSES = ("none", "round", "rect")
LANDMARKS = ("eye_left", "eye_right", "mouth_left", "mouth_right")
MASKS = ("face", "hair", "background")

_HEAD_CY = -0.04  # head centre (v) in face coordinates
_LABEL_BACKGROUND, _LABEL_FACE, _LABEL_HAIR, _LABEL_OTHER = 0, 1, 2, 3


@dataclass(frozen=True)
class FaceParams:
    """Every per-seed property of one portrait (see the module docstring for units).

    Lengths of features are relative to the head (``head_width``/``head_height``) or to the eye
    half width, so that changing the head size keeps a consistent face. ``left``/``right`` refer to
    the image: the left eye is the one with the smaller x.
    """

    seed: int
    # framing
    tx: float = 0.0  # translation, fraction of the image size
    ty: float = 0.0
    scale: float = 1.0
    roll: float = 0.0  # degrees, clockwise on screen
    yaw: float = 0.0  # degrees; features shift sideways by their depth
    # head and lighting
    head_width: float = 0.17  # half width of the head ellipse
    head_height: float = 0.235  # half height
    jaw: float = 0.5  # 0 round .. 1 narrow chin
    skin: Color = (0.86, 0.67, 0.55)
    blush: float = 0.2
    light_dir: tuple[float, float] = (-0.45, -0.35)  # towards the light in image axes, norm < 1
    ambient: float = 0.6
    # eyes
    eye_y: float = 0.04  # below head centre, fraction of head_height
    eye_spacing: float = 0.44  # eye centre |u|, fraction of head_width
    eye_width: float = 0.21  # eye half width, fraction of head_width
    eye_open: float = 0.46  # opening half height / eye half width
    eye_tilt: float = 3.0  # degrees, outer corners up
    sclera: Color = (0.93, 0.91, 0.88)
    iris_left: Color = (0.4, 0.24, 0.1)
    iris_right: Color = (0.4, 0.24, 0.1)
    iris_size: float = 0.52  # iris radius / eye half width
    pupil_left: float = 0.4  # pupil radius / iris radius
    pupil_right: float = 0.4
    pupil_aspect_left: float = 1.0  # pupil height / width; 1 is round
    pupil_aspect_right: float = 1.0
    # irregular pupil outline: harmonics (c_k, phi_k) for k = 2, 3, ... (index 0 is k = 2); the
    # radius at angle t (image axes, v down) becomes r0(t) * (1 + sum c_k cos(k t + phi_k)).
    # Empty: the plain round/elliptical pupil.
    pupil_wobble_left: tuple[tuple[float, float], ...] = ()
    pupil_wobble_right: tuple[tuple[float, float], ...] = ()
    gaze: tuple[float, float] = (0.0, 0.0)  # iris offset, fraction of the eye half width / half height
    highlight_size: float = 0.24  # corneal highlight radius / iris radius
    highlight_shift_left: tuple[float, float] = (0.0, 0.0)  # extra highlight offset, in iris radii
    highlight_shift_right: tuple[float, float] = (0.0, 0.0)
    lid_thickness: float = 0.12  # upper lid line, fraction of the eye half width
    lashes: float = 0.5  # lash strength 0..1
    # brows
    brow_y: float = 0.2  # above the eyes, fraction of head_height
    brow_thickness: float = 0.3  # fraction of the eye half width
    brow_arch: float = 0.25  # fraction of the eye half width
    brow_tilt: float = 0.0  # outer end up (+) or down (-), fraction of the eye half width
    brow_color: Color = (0.2, 0.13, 0.09)
    # nose
    nose_y: float = 0.4  # nose bottom below head centre, fraction of head_height
    nose_width: float = 0.2  # half width, fraction of head_width
    nose_shadow: float = 0.35
    # mouth
    mouth_y: float = 0.62  # below head centre, fraction of head_height
    mouth_width: float = 0.34  # half width, fraction of head_width
    lip_color: Color = (0.75, 0.42, 0.4)
    upper_lip: float = 0.27  # thickness, fraction of the mouth half width
    lower_lip: float = 0.35
    smile: float = 0.1  # corner lift, -1..1
    # ears and accessories
    ear_size: float = 1.0
    earring_left: int = 0  # index into EARRINGS
    earring_right: int = 0
    earring_color: Color = (0.85, 0.7, 0.3)
    earring_size_left: float = 1.0  # size multiplier; 0 draws no earring on that side
    earring_size_right: float = 1.0
    glasses: int = 0  # index into GLASSES
    glasses_color: Color = (0.08, 0.07, 0.07)  # frame colour
    glasses_tint: float = 0.08  # lens tint strength 0..~0.2 (the eye must stay visible)
    glasses_size: float = 1.0  # lens scale (1: a little wider than the eye opening)
    glasses_frame: float = 0.09  # frame thickness, fraction of the eye half width
    # hair
    hair_style: int = 0  # index into HAIR_STYLES
    hair_color: Color = (0.2, 0.13, 0.09)
    hairline: float = 0.5  # hairline height above head centre, fraction of head_height
    hair_side: float = 0.15  # temple hairline above the eyes, fraction of head_height
    hair_volume: float = 0.025  # hair thickness beyond the skull
    hair_length: float = 1.6  # long hair end below head centre, fraction of head_height
    hair_part: float = 0.3  # -1..1, parting position
    fringe: float = 0.0  # 0..1, bangs over the forehead
    hair_wave: float = 0.3  # 0..1
    hair_phase: float = 0.0  # radians, varies strand patterns
    hair_strands: float = 30.0  # strand line frequency
    # clothes
    shirt_color: Color = (0.25, 0.35, 0.55)
    neckline: int = 0  # index into NECKLINES
    # background
    bg_style: int = 0  # index into BACKGROUND_STYLES
    bg_top: Color = (0.75, 0.78, 0.82)
    bg_bottom: Color = (0.45, 0.5, 0.58)
    bg_angle: float = 0.0  # gradient direction, degrees from vertical
    bg_shape_color: Color = (0.95, 0.95, 0.9)
    # soft shapes: (x, y, rx, ry, strength, softness) in image fractions around the centre;
    # strength > 0 blends towards bg_shape_color, < 0 darkens; softness is a fraction of min(rx, ry)
    bg_shapes: tuple[tuple[float, float, float, float, float, float], ...] = ()
    # textured backgrounds ("wall", "outdoor"); unused by the other styles
    bg_seed: int = 0  # seeds the texture noise (np.random.default_rng(bg_seed))
    bg_variant: int = 0  # index into WALL_PATTERNS or OUTDOOR_SCENES
    bg_detail: Color = (0.35, 0.33, 0.3)  # mortar/grout/grain, or foliage/buildings outdoors
    bg_scale: float = 0.06  # wall: brick height, tile or plank size (image fraction)
    bg_horizon: float = 0.05  # outdoor: horizon below the image centre (image fraction)
    bg_blur: float = 0.01  # depth-of-field blur of the texture, sigma in image fractions


@dataclass
class Render:
    """A batch of rendered portraits with landmarks (pixels, x right, y down) and region masks."""

    images: np.ndarray  # uint8 [N, H, W, 3]
    landmarks: dict[str, np.ndarray]  # name -> float32 [N, 2]
    masks: dict[str, np.ndarray]  # name -> bool [N, H, W]


# --------------------------------------------------------------------------------------------
# sampling

_SKIN_PALETTE = np.array(
    [(250, 222, 200), (238, 197, 170), (224, 172, 138), (198, 140, 105),
     (165, 110, 78), (125, 82, 56), (92, 60, 42), (66, 44, 32)], dtype=np.float64) / 255.0
_HAIR_COLORS = {
    "black": (0.07, 0.06, 0.06), "dark_brown": (0.2, 0.13, 0.09), "brown": (0.38, 0.25, 0.15),
    "light_brown": (0.55, 0.4, 0.26), "blond": (0.82, 0.68, 0.42), "platinum": (0.9, 0.86, 0.74),
    "red": (0.62, 0.27, 0.12), "auburn": (0.42, 0.16, 0.09), "grey": (0.58, 0.58, 0.58),
    "white": (0.84, 0.84, 0.82),
}
_IRIS_COLORS = (
    ((0.25, 0.14, 0.07), 4.0), ((0.4, 0.24, 0.1), 3.0), ((0.5, 0.4, 0.18), 1.5),
    ((0.32, 0.48, 0.28), 1.0), ((0.3, 0.48, 0.72), 1.5), ((0.45, 0.55, 0.62), 1.0),
    ((0.62, 0.4, 0.12), 0.5),
)
_LIPSTICKS = ((0.65, 0.1, 0.15), (0.5, 0.12, 0.25), (0.85, 0.42, 0.5), (0.7, 0.45, 0.4))
_FRAMES = (  # (frame colour, thickness / eye half width, weight)
    ((0.06, 0.05, 0.05), 0.1, 4.0), ((0.3, 0.17, 0.08), 0.1, 2.0), ((0.78, 0.63, 0.32), 0.05, 1.5),
    ((0.72, 0.72, 0.75), 0.05, 1.5), ((0.12, 0.16, 0.32), 0.09, 1.0), ((0.5, 0.08, 0.1), 0.09, 0.5),
)


def _clip01(c) -> Color:
    return tuple(float(min(max(x, 0.0), 1.0)) for x in c)


def _jitter(rng: np.random.Generator, c, sd: float) -> Color:
    return _clip01(np.asarray(c) + rng.normal(0.0, sd, 3))


def _choice(rng: np.random.Generator, items, weights):
    w = np.asarray(weights, dtype=np.float64)
    return items[int(rng.choice(len(items), p=w / w.sum()))]


def _hsv(h: float, s: float, v: float) -> Color:
    return _clip01(colorsys.hsv_to_rgb(h % 1.0, s, v))


def _rand_hsv(rng, h, s, v) -> Color:
    """A colour with hue, saturation and value drawn uniformly from the (lo, hi) ranges."""
    return _hsv(*(float(rng.uniform(*r)) for r in (h, s, v)))


def _sample_framing(rng) -> dict:
    def normal(sd, lim):
        return float(np.clip(rng.normal(0.0, sd), -lim, lim))

    # Log-uniform scale, from head-and-shoulders to a tight crop: the range covers the
    # FFHQ crop's scale, so an eyes_fixed fake differs from its real by position, not size.
    scale = float(np.exp(rng.uniform(math.log(0.85), math.log(1.6))))
    return dict(tx=normal(0.04, 0.08), ty=normal(0.035, 0.06), scale=scale, roll=normal(4.0, 8.0), yaw=normal(4.0, 10.0))


def _sample_head(rng) -> dict:
    tone = float(rng.uniform(0.0, 1.0))
    pos = tone * (len(_SKIN_PALETTE) - 1)
    i = min(int(pos), len(_SKIN_PALETTE) - 2)
    skin = _SKIN_PALETTE[i] + (pos - i) * (_SKIN_PALETTE[i + 1] - _SKIN_PALETTE[i])
    skin = skin * (1.0 + rng.normal(0.0, 0.03, 3)) + rng.normal(0.0, 0.015)
    angle = float(rng.uniform(-160.0, -20.0))  # mostly from above (v points down)
    mag = float(rng.uniform(0.35, 0.8))
    hw = float(rng.uniform(0.17, 0.2))
    return dict(
        head_width=hw, head_height=hw * float(rng.uniform(1.28, 1.45)), jaw=float(rng.uniform(0.0, 1.0)),
        skin=_clip01(skin), blush=float(rng.uniform(0.05, 0.35)),
        light_dir=(mag * math.cos(math.radians(angle)), mag * math.sin(math.radians(angle))),
        ambient=float(rng.uniform(0.5, 0.68)), _tone=tone,
    )


def _sample_eyes(rng, tone: float) -> dict:
    light_eyes = (1.0 - tone) ** 2  # blue, green and grey eyes mostly with light skin
    weights = [w * (light_eyes if i in (3, 4, 5) else 1.0) for i, (_, w) in enumerate(_IRIS_COLORS)]
    iris = _jitter(rng, _choice(rng, [c for c, _ in _IRIS_COLORS], weights), 0.03)
    pupil = float(rng.uniform(0.3, 0.48))
    return dict(
        eye_y=float(rng.uniform(-0.02, 0.08)), eye_spacing=float(rng.uniform(0.4, 0.48)),
        eye_width=float(rng.uniform(0.19, 0.23)), eye_open=float(rng.uniform(0.38, 0.55)),
        eye_tilt=float(rng.uniform(-3.0, 8.0)), sclera=_jitter(rng, (0.93, 0.91, 0.88), 0.015),
        iris_left=iris, iris_right=iris, iris_size=float(rng.uniform(0.48, 0.56)),
        pupil_left=pupil, pupil_right=pupil,
        gaze=(float(rng.normal(0.0, 0.25)), float(rng.normal(0.0, 0.15))),
        highlight_size=float(rng.uniform(0.18, 0.28)), lid_thickness=float(rng.uniform(0.08, 0.16)),
        lashes=float(rng.uniform(0.2, 1.0)),
    )


def _sample_mouth_nose_brows(rng, skin: Color, hair_color: Color) -> dict:
    lips = np.asarray(skin) * (0.84, 0.59, 0.63) + (0.07, 0.0, 0.014)
    if rng.uniform() < 0.15:
        lips = 0.4 * lips + 0.6 * np.asarray(_LIPSTICKS[int(rng.integers(len(_LIPSTICKS)))])
    brow = np.minimum(np.asarray(hair_color) * 0.75, 0.45) if max(hair_color) < 0.7 else (0.45, 0.38, 0.3)
    return dict(
        brow_y=float(rng.uniform(0.17, 0.24)), brow_thickness=float(rng.uniform(0.2, 0.4)),
        brow_arch=float(rng.uniform(0.1, 0.4)), brow_tilt=float(rng.uniform(-0.2, 0.25)),
        brow_color=_jitter(rng, brow, 0.02),
        nose_y=float(rng.uniform(0.36, 0.44)), nose_width=float(rng.uniform(0.17, 0.24)),
        nose_shadow=float(rng.uniform(0.2, 0.45)),
        mouth_y=float(rng.uniform(0.58, 0.66)), mouth_width=float(rng.uniform(0.3, 0.4)),
        lip_color=_jitter(rng, lips, 0.02), upper_lip=float(rng.uniform(0.2, 0.32)),
        lower_lip=float(rng.uniform(0.28, 0.42)), smile=float(rng.uniform(-0.15, 0.6)),
        ear_size=float(rng.uniform(0.9, 1.1)),
    )


def _sample_hair(rng, tone: float) -> dict:
    dark = tone > 0.55
    names = list(_HAIR_COLORS)
    weights = [4 + 6 * dark, 4 + 2 * dark, 3, 2 - dark, 2 - 1.5 * dark, 0.5 - 0.4 * dark,
               1 - 0.8 * dark, 1 - 0.8 * dark, 1.0, 0.5]
    style = int(_choice(rng, list(range(len(HAIR_STYLES))), [3, 3, 1.2, 1.2, 1 + 2 * dark]))
    volume = {"short": (0.012, 0.035), "long": (0.015, 0.04), "bun": (0.008, 0.018),
              "buzz": (0.004, 0.006), "curly": (0.045, 0.08)}[HAIR_STYLES[style]]
    return dict(
        hair_style=style, hair_color=_jitter(rng, _HAIR_COLORS[_choice(rng, names, weights)], 0.02),
        hairline=float(rng.uniform(0.42, 0.62)), hair_side=float(rng.uniform(-0.05, 0.15)),
        hair_volume=float(rng.uniform(*volume)), hair_length=float(rng.uniform(1.3, 2.1)),
        hair_part=float(rng.uniform(-1.0, 1.0)),
        fringe=float(rng.uniform(0.0, 0.8)) if rng.uniform() < 0.3 else 0.0,
        hair_wave=float(rng.uniform(0.0, 1.0)), hair_phase=float(rng.uniform(0.0, 2 * math.pi)),
        hair_strands=float(rng.uniform(22.0, 40.0)),
    )


def _sample_accessories(rng) -> dict:
    earring = int(_choice(rng, [0, 1, 2], [6, 1.5, 1]))
    metal = _choice(rng, [(0.85, 0.7, 0.3), (0.8, 0.8, 0.82)], [1, 1])
    shirt = _hsv(float(rng.uniform()), float(rng.uniform(0.05, 0.7)), float(rng.uniform(0.15, 0.9)))
    out = dict(earring_left=earring, earring_right=earring, earring_color=metal,
               shirt_color=shirt, neckline=int(rng.integers(len(NECKLINES))))
    if rng.uniform() < 0.2:
        kind = int(rng.integers(1, len(GLASSES)))
        frame_color, thickness, _ = _choice(rng, _FRAMES, [w for _, _, w in _FRAMES])
        out.update(glasses=kind, glasses_color=_jitter(rng, frame_color, 0.02),
                   glasses_tint=float(rng.uniform(0.04, 0.16)), glasses_size=float(rng.uniform(0.95, 1.15)),
                   glasses_frame=thickness * float(rng.uniform(0.8, 1.25)))
    return out


def _sample_background(rng) -> dict:
    style = int(rng.integers(len(BACKGROUND_STYLES)))
    hue, sat = float(rng.uniform()), float(rng.uniform(0.05, 0.5))
    v_top, v_bottom = float(rng.uniform(0.45, 0.95)), float(rng.uniform(0.25, 0.8))
    top = _hsv(hue, sat, v_top)
    bottom = _hsv(hue + float(rng.normal(0.0, 0.06)), sat * float(rng.uniform(0.6, 1.2)), v_bottom)
    shape_color = _hsv(hue + float(rng.uniform(-0.2, 0.2)), sat * 0.5, float(rng.uniform(0.75, 1.0)))
    shapes = []
    if style == 0:  # studio: a glow behind the head and a couple of large soft blobs
        shapes.append((float(rng.normal(0, 0.05)), float(rng.uniform(-0.2, 0.0)), 0.35, 0.35,
                       float(rng.uniform(0.2, 0.45)), 1.0))
        for _ in range(int(rng.integers(2, 4))):
            r = float(rng.uniform(0.1, 0.25))
            shapes.append((float(rng.uniform(-0.5, 0.5)), float(rng.uniform(-0.5, 0.5)), r,
                           r * float(rng.uniform(0.7, 1.4)), float(rng.uniform(-0.35, 0.4)), 0.9))
    elif style == 1:  # bokeh: soft discs
        for _ in range(int(rng.integers(5, 10))):
            r = float(rng.uniform(0.03, 0.09))
            shapes.append((float(rng.uniform(-0.5, 0.5)), float(rng.uniform(-0.5, 0.5)), r, r,
                           float(rng.uniform(0.15, 0.5)), float(rng.uniform(0.15, 0.5))))
    else:  # room: a blurred window/door band and a darker corner
        x = float(rng.choice([-1.0, 1.0])) * float(rng.uniform(0.25, 0.45))
        shapes.append((x, float(rng.uniform(-0.3, 0.0)), float(rng.uniform(0.06, 0.14)), 0.45,
                       float(rng.uniform(0.3, 0.6)), 0.5))
        shapes.append((-x * 1.3, 0.1, 0.18, 0.6, float(rng.uniform(-0.35, -0.15)), 0.9))
    out = dict(bg_style=style, bg_top=top, bg_bottom=bottom, bg_angle=float(rng.normal(0.0, 20.0)),
               bg_shape_color=shape_color, bg_shapes=tuple(shapes), bg_seed=int(rng.integers(2 ** 31)))
    if style == 3:
        out.update(_sample_wall(rng, hue, sat))
    elif style == 4:
        out.update(_sample_outdoor(rng))
    return out


def _sample_wall(rng, hue: float, sat: float) -> dict:
    """Wall colours and pattern, lit by a soft pool of light behind the head."""
    variant = int(_choice(rng, list(range(len(WALL_PATTERNS))), [3, 2, 1.5, 1.5]))
    name = WALL_PATTERNS[variant]
    if name == "plaster":
        top = _hsv(hue, sat * 0.6, float(rng.uniform(0.55, 0.92)))
        detail, scale = np.asarray(top) * 0.8, float(rng.uniform(0.05, 0.12))
    elif name == "brick":
        if rng.uniform() < 0.3:  # painted brick
            top = _hsv(hue, float(rng.uniform(0.03, 0.15)), float(rng.uniform(0.72, 0.92)))
            detail = np.asarray(top) * 0.82
        else:
            top = _rand_hsv(rng, (0.02, 0.07), (0.4, 0.65), (0.4, 0.66))
            detail = _hsv(0.1, float(rng.uniform(0.03, 0.12)), float(rng.uniform(0.55, 0.8)))
        scale = float(rng.uniform(0.035, 0.06))
    elif name == "tile":
        top = _hsv(hue, sat * 0.5, float(rng.uniform(0.65, 0.95)))
        detail = np.asarray(top) * float(rng.uniform(0.6, 0.8))
        scale = float(rng.uniform(0.07, 0.13))
    else:  # wood panelling
        top = _rand_hsv(rng, (0.05, 0.1), (0.35, 0.65), (0.35, 0.72))
        detail, scale = np.asarray(top) * 0.55, float(rng.uniform(0.07, 0.14))
    bottom = np.asarray(top) * float(rng.uniform(0.6, 0.85))
    glow = (float(rng.normal(0.0, 0.1)), float(rng.uniform(-0.25, 0.0)), 0.38, 0.38,
            float(rng.uniform(0.08, 0.3)), 1.0)
    return dict(bg_variant=variant, bg_top=top, bg_bottom=_clip01(bottom), bg_detail=_clip01(detail),
                bg_scale=scale, bg_blur=float(rng.uniform(0.009, 0.016)), bg_shapes=(glow,),
                bg_shape_color=_hsv(0.1, float(rng.uniform(0.0, 0.2)), 1.0))


def _sample_outdoor(rng) -> dict:
    """Sky, ground and either trees (park) or a skyline (city), far out of focus."""
    variant = int(rng.integers(len(OUTDOOR_SCENES)))
    sky = int(_choice(rng, [0, 1, 2], [5, 3, 2]))  # blue, overcast, golden hour
    top = _rand_hsv(rng, *(((0.54, 0.62), (0.3, 0.55), (0.78, 0.95)), ((0.5, 0.65), (0.02, 0.1), (0.72, 0.9)),
                           ((0.06, 0.12), (0.25, 0.45), (0.85, 0.97)))[sky])
    if OUTDOOR_SCENES[variant] == "park":
        ground = _rand_hsv(rng, (0.2, 0.3), (0.35, 0.6), (0.3, 0.55))
        detail = _rand_hsv(rng, (0.18, 0.32), (0.35, 0.7), (0.18, 0.4))  # foliage
    else:
        ground = _rand_hsv(rng, (0.0, 1.0), (0.02, 0.1), (0.35, 0.6))
        detail = _rand_hsv(rng, (0.04, 0.12), (0.05, 0.3), (0.45, 0.8))  # buildings
    shapes = []
    for _ in range(int(rng.integers(0, 6))):  # out-of-focus highlights
        r = float(rng.uniform(0.02, 0.05))
        shapes.append((float(rng.uniform(-0.5, 0.5)), float(rng.uniform(-0.5, 0.2)), r, r,
                       float(rng.uniform(0.1, 0.35)), float(rng.uniform(0.3, 0.6))))
    return dict(bg_variant=variant, bg_top=top, bg_bottom=ground, bg_detail=detail,
                bg_horizon=float(rng.uniform(-0.15, 0.15)), bg_blur=float(rng.uniform(0.01, 0.02)),
                bg_shapes=tuple(shapes), bg_shape_color=_hsv(0.12, float(rng.uniform(0.0, 0.3)), 1.0))


def sample_face_params(seed: int) -> FaceParams:
    """Deterministic parameters for ``seed``: draws only from ``rng_for(seed, "face")``."""
    rng = rng_for(seed, "face")
    framing = _sample_framing(rng)
    head = _sample_head(rng)
    tone = head.pop("_tone")
    eyes = _sample_eyes(rng, tone)
    hair = _sample_hair(rng, tone)
    features = _sample_mouth_nose_brows(rng, head["skin"], hair["hair_color"])
    return FaceParams(seed=int(seed), **framing, **head, **eyes, **hair, **features,
                      **_sample_accessories(rng), **_sample_background(rng))


# --------------------------------------------------------------------------------------------
# layout: where features sit in face coordinates


@dataclass(frozen=True)
class _Layout:
    cy: float
    hw: float
    hh: float
    chin: float
    ew: float  # eye half width
    eh: float  # eye opening half height
    ri: float  # iris radius
    eye_x: tuple[float, float]  # left, right
    eye_y: float
    iris: tuple[tuple[float, float], tuple[float, float]]
    brow_y: float
    nose_x: float
    bridge_x: float
    nose_y: float
    nw: float
    mouth_x: float
    body_x: float  # neck and shoulders shift a little with yaw
    mouth_y: float
    mw: float
    smile_lift: float
    ear_x: tuple[float, float]
    ear_y: float
    ear_r: tuple[float, float]
    neck_w: float
    shirt_top: float
    hair_end: float
    part_u: float
    light: tuple[float, float, float]  # 3-D unit vector towards the light
    light2: tuple[float, float]  # its image-plane direction, unit length
    glass_x: tuple[float, float]  # lens centres (glasses sit in front of the eyes)


def _layout(p: FaceParams) -> _Layout:
    """Positions and sizes of every feature, including the yaw shift of each by its depth."""
    hw, hh, cy = p.head_width, p.head_height, _HEAD_CY
    yaw = math.radians(p.yaw)

    def project(x: float, depth: float) -> float:
        return x * math.cos(yaw) + depth * hw * math.sin(yaw)

    ew = p.eye_width * hw
    eh = p.eye_open * ew
    eye_y = cy + p.eye_y * hh
    eye_x = (project(-p.eye_spacing * hw, 0.75), project(p.eye_spacing * hw, 0.75))
    iris = tuple((x + p.gaze[0] * ew * 0.3, eye_y + p.gaze[1] * eh * 0.25) for x in eye_x)
    mw = p.mouth_width * hw
    lx, ly = p.light_dir
    norm2 = max(math.hypot(lx, ly), 1e-6)
    lz = math.sqrt(max(1.0 - lx * lx - ly * ly, 0.05))
    n3 = math.sqrt(lx * lx + ly * ly + lz * lz)
    ear = 0.2 * p.ear_size
    return _Layout(
        cy=cy, hw=hw, hh=hh, chin=cy + hh, ew=ew, eh=eh, ri=p.iris_size * ew,
        eye_x=eye_x, eye_y=eye_y, iris=iris, brow_y=eye_y - p.brow_y * hh,
        nose_x=project(0.0, 1.05), bridge_x=project(0.0, 0.85), nose_y=cy + p.nose_y * hh,
        nw=p.nose_width * hw, mouth_x=project(0.0, 0.85), body_x=project(0.0, 0.25),
        mouth_y=cy + p.mouth_y * hh, mw=mw,
        smile_lift=p.smile * mw * 0.18,
        ear_x=(project(-0.97 * hw, -0.15), project(0.97 * hw, -0.15)), ear_y=eye_y + 0.12 * hh,
        ear_r=(ear * hw, ear * hh), neck_w=0.56 * hw, shirt_top=cy + hh + 0.075,
        hair_end=cy + max(p.hair_length, 0.5) * hh, part_u=min(max(p.hair_part, -1.0), 1.0) * hw * 0.4,
        light=(lx / n3, ly / n3, lz / n3), light2=(lx / norm2, ly / norm2),
        glass_x=(project(-p.eye_spacing * hw, 1.0), project(p.eye_spacing * hw, 1.0)),
    )


def _hair_style(p: FaceParams) -> str:
    return HAIR_STYLES[p.hair_style % len(HAIR_STYLES)]


def _to_pixels(p: FaceParams, res: int, u: float, v: float) -> tuple[float, float]:
    """Face coordinates -> pixel coordinates (x right, y down, pixel centres at +0.5)."""
    c, s = math.cos(math.radians(p.roll)), math.sin(math.radians(p.roll))
    x = p.tx + p.scale * (c * u - s * v)
    y = p.ty + p.scale * (s * u + c * v)
    return (x + 0.5) * res, (y + 0.5) * res


def face_landmarks(p: FaceParams, resolution: int) -> dict[str, tuple[float, float]]:
    """Pixel positions of the iris centres and mouth corners of a rendered face."""
    lay = _layout(p)
    corner_v = lay.mouth_y - lay.smile_lift
    return {
        "eye_left": _to_pixels(p, resolution, *lay.iris[0]),
        "eye_right": _to_pixels(p, resolution, *lay.iris[1]),
        "mouth_left": _to_pixels(p, resolution, lay.mouth_x - lay.mw, corner_v),
        "mouth_right": _to_pixels(p, resolution, lay.mouth_x + lay.mw, corner_v),
    }


# --------------------------------------------------------------------------------------------
# distance fields and the canvas


def _sd_ellipse(x: np.ndarray, y: np.ndarray, a: float, b: float) -> np.ndarray:
    """Approximate signed distance to an ellipse with semi-axes ``a``, ``b`` (exact on its edge)."""
    k0 = np.sqrt((x * (1.0 / a)) ** 2 + (y * (1.0 / b)) ** 2)
    k1 = np.sqrt((x * (1.0 / (a * a))) ** 2 + (y * (1.0 / (b * b))) ** 2)
    return (k0 - 1.0) * (k0 + 1e-6 * min(a, b)) / (k1 + 1e-6)


def _sd_circle(x: np.ndarray, y: np.ndarray, r: float) -> np.ndarray:
    return np.sqrt(x * x + y * y) - r


def _col(c) -> np.ndarray:
    """An RGB colour shaped [3, 1, 1] to broadcast over channel-first [3, h, w] fields."""
    return np.asarray(c, dtype=np.float32).reshape(3, 1, 1)


class _Canvas:
    """An RGB float image plus a label map, addressed in face coordinates through boxes."""

    def __init__(self, p: FaceParams, res: int):
        self.res = res
        self.inv_px = res * p.scale  # face units -> pixels
        self.px = (np.arange(res, dtype=np.float32) + 0.5) / res - 0.5  # image coords of centres
        c, s = math.cos(math.radians(p.roll)), math.sin(math.radians(p.roll))
        dx, dy = self.px - p.tx, self.px - p.ty
        inv = 1.0 / p.scale
        self.u = (c * inv * dx)[None, :] + (s * inv * dy)[:, None]
        self.v = (-s * inv * dx)[None, :] + (c * inv * dy)[:, None]
        self.rgb = np.empty((3, res, res), dtype=np.float32)  # channel-first: fast broadcasting
        self.label = np.zeros((res, res), dtype=np.uint8)
        self._p = p

    def box(self, u0: float, u1: float, v0: float, v1: float):
        """Pixel slices covering the face-coordinate rectangle, or None if it is off-image."""
        corners = [_to_pixels(self._p, self.res, u, v) for u in (u0, u1) for v in (v0, v1)]
        xs, ys = [c[0] for c in corners], [c[1] for c in corners]
        x0, x1 = max(int(math.floor(min(xs))) - 1, 0), min(int(math.ceil(max(xs))) + 1, self.res)
        y0, y1 = max(int(math.floor(min(ys))) - 1, 0), min(int(math.ceil(max(ys))) + 1, self.res)
        if x0 >= x1 or y0 >= y1:
            return None
        return slice(y0, y1), slice(x0, x1)

    def uv(self, box) -> tuple[np.ndarray, np.ndarray]:
        return self.u[box], self.v[box]

    def image_xy(self, box) -> tuple[np.ndarray, np.ndarray]:
        """Image coordinates (centred, unframed) of the box, as broadcastable [h,1] and [1,w]."""
        return self.px[box[1]][None, :], self.px[box[0]][:, None]

    def cover(self, d: np.ndarray) -> np.ndarray:
        """Anti-aliased coverage of the region ``d < 0``."""
        return np.clip(0.5 - d * self.inv_px, 0.0, 1.0)

    def soft(self, d: np.ndarray, width: float) -> np.ndarray:
        """Smooth coverage of ``d < 0`` fading over ``width`` face units."""
        t = np.clip(0.5 - d * (1.0 / max(width, 1.0 / self.inv_px)), 0.0, 1.0)
        return t * t * (3.0 - 2.0 * t)

    def paint(self, box, alpha: np.ndarray, color, label: int | None = None) -> None:
        """Composite ``color`` ([3, 1, 1] or a [3, h, w] field) over the box with ``alpha``."""
        dst = self.rgb[(slice(None),) + box]
        dst += alpha * (color - dst)
        if label is not None:
            self.label[box][alpha > 0.5] = label


# --------------------------------------------------------------------------------------------
# layers, back to front


def _paint_background(cv: _Canvas, p: FaceParams, lay: _Layout) -> None:
    """Two-colour gradient plus blurred ellipses, in unframed image coordinates.

    Shapes either blend towards ``bg_shape_color`` or darken, so compositing them all reduces to
    two scalar fields: what is left of the gradient (``keep``) and the weight of the shape colour.
    Walls and outdoor scenes are textures, built and blurred on a coarser grid.
    """
    if BACKGROUND_STYLES[p.bg_style % len(BACKGROUND_STYLES)] in ("wall", "outdoor"):
        _textured_background(p, cv.res, out=cv.rgb)
        return
    keep, light = _bg_shape_fields(p, cv.res, cv.px)
    top, bottom = _col(p.bg_top), _col(p.bg_bottom)
    a = math.radians(p.bg_angle)
    g = np.clip(0.5 + math.sin(a) * cv.px[None, :] + math.cos(a) * cv.px[:, None], 0.0, 1.0)
    cv.rgb[:] = (top + g * (bottom - top)) * keep + light * _col(p.bg_shape_color)


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
    if BACKGROUND_STYLES[p.bg_style % len(BACKGROUND_STYLES)] == "wall":
        tex = _wall_texture(p, rng, x, y)
    else:
        tex = _outdoor_texture(p, rng, x, y)
    keep, light = _bg_shape_fields(p, _BG_GRID, g)
    tex = np.clip(tex * keep + light * _col(p.bg_shape_color), 0.0, 1.0).astype(np.float32)
    sigma = math.sqrt(max(p.bg_blur, 0.8 / _BG_GRID) ** 2 + (0.5 / res) ** 2) * _BG_GRID  # in cells
    tex = ndimage.gaussian_filter(tex, (0.0, sigma, sigma), mode="nearest", truncate=3.0)
    return _resize(tex, res, out=out)


def _wall_texture(p: FaceParams, rng, x, y) -> np.ndarray:
    """Plaster, brick, tile or wood panelling, shaded from bg_top to bg_bottom along bg_angle."""
    top, detail = _col(p.bg_top), _col(p.bg_detail)
    s = max(p.bg_scale, 4.0 / _BG_GRID)
    pattern = WALL_PATTERNS[p.bg_variant % len(WALL_PATTERNS)]
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
    a = math.radians(p.bg_angle)
    shade = np.clip(0.5 + math.sin(a) * x + math.cos(a) * y, 0.0, 1.0)
    ratio = _col(p.bg_bottom) / np.maximum(top, 0.02)
    return tex * (1.0 + shade * (ratio - 1.0))


def _outdoor_texture(p: FaceParams, rng, x, y) -> np.ndarray:
    """Sky over a horizon with trees (park) or buildings (city) and blurred foliage up close."""
    sky_top, ground, detail = _col(p.bg_top), _col(p.bg_bottom), _col(p.bg_detail)
    yh = p.bg_horizon
    haze = 0.45 * sky_top + 0.55 * _col((0.93, 0.94, 0.93))
    t = np.clip((y + 0.5) * (1.0 / (yh + 0.5)), 0.0, 1.0)
    sky = sky_top + (t * np.sqrt(t)) * (haze - sky_top)
    clouds = np.clip(0.6 * _noise(rng, 4) + 0.3 * _noise(rng, 10) - 0.3, 0.0, 1.0)
    sky = sky + (float(rng.uniform(0.0, 0.8)) * clouds) * (_col((0.97, 0.97, 0.96)) - sky)
    gt = np.clip((y - yh) * (1.0 / max(0.5 - yh, 0.05)), 0.0, 1.0)
    far_ground = 0.7 * ground + 0.3 * haze
    land = far_ground + gt * (ground * 0.85 - far_ground)
    land = land * (1.0 + 0.06 * _noise(rng, 20))
    tex = sky + _grid_step(yh - y) * (land - sky)
    blotch = _noise(rng, 24)
    if OUTDOOR_SCENES[p.bg_variant % len(OUTDOOR_SCENES)] == "park":
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
    if OUTDOOR_SCENES[p.bg_variant % len(OUTDOOR_SCENES)] == "park":
        leaf_color = detail * (0.55 + 0.2 * blotch)
    else:
        leaf_color = _col((0.15, 0.25, 0.1)) * (1.0 + 0.25 * blotch)
    return tex + leaves * (leaf_color - tex)


def _dome_light(u, v, lay: _Layout, a: float, b: float, cy: float) -> np.ndarray:
    """Lambert-like term (wrapped) for a dome with semi-axes a, b centred at (0, cy)."""
    nx, ny = u * (1.0 / a), (v - cy) * (1.0 / b)
    nz = np.sqrt(np.clip(1.0 - nx * nx - ny * ny, 0.0, 1.0))
    lx, ly, lz = lay.light
    return np.clip((nx * lx + ny * ly + nz * lz + 0.3) * (1.0 / 1.3), 0.0, 1.0)


def _hair_texture(cv: _Canvas, p: FaceParams, lay: _Layout, u, v) -> np.ndarray:
    """Hair colour field: dome lighting, fanned strand lines (or curls) and a glossy sheen."""
    base = _col(p.hair_color)
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


def _hair_back_shape(p: FaceParams, lay: _Layout):
    """(extent, sdf) of the hair mass behind the head, or None for styles without one."""
    style = _hair_style(p)
    hw, hh, cy, vol = lay.hw, lay.hh, lay.cy, p.hair_volume
    if style == "long":
        spread = 0.07

        def sdf(u, v):
            w = np.abs(u + (p.hair_wave * 0.012) * np.sin(v * 38.0 + p.hair_phase))
            dome = _sd_ellipse(w, v - (cy - vol * 0.2), hw + vol, hh + vol)
            t = np.clip((v - cy) * (1.0 / (lay.hair_end - cy)), 0.0, 1.0)
            end = lay.hair_end + 0.012 * np.sin(u * 70.0 + p.hair_phase)
            body = np.maximum(np.maximum(w - (hw + vol * 0.8 + spread * t), v - end), cy - v)
            return np.minimum(dome, body)

        half = hw + vol + spread + 0.02
        return (-half, half, cy - hh - vol * 1.3, lay.hair_end + 0.02), sdf
    if style == "bun":
        r = hw * 0.42
        bx, by = lay.part_u * 0.3, cy - hh - vol - r * 0.45

        def sdf(u, v):
            return _sd_circle(u - bx, v - by, r)

        return (bx - r, bx + r, by - r, by + r), sdf
    if style == "curly":
        return _curly_extent(p, lay), lambda u, v: _curly_sdf(u, v, p, lay)
    return None


def _curly_extent(p: FaceParams, lay: _Layout):
    a, b = lay.hw + p.hair_volume + 0.015, lay.hh + p.hair_volume * 0.9 + 0.015
    cy = lay.cy - lay.hh * 0.12
    return (-a, a, cy - b, cy + b)


def _curly_sdf(u, v, p: FaceParams, lay: _Layout) -> np.ndarray:
    """A voluminous ellipse with a bumpy outline."""
    cy = lay.cy - lay.hh * 0.12
    a, b = lay.hw + p.hair_volume, lay.hh + p.hair_volume * 0.9
    theta = np.arctan2(v - cy, u)
    bumps = 0.5 + 0.5 * np.sin(theta * 22.0 + p.hair_phase)
    return _sd_ellipse(u, v - cy, a, b) + 0.012 * bumps


def _paint_hair_back(cv: _Canvas, p: FaceParams, lay: _Layout) -> None:
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
    cv.paint(box, alpha, color, _LABEL_HAIR)


def _shoulders_sdf(u, v, lay: _Layout) -> np.ndarray:
    """Everything below a shoulder line that is flat at the neck and slopes ever faster outwards."""
    x = np.maximum(np.abs(u - lay.body_x) - lay.neck_w * 0.7, 0.0)
    arm = np.maximum(x - 0.28, 0.0)
    line = lay.shirt_top + 0.18 * x + 0.25 * x * x + 6.0 * arm * arm
    return (line - v) / np.sqrt(1.0 + (0.18 + 0.5 * x + 12.0 * arm) ** 2)


def _neckline_sdf(u, v, p: FaceParams, lay: _Layout) -> np.ndarray:
    """The opening of the shirt (crew or V) around the base of the neck."""
    top, x = lay.shirt_top, u - lay.body_x
    if NECKLINES[p.neckline % len(NECKLINES)] == "v":
        k, tip = 0.55, top + 0.12
        return np.maximum((np.abs(x) - k * (tip - v)) * (1.0 / math.sqrt(1.0 + k * k)), top - 0.06 - v)
    return _sd_ellipse(x, v - top, lay.neck_w * 1.35, 0.05)


def _paint_neck(cv: _Canvas, p: FaceParams, lay: _Layout) -> None:
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
    cv.paint(box, alpha, _col(p.skin) * shade, _LABEL_OTHER)


def _paint_shirt(cv: _Canvas, p: FaceParams, lay: _Layout) -> None:
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
    cv.paint(box, alpha, _col(p.shirt_color) * shade, _LABEL_OTHER)


def _paint_ears(cv: _Canvas, p: FaceParams, lay: _Layout) -> None:
    """Ears at the sides (the head covers their inner half) with a darker concha."""
    skin = _col(p.skin)
    rx, ry = lay.ear_r
    for side, ex in zip((-1, 1), lay.ear_x):
        box = cv.box(ex - rx, ex + rx, lay.ear_y - ry, lay.ear_y + ry)
        if box is None:
            continue
        u, v = cv.uv(box)
        x, y = (u - ex) * side, v - lay.ear_y
        lit = 0.9 + 0.15 * side * lay.light2[0]
        cv.paint(box, cv.cover(_sd_ellipse(x, y, rx, ry)), skin * (0.88 * lit), _LABEL_OTHER)
        inner = _sd_ellipse(x - rx * 0.12, y + ry * 0.05, rx * 0.55, ry * 0.62)
        cv.paint(box, 0.45 * cv.soft(inner, rx * 0.3), skin * 0.55)


def _head_sdf(u, v, p: FaceParams, lay: _Layout) -> np.ndarray:
    """Egg-shaped head: an ellipse whose lower half narrows towards the chin by ``jaw``."""
    y = (v - lay.cy) * (1.0 / lay.hh)
    taper = 1.0 - (0.12 + 0.28 * p.jaw) * np.clip(y, 0.0, 1.0) ** 2
    return _sd_ellipse(u / taper, v - lay.cy, lay.hw, lay.hh)


def _paint_head(cv: _Canvas, p: FaceParams, lay: _Layout) -> None:
    """Face skin with wrapped Lambert shading, blushed cheeks and a lighter lit side."""
    hw, hh, cy = lay.hw, lay.hh, lay.cy
    box = cv.box(-hw, hw, cy - hh, cy + hh)
    if box is None:
        return
    u, v = cv.uv(box)
    alpha = cv.cover(_head_sdf(u, v, p, lay))
    lam = _dome_light(u, v, lay, hw * 1.05, hh * 1.05, cy)
    shade = p.ambient + (1.1 - p.ambient) * lam
    skin = _col(p.skin)
    color = skin * shade
    blush_color = skin * _col((1.05, 0.72, 0.7))
    cheeks = np.zeros_like(u)
    for ex in lay.eye_x:
        dx, dy = (u - ex * 1.05) * (1.0 / (hw * 0.28)), (v - (lay.nose_y - hh * 0.05)) * (1.0 / (hw * 0.22))
        cheeks = cheeks + np.exp(-(dx * dx + dy * dy))
    color = color + (p.blush * cheeks) * (blush_color * shade - color)
    cv.paint(box, alpha, color, _LABEL_FACE)


def _shadow_color(p: FaceParams) -> np.ndarray:
    return _col(p.skin) * _col((0.55, 0.45, 0.45))


def _paint_soft_ellipse(cv, cx, cy, rx, ry, softness, strength, color) -> None:
    """A blurred ellipse overlay (shadows, highlights)."""
    pad = softness
    box = cv.box(cx - rx - pad, cx + rx + pad, cy - ry - pad, cy + ry + pad)
    if box is None:
        return
    u, v = cv.uv(box)
    cv.paint(box, strength * cv.soft(_sd_ellipse(u - cx, v - cy, rx, ry), softness), color)


def _paint_eye(cv: _Canvas, p: FaceParams, lay: _Layout, index: int) -> None:
    """Sclera, textured iris, pupil, corneal highlight, lid shadow, lid line, lashes and crease."""
    side = (-1, 1)[index]
    ex, ey, ew, eh, ri = lay.eye_x[index], lay.eye_y, lay.ew, lay.eh, lay.ri
    skin = _col(p.skin)
    _paint_soft_ellipse(cv, ex, ey - eh * 0.6, ew * 1.25, ew * 0.75, ew * 0.6, 0.16, _shadow_color(p))
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
    cv.paint(box, opening, _col(p.sclera) * sclera_shade)
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
    iris = _col((p.iris_left, p.iris_right)[index])
    iris_color = np.clip(iris * (streaks * limbal * collarette * lid_shade), 0.0, 1.0)
    cv.paint(box, cv.cover(r - ri) * opening, iris_color)
    pupil = (p.pupil_left, p.pupil_right)[index] * ri
    aspect = max((p.pupil_aspect_left, p.pupil_aspect_right)[index], 0.05)
    pw, ph = pupil / math.sqrt(aspect), pupil * math.sqrt(aspect)
    wobble = (p.pupil_wobble_left, p.pupil_wobble_right)[index]
    d_pupil = _sd_pupil_wobble(dx, dy, pw, ph, wobble) if wobble else _sd_ellipse(dx, dy, pw, ph)
    cv.paint(box, cv.cover(d_pupil) * opening, _col((0.03, 0.025, 0.025)))
    # corneal highlight, offset towards the light (same offset in both eyes)
    shift = (p.highlight_shift_left, p.highlight_shift_right)[index]
    hx = ix + (lay.light2[0] * 0.5 + shift[0]) * ri
    hy = iy + (lay.light2[1] * 0.5 + shift[1]) * ri
    glint = cv.cover(_sd_circle(u - hx, v - hy, p.highlight_size * ri)) * opening
    cv.paint(box, 0.92 * glint, _col((1.0, 1.0, 1.0)))
    # shadow of the upper lid on the eyeball
    lid_shadow = np.clip(1.0 + d_up * (1.0 / (0.45 * eh)), 0.0, 1.0)
    cv.paint(box, 0.3 * opening * lid_shadow, _col((0.2, 0.15, 0.15)))
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


def _paint_lids(cv, p: FaceParams, lay: _Layout, box, tu, tv, d_up, d_lo, skin) -> None:
    """Upper lid line thickening outwards, lashes, crease and a faint lower lid."""
    ew, eh = lay.ew, lay.eh
    out = np.clip(tu * (1.0 / ew), 0.0, 1.0)
    t = p.lid_thickness * ew * (0.7 + 0.7 * out)
    span = np.maximum(np.maximum(-tu - ew * 0.95, tu - ew * 1.12), tv - eh * 0.2)  # upper arc only
    lid = np.maximum(np.abs(d_up - t * 0.35) - t * 0.5, span)
    lid_color = _col(p.brow_color) * 0.4
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


def _paint_brows(cv: _Canvas, p: FaceParams, lay: _Layout) -> None:
    """Arched, tapering brows with a faint hair stroke texture."""
    ew = lay.ew
    length = ew * 2.3
    color = _col(p.brow_color)
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


def _paint_nose(cv: _Canvas, p: FaceParams, lay: _Layout) -> None:
    """Side shadow away from the light, nostrils, alae and a tip highlight."""
    nw, nx, ny, ey = lay.nw, lay.nose_x, lay.nose_y, lay.eye_y
    dark = _shadow_color(p)
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
        ring = np.abs(_sd_circle(u - cx, v - cy, nw * 0.4)) - nw * 0.04
        lower = np.clip((v - cy) * (3.0 / nw) + 0.4, 0.0, 1.0)
        outer = np.clip((u - cx) * side * (4.0 / nw) + 0.8, 0.0, 1.0)
        cv.paint(box, 0.45 * cv.soft(ring, nw * 0.1) * lower * outer, dark)
        nostril = _sd_ellipse(u - (nx + side * nw * 0.36), v - (ny - nw * 0.03), nw * 0.2, nw * 0.1)
        cv.paint(box, 0.75 * cv.soft(nostril, nw * 0.08), _col(p.skin) * 0.3)
    tip = np.minimum(_col(p.skin) * 1.18 + 0.04, 1.0)
    _paint_soft_ellipse(cv, nx + lay.light2[0] * nw * 0.25, ny - nw * 0.5 + lay.light2[1] * nw * 0.15,
                        nw * 0.28, nw * 0.25, nw * 0.3, 0.35, tip)
    _paint_soft_ellipse(cv, lay.bridge_x + lx * nw * 0.25, ey + length * 0.45, nw * 0.09, length * 0.35,
                        nw * 0.15, 0.18, tip)


def _paint_mouth(cv: _Canvas, p: FaceParams, lay: _Layout) -> None:
    """Two-toned lips with a cupid's bow, a dark parting line and a lower-lip highlight."""
    mx, my, mw = lay.mouth_x, lay.mouth_y, lay.mw
    hu, hl = p.upper_lip * mw, p.lower_lip * mw
    _paint_soft_ellipse(cv, mx, my + hl + mw * 0.3, mw * 0.45, mw * 0.12, mw * 0.25, 0.18, _shadow_color(p))
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
    lips = _col(p.lip_color)
    cv.paint(box, cv.cover(np.maximum(np.maximum(top - v, v - line), ends)), lips * 0.8)
    lower = np.maximum(np.maximum(line - v, v - bottom), ends)
    sheen = np.exp(-((x + lay.light2[0] * mw * 0.25) * (1.0 / (0.35 * mw))) ** 2
                   - ((v - (line + hl * 0.45)) * (1.0 / (0.25 * hl))) ** 2)
    cv.paint(box, cv.cover(lower), lips * (1.0 + 0.25 * sheen))
    parting = np.maximum(np.abs(v - line) - mw * 0.022 * (0.5 + span), np.abs(x) - mw * 1.04)
    cv.paint(box, 0.85 * cv.cover(parting), lips * 0.35)


def _hairline(u, p: FaceParams, lay: _Layout) -> np.ndarray:
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


def _hair_front_sdf(u, v, p: FaceParams, lay: _Layout) -> np.ndarray:
    """Hair on top of the head down to the hairline, plus face-framing curtains for long hair."""
    style = _hair_style(p)
    hw, hh, cy, vol = lay.hw, lay.hh, lay.cy, p.hair_volume
    if style == "curly":
        outer = _curly_sdf(u, v, p, lay)
    else:
        t = vol if style in ("short", "buzz") else vol * 0.6
        outer = _sd_ellipse(u, v - (cy - t * 0.3), hw + t, hh + t * 1.3)
        outer = outer + t * np.clip((v - cy + hh * 0.2) * (1.0 / (hh * 0.5)), 0.0, 1.0)  # hug the sides
        if style == "short":  # ragged tips
            outer = outer + 0.003 * np.sin(np.arctan2(v - cy, u) * 40.0 + p.hair_phase)
    cap = np.maximum(outer, v - _hairline(u, p, lay))
    if style == "long":
        w = np.abs(u + (p.hair_wave * 0.012) * np.sin(v * 38.0 + p.hair_phase))
        t = np.clip((v - cy) * (1.0 / (lay.hair_end - cy)), 0.0, 1.0)
        inner = hw * (0.84 + 0.12 * t)
        end = lay.hair_end + 0.012 * np.sin(u * 70.0 + p.hair_phase)
        curtain = np.maximum(np.maximum(inner - w, w - (hw + vol * 0.8 + 0.07 * t)),
                             np.maximum(v - end, (lay.eye_y - hh * 0.35) - v))
        cap = np.minimum(cap, curtain)
    return cap


def _paint_hair_front(cv: _Canvas, p: FaceParams, lay: _Layout) -> None:
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
        on_face = cv.label[face_box] == _LABEL_FACE
        shadow = cv.soft(_hair_front_sdf(fu, fv - 0.012, p, lay), 0.02) * on_face
        cv.paint(face_box, 0.3 * shadow, _shadow_color(p))
    d = _hair_front_sdf(u, v, p, lay)
    alpha = 0.75 * cv.soft(d, 0.006) if style == "buzz" else cv.cover(d)
    cv.paint(box, alpha, _hair_texture(cv, p, lay, u, v), _LABEL_HAIR)


def _paint_earrings(cv: _Canvas, p: FaceParams, lay: _Layout) -> None:
    metal = _col(p.earring_color)
    rx, ry = lay.ear_r
    sizes = (p.earring_size_left, p.earring_size_right)
    for index, kind in enumerate((p.earring_left, p.earring_right)):
        kind = EARRINGS[kind % len(EARRINGS)]
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
        d = _sd_circle(u - ex, v - cy, size)
        if kind == "hoop":
            d = np.abs(d) - 0.0025 * sizes[index]
        towards_light = ((u - ex) * lay.light2[0] + (v - cy) * lay.light2[1]) * (1.0 / size)
        lit = 0.75 + 0.5 * np.clip(towards_light, -1.0, 1.0)
        cv.paint(box, cv.cover(d), metal * lit, _LABEL_OTHER)


def _sd_round_box(x, y, a: float, b: float, r: float) -> np.ndarray:
    """Signed distance to a box with half sizes ``a``, ``b`` and corner radius ``r``."""
    qx, qy = np.abs(x) - (a - r), np.abs(y) - (b - r)
    outside = np.sqrt(np.maximum(qx, 0.0) ** 2 + np.maximum(qy, 0.0) ** 2)
    return outside + np.minimum(np.maximum(qx, qy), 0.0) - r


def _sd_segment(u, v, a: tuple[float, float], b: tuple[float, float]) -> np.ndarray:
    """Distance to the segment from ``a`` to ``b``."""
    bx, by = b[0] - a[0], b[1] - a[1]
    px, py = u - a[0], v - a[1]
    h = np.clip((px * bx + py * by) * (1.0 / (bx * bx + by * by)), 0.0, 1.0)
    return np.sqrt((px - h * bx) ** 2 + (py - h * by) ** 2)


def _paint_glasses(cv: _Canvas, p: FaceParams, lay: _Layout) -> None:
    """Thin frames around both eyes, a bridge over the nose, temples towards the ears, tinted lenses.

    The lenses only tint and reflect faintly, so the iris, pupil and corneal highlight stay visible.
    Frame pixels are labelled as face.
    """
    kind = GLASSES[p.glasses % len(GLASSES)]
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
                d.append(_sd_ellipse(x, y, lw, lh))
            else:
                d.append(_sd_round_box(x, y, lw, lh, lh * 0.45))
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
            d = np.minimum(d, _sd_segment(su, sv, hinge, end) - t * 0.4)
        return d

    lenses = lens_sdf(u, v)
    frame = frame_sdf(u, v, lenses)
    # soft shadow of the frame on the skin, cast away from the light
    off = 0.15 * ew
    on_face = cv.label[box] == _LABEL_FACE
    shadow = cv.soft(frame_sdf(u + lx * off, v + ly * off, lens_sdf(u + lx * off, v + ly * off)), t * 1.5)
    cv.paint(box, (0.22 * shadow) * on_face, _shadow_color(p))
    # lenses: faint tint plus a soft reflection streak in the upper outer part
    inside = cv.cover(np.minimum(lenses[0], lenses[1]))
    tint = 0.6 * _col(p.glasses_color) + 0.4 * _col((0.55, 0.62, 0.7))
    cv.paint(box, p.glasses_tint * inside, tint)
    c, s = math.cos(math.radians(35.0)), math.sin(math.radians(35.0))
    for i, side in enumerate((-1, 1)):
        x, y = u - (gx[i] + side * lw * 0.45), v - (gy - lh * 0.5)
        streak = _sd_ellipse(x * c + y * s * side, -x * s * side + y * c, lw * 0.09, lh * 0.55)
        cv.paint(box, (0.16 * inside) * cv.soft(streak, lw * 0.12), _col((1.0, 1.0, 1.0)))
    # the frame, lit from the light's side
    cx = np.where(u < (gx[0] + gx[1]) * 0.5, gx[0], gx[1])
    rel = ((u - cx) * lx + (v - gy) * ly) * (1.0 / lw)
    frame_color = _col(p.glasses_color) * (0.8 + 0.25 * np.clip(rel, -1.0, 1.0)) + 0.06
    cv.paint(box, cv.cover(frame), frame_color, _LABEL_FACE)


def _paint_features(cv: _Canvas, p: FaceParams, lay: _Layout) -> None:
    for index in (0, 1):
        _paint_eye(cv, p, lay, index)
    _paint_brows(cv, p, lay)
    _paint_nose(cv, p, lay)
    _paint_mouth(cv, p, lay)
    _paint_glasses(cv, p, lay)


_LAYERS: tuple[Callable[[_Canvas, FaceParams, _Layout], None], ...] = (
    _paint_background, _paint_hair_back, _paint_neck, _paint_shirt, _paint_ears, _paint_head,
    _paint_features, _paint_hair_front, _paint_earrings,
)


# --------------------------------------------------------------------------------------------
# rendering


def _render_one(p: FaceParams, res: int) -> tuple[np.ndarray, np.ndarray]:
    """Render one portrait: (uint8 [H, W, 3] image, uint8 [H, W] label map)."""
    lay = _layout(p)
    cv = _Canvas(p, res)
    for layer in _LAYERS:
        layer(cv, p, lay)
    image = np.clip(cv.rgb * 255.0 + 0.5, 0.0, 255.0).astype(np.uint8).transpose(1, 2, 0)
    return image, cv.label


def render_faces(params: Sequence[FaceParams], resolution: int = 256) -> Render:
    """Render portraits for ``params`` at ``resolution`` x ``resolution`` pixels.

    Each image depends only on its own parameters, so batching never changes the output.
    """
    if resolution < 16:
        raise ValueError(f"resolution must be >= 16, got {resolution}")
    params = list(params)
    n = len(params)
    images = np.empty((n, resolution, resolution, 3), dtype=np.uint8)
    labels = np.empty((n, resolution, resolution), dtype=np.uint8)

    for i, p in enumerate(params):
        images[i], labels[i] = _render_one(p, resolution)
    landmarks = {name: np.empty((n, 2), dtype=np.float32) for name in LANDMARKS}
    for i, p in enumerate(params):
        for name, xy in face_landmarks(p, resolution).items():
            landmarks[name][i] = xy
    masks = {"face": labels == _LABEL_FACE, "hair": labels == _LABEL_HAIR,
             "background": labels == _LABEL_BACKGROUND}
    return Render(images=images, landmarks=landmarks, masks=masks)
