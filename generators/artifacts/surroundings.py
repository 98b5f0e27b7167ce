"""Surroundings artifacts: what a generator does around the face (background, hair edge, droplets).

All three are local: each records in ``record.masks[name]`` the pixels it may have changed,
and leaves every other pixel exactly as it was.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import ArtifactError, PixelArtifact, to_float, to_uint8

#: Sizes below are given in pixels at this image side and scale with the image.
REFERENCE_SIDE = 256


def distance_to(mask: np.ndarray) -> np.ndarray:
    """Euclidean distance (pixels) from every pixel to the nearest ``True`` of ``mask``; inf where it has none."""
    if not mask.any():
        return np.full(mask.shape, np.inf)
    from scipy import ndimage  # imported where used: listing artifacts stays fast

    return ndimage.distance_transform_edt(~mask)


def masked_blur(x: np.ndarray, region: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of ``x`` [H, W, 3] that averages only pixels of ``region`` (normalised convolution).

    Colours from outside ``region`` never leak in; pixels with no region pixel nearby keep ``x``.
    """
    from scipy import ndimage

    weight = region.astype(np.float32)
    numerator = ndimage.gaussian_filter(x * weight[..., None], sigma=(sigma, sigma, 0), mode="reflect", truncate=3.0)
    denominator = ndimage.gaussian_filter(weight, sigma=sigma, mode="reflect", truncate=3.0)
    safe = denominator > 1e-3
    out = x.copy()
    out[safe] = numerator[safe] / denominator[safe, None]
    return out


def blend_inside(image: np.ndarray, target: np.ndarray, alpha: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``image`` with ``image + alpha * (target - image)`` written on ``mask`` only (uint8 out)."""
    x = to_float(image)
    mixed = to_uint8(x + alpha[..., None] * (target - x))
    out = image.copy()
    out[mask] = mixed[mask]
    return out


def smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


class BackgroundBlurArtifact(PixelArtifact):
    """A blurred background behind a sharp face (a generator's shallow, uniform depth of field).

    The background (region mask) is blurred with a Gaussian of sigma ``strength * max_sigma``
    pixels at 256 px (scaled with the image side), averaging background pixels only, so the
    face, hair and clothes never smear into it. Background pixels within ``margin`` (fraction of
    the side) of the face or hair keep their pixels; beyond it the blur fades in over ``feather``
    (fraction of the side), so no seam shows. Needs the face/hair/background masks; the mask is
    the background beyond the margin.
    """

    name = "background_blur"
    summary = "blurred background outside a margin around face and hair (uniform depth of field)"
    local = True
    needs = ("regions",)

    def __init__(self, max_sigma: float = 4.0, margin: float = 0.02, feather: float = 0.03):
        if max_sigma <= 0:
            raise ArtifactError(f"background_blur max_sigma must be > 0, got {max_sigma}")
        if not 0.0 <= margin < 0.5:
            raise ArtifactError(f"background_blur margin must be in [0, 0.5) of the image side, got {margin}")
        if not 0.0 < feather < 0.5:
            raise ArtifactError(f"background_blur feather must be in (0, 0.5) of the image side, got {feather}")
        self.max_sigma = float(max_sigma)
        self.margin = float(margin)
        self.feather = float(feather)

    def params(self) -> dict[str, Any]:
        return {"max_sigma": self.max_sigma, "margin": self.margin, "feather": self.feather}

    def apply_one(self, image, record, strength, rng):
        side = min(image.shape[:2])
        sigma = strength * self.max_sigma * side / REFERENCE_SIDE
        margin = max(1.0, self.margin * side)
        feather = max(1.0, self.feather * side)
        background = record.masks["background"]
        distance = distance_to(record.masks["face"] | record.masks["hair"])
        mask = background & (distance > margin)
        if not mask.any():
            raise ArtifactError(
                f"artifact 'background_blur': image {record.id!r} has no background farther than "
                f"{margin:.1f} px from the face and hair"
            )
        alpha = smoothstep((distance - margin) / feather).astype(np.float32)
        blurred = masked_blur(to_float(image), background, sigma)
        out = blend_inside(image, blurred, alpha, mask)
        return out, record.with_changes(masks={**record.masks, self.name: mask})


class HairBleedArtifact(PixelArtifact):
    """Hair melting into the background along its edge (a classic GAN failure).

    The band is every hair or background pixel within ``strength * max_width`` pixels (at 256 px,
    scaled with the side; at least 1) of the hair/background boundary. In it each pixel is pulled
    towards a blur (sigma = band width) of the hair and background colours together, with weight
    falling from the boundary to the band's edge and modulated by a smooth random field along the
    contour, so the edge melts unevenly. Face and clothes pixels are never touched.

    Where an image has no hair touching the background (a bald head, hair framed by face and
    clothes), the head (face and hair together) against the background is used instead; an image
    with no head/background boundary at all is refused. The mask is the band.
    """

    name = "hair_bleed"
    summary = "hair melting into the background in a band along the hair edge"
    local = True
    needs = ("regions",)

    def __init__(self, max_width: float = 6.0):
        if max_width <= 0:
            raise ArtifactError(f"hair_bleed max_width must be > 0, got {max_width}")
        self.max_width = float(max_width)

    def params(self) -> dict[str, Any]:
        return {"max_width": self.max_width}

    @staticmethod
    def band(inside: np.ndarray, outside: np.ndarray, width: float) -> tuple[np.ndarray, np.ndarray]:
        """Pixels of ``inside`` or ``outside`` within ``width`` of the other, and their distance to it."""
        to_outside = distance_to(outside)
        to_inside = distance_to(inside)
        distance = np.where(inside, to_outside, np.where(outside, to_inside, np.inf))
        return distance <= width, distance

    def apply_one(self, image, record, strength, rng):
        side = min(image.shape[:2])
        width = max(1.0, strength * self.max_width * side / REFERENCE_SIDE)
        hair, background = record.masks["hair"], record.masks["background"]
        mask, distance = self.band(hair, background, width)
        inside = hair
        if not mask.any():  # no hair on the background: the head's outline melts instead
            inside = (record.masks["face"] | hair) & ~background
            mask, distance = self.band(inside, background, width)
        if not mask.any():
            raise ArtifactError(
                f"artifact 'hair_bleed': image {record.id!r} has no hair (or head) edge against the background"
            )
        mixed = masked_blur(to_float(image), inside | background, sigma=width)
        # the weight: 1 next to the boundary (distance 1), falling to near 0 at the band's edge
        falloff = np.clip(1.0 - (distance - 0.5) / (width + 0.5), 0.0, 1.0)
        from scipy import ndimage

        field = ndimage.gaussian_filter(rng.standard_normal(mask.shape), sigma=max(2.0, 0.03 * side), mode="wrap")
        field /= max(float(field.std()), 1e-9)
        unevenness = np.clip(0.65 + 0.35 * field, 0.15, 1.0)
        alpha = ((0.5 + 0.5 * strength) * falloff * unevenness).astype(np.float32)
        out = blend_inside(image, mixed, alpha, mask)
        return out, record.with_changes(masks={**record.masks, self.name: mask})


class BlobArtifact(PixelArtifact):
    """The StyleGAN1 "water droplet": a smooth bright or dark smudge.

    A radial bump ``(1 - r^2)^2`` (r < 1, in units of ``radius`` times the image side) of
    ``strength * amplitude`` grey levels, bright or dark at random, with a random tint. Its centre
    lies on the face or hair where the record has those masks, else anywhere at least one radius
    from the borders. The mask is the blob's support (r < 1). Needs nothing.
    """

    name = "blob"
    summary = "StyleGAN1 water droplet: a smooth bright or dark radial smudge"
    local = True

    def __init__(self, amplitude: float = 80.0, radius: float = 0.04):
        if not 0 < amplitude <= 255:
            raise ArtifactError(f"blob amplitude must be in (0, 255] grey levels, got {amplitude}")
        if not 0 < radius <= 0.25:
            raise ArtifactError(f"blob radius must be in (0, 0.25] of the image side, got {radius}")
        self.amplitude = float(amplitude)
        self.radius = float(radius)

    def params(self) -> dict[str, Any]:
        return {"amplitude": self.amplitude, "radius": self.radius}

    def centre(self, record, height: int, width: int, radius: float, rng: np.random.Generator) -> tuple[float, float]:
        """Where the blob goes (x, y in pixels): a face or hair pixel when known, away from the borders."""
        pad = int(np.ceil(radius)) + 1
        allowed = np.zeros((height, width), bool)
        allowed[pad : height - pad, pad : width - pad] = True
        if not allowed.any():
            return width / 2.0, height / 2.0
        head = record.masks.get("face", np.zeros_like(allowed)) | record.masks.get("hair", np.zeros_like(allowed))
        candidates = allowed & head if (allowed & head).any() else allowed
        ys, xs = np.nonzero(candidates)
        i = int(rng.integers(len(ys)))
        jitter = rng.uniform(0.0, 1.0, size=2)
        return float(xs[i] + jitter[0]), float(ys[i] + jitter[1])

    def apply_one(self, image, record, strength, rng):
        height, width = image.shape[:2]
        radius = max(2.0, self.radius * min(height, width))
        cx, cy = self.centre(record, height, width, radius, rng)
        sign = 1.0 if rng.random() < 0.5 else -1.0
        colour = sign + 0.35 * rng.standard_normal(3)
        colour /= np.abs(colour).max()
        y, x = np.mgrid[0:height, 0:width] + 0.5
        r2 = ((x - cx) ** 2 + (y - cy) ** 2) / radius**2
        mask = r2 < 1.0
        bump = np.where(mask, (1.0 - r2) ** 2, 0.0).astype(np.float32)
        changed = to_uint8(to_float(image) + (strength * self.amplitude) * bump[..., None] * colour.astype(np.float32))
        out = image.copy()
        out[mask] = changed[mask]
        return out, record.with_changes(masks={**record.masks, self.name: mask})
