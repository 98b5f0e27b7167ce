"""Stage 2 of the face renderer: where every feature sits, in face coordinates and in pixels."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .params import FaceParams

_HEAD_CY = -0.04  # head centre (v) in face coordinates


@dataclass(frozen=True)
class Layout:
    """Positions and sizes of a portrait's features in face coordinates (see face_layout)."""

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


def face_layout(p: FaceParams) -> Layout:
    """Positions and sizes of every feature, including the yaw shift of each by its depth."""
    hw, hh, cy = p.head_width, p.head_height, _HEAD_CY
    yaw = math.radians(p.yaw)

    def project(x: float, depth: float) -> float:
        return x * math.cos(yaw) + depth * hw * math.sin(yaw)

    ew = p.eye_width * hw
    eh = p.eye_open * ew
    eye_y = cy + p.eye_y * hh
    eye_x = (project(-p.eye_spacing * hw, 0.75), project(p.eye_spacing * hw, 0.75))

    def iris_at(x: float) -> tuple[float, float]:
        return x + p.gaze[0] * ew * 0.3, eye_y + p.gaze[1] * eh * 0.25

    iris = (iris_at(eye_x[0]), iris_at(eye_x[1]))
    mw = p.mouth_width * hw
    lx, ly = p.light_dir
    norm2 = max(math.hypot(lx, ly), 1e-6)
    lz = math.sqrt(max(1.0 - lx * lx - ly * ly, 0.05))
    n3 = math.sqrt(lx * lx + ly * ly + lz * lz)
    ear = 0.2 * p.ear_size
    return Layout(
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


def to_pixels(p: FaceParams, res: int, u: float, v: float) -> tuple[float, float]:
    """Face coordinates -> pixel coordinates (x right, y down, pixel centres at +0.5)."""
    c, s = math.cos(math.radians(p.roll)), math.sin(math.radians(p.roll))
    x = p.tx + p.scale * (c * u - s * v)
    y = p.ty + p.scale * (s * u + c * v)
    return (x + 0.5) * res, (y + 0.5) * res


def face_landmarks(p: FaceParams, resolution: int) -> dict[str, tuple[float, float]]:
    """Pixel positions of the iris centres and mouth corners of a rendered face."""
    lay = face_layout(p)
    corner_v = lay.mouth_y - lay.smile_lift
    return {
        "eye_left": to_pixels(p, resolution, *lay.iris[0]),
        "eye_right": to_pixels(p, resolution, *lay.iris[1]),
        "mouth_left": to_pixels(p, resolution, lay.mouth_x - lay.mw, corner_v),
        "mouth_right": to_pixels(p, resolution, lay.mouth_x + lay.mw, corner_v),
    }
