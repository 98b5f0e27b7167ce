"""Stage 1 of the face renderer: the parameters of a portrait and how a seed samples them.

Geometry is in face coordinates (see face.py); colours are RGB tuples in ``[0, 1]``; angles are in
degrees.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np

from ...harness.contracts.seeding import rng_for

Color = tuple[float, float, float]
#: One soft shape of a background: (x, y, rx, ry, strength, softness), see ``FaceParams.bg_shapes``.
BackgroundShape = tuple[float, float, float, float, float, float]

HAIR_STYLES = ("short", "long", "bun", "buzz", "curly")
BACKGROUND_STYLES = ("studio", "bokeh", "room", "wall", "outdoor")
WALL_PATTERNS = ("plaster", "brick", "tile", "wood")  # bg_variant of a "wall" background
OUTDOOR_SCENES = ("park", "city")  # bg_variant of an "outdoor" background
NECKLINES = ("crew", "v")
EARRINGS = ("none", "stud", "hoop")
GLASSES = ("none", "round", "rect")
LANDMARKS = ("eye_left", "eye_right", "mouth_left", "mouth_right")
MASKS = ("face", "hair", "background")


def option_name(names: tuple[str, ...], index: int) -> str:
    """The name an index option of :class:`FaceParams` stands for (``hair_style=1`` -> ``"long"``); wraps around."""
    return names[index % len(names)]


@dataclass(frozen=True)
class FaceParams:
    """Every per-seed property of one portrait (units: see the docstrings of face.py and this module).

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
    bg_shapes: tuple[BackgroundShape, ...] = ()
    # textured backgrounds ("wall", "outdoor"); unused by the other styles
    bg_seed: int = 0  # seeds the texture noise (np.random.default_rng(bg_seed))
    bg_variant: int = 0  # index into WALL_PATTERNS or OUTDOOR_SCENES
    bg_detail: Color = (0.35, 0.33, 0.3)  # mortar/grout/grain, or foliage/buildings outdoors
    bg_scale: float = 0.06  # wall: brick height, tile or plank size (image fraction)
    bg_horizon: float = 0.05  # outdoor: horizon below the image centre (image fraction)
    bg_blur: float = 0.01  # depth-of-field blur of the texture, sigma in image fractions


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
    r, g, b = (float(min(max(x, 0.0), 1.0)) for x in c)
    return r, g, b


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
        shapes += _sample_discs(rng, int(rng.integers(5, 10)), (0.03, 0.09), (-0.5, 0.5), (0.15, 0.5), (0.15, 0.5))
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


def _sample_discs(rng, count: int, radius, y, strength, softness) -> list[BackgroundShape]:
    """``count`` soft discs for ``bg_shapes`` (bokeh, out-of-focus highlights); the others are (lo, hi) ranges."""
    discs: list[BackgroundShape] = []
    for _ in range(count):
        r = float(rng.uniform(*radius))
        discs.append((float(rng.uniform(-0.5, 0.5)), float(rng.uniform(*y)), r, r,
                      float(rng.uniform(*strength)), float(rng.uniform(*softness))))
    return discs


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
    highlights = _sample_discs(rng, int(rng.integers(0, 6)), (0.02, 0.05), (-0.5, 0.2), (0.1, 0.35), (0.3, 0.6))
    return dict(bg_variant=variant, bg_top=top, bg_bottom=ground, bg_detail=detail,
                bg_horizon=float(rng.uniform(-0.15, 0.15)), bg_blur=float(rng.uniform(0.01, 0.02)),
                bg_shapes=tuple(highlights), bg_shape_color=_hsv(0.12, float(rng.uniform(0.0, 0.3)), 1.0))


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
