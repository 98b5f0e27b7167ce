"""The artifact library: named transforms that turn a real image into a fake with known artifacts.

Each artifact records itself (name, strength, parameters) on the image's record, sets its
label to fake and, where it is local, writes a mask of the pixels it changed. Spec strings
name the fakes to make per real image::

    "upsampling:0.5,eyes_fixed"            two fakes per real, one artifact each
    "eyes_fixed+upsampling:0.5"            one fake carrying both
    "none"                                  one fake, a byte copy of its real (a control)
    "null"                                  one fake, the real of another seed (a control)
    "all"                                   one fake per built-in artifact

See docs/ARTIFACTS.md for the sources of each artifact.
"""

from .base import (
    REGION_NAMES,
    ArtifactError,
    CameraArtifact,
    PixelArtifact,
    SceneArtifact,
)
from .catalog import ARTIFACTS
from .controls import (
    CONTROLS,
    NULL_SEED_OFFSET,
    copy_fakes,
    is_control_artifact,
    null_fakes,
    null_source_seed,
    refuse_null,
)
from .frequency import UpsamplingArtifact
from .geometry import FFHQ_EYE_LEFT, FFHQ_EYE_RIGHT, EyesFixedArtifact, warp_similarity
from .specs import FakeSpec, make_fakes, parse_fake_specs

__all__ = [
    "ARTIFACTS",
    "REGION_NAMES",
    "ArtifactError",
    "CONTROLS",
    "CameraArtifact",
    "EyesFixedArtifact",
    "FFHQ_EYE_LEFT",
    "FFHQ_EYE_RIGHT",
    "FakeSpec",
    "NULL_SEED_OFFSET",
    "PixelArtifact",
    "SceneArtifact",
    "UpsamplingArtifact",
    "copy_fakes",
    "is_control_artifact",
    "make_fakes",
    "null_fakes",
    "null_source_seed",
    "parse_fake_specs",
    "refuse_null",
    "warp_similarity",
]
