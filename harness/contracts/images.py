"""Decoded images as 8-bit RGB: the one conversion every reader of image files shares."""

import numpy as np
from PIL import Image

#: Colour that transparent pixels are composited onto when an image is made RGB.
BACKGROUND = (255, 255, 255)
#: Colour modes that convert to 8-bit RGB without losing what the image shows.
CONVERTIBLE_MODES = frozenset({"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr",
                               "I;16", "I;16B", "I;16L", "I"})


def to_rgb(image: Image.Image) -> Image.Image:
    """``image`` as 8-bit RGB: transparency composited onto :data:`BACKGROUND`, 16-bit values scaled
    (not clipped) to 8 bits. ``ValueError`` for a mode outside :data:`CONVERTIBLE_MODES`."""
    if image.mode not in CONVERTIBLE_MODES:
        raise ValueError(f"colour mode {image.mode} has no safe conversion to 8-bit RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
        flat.alpha_composite(rgba)
        return flat.convert("RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: scale to 8 bits rather than clip at 255
        values = np.asarray(image, dtype=np.float64) / (257.0 if image.mode.startswith("I;16") else 65535.0 / 255.0)
        image = Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), "L")
    return image.convert("RGB")
